"""Are the catalog's quotes verbatim? Each one, against the standard's own published pages.

    python -m conformance.quotes STANDARD [--edition 2024c]

STANDARD is a folder of the standard's HTML pages as published for one edition (the
"output/chtml" folder of dicom.nema.org's archive of that edition, or of a repository holding
it: one sub-folder per part, ``part18/``, ``part04/``, ...), and of the RFCs the catalog quotes
(``rfc9110.html`` or ``rfc7234.txt``, as the RFC Editor publishes them). Every requirement (and
every reading) of that edition, and every one quoting an RFC, is looked up in its part: each
piece of its quote between "[...]" elisions must occur in the part's text. Whitespace, the bars
that join a table's cells in a quote, and typographic quote marks are not compared; every other
character is.

The pages are not part of this project (they are NEMA's); the catalog records which edition its
quotes were checked against, and this command repeats the check wherever the pages are at hand.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from .catalog import CATALOG_DIR, CatalogError, Requirement, parse_file

ELISION = "[...]"
_FOLDER = re.compile(r"^PS3\.(\d+)$")
_RFC = re.compile(r"^RFC (\d+)$")
# The running header and footer of each page of an RFC's plain-text form.
_RFC_PAGE = re.compile(r"\n[^\n]*\[Page \d+\]\n\f?\n?RFC \d+[^\n]*\n")
_TYPOGRAPHIC = str.maketrans(
    {"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'", "\u00a0": " "}
)


def normalized(text: str) -> str:
    """Text as compared: one space for any run of white space or table bars, straight quotes."""
    text = unicodedata.normalize("NFKC", html.unescape(text)).translate(_TYPOGRAPHIC)
    return " ".join(text.replace("|", " ").split())


class _Text(HTMLParser):
    """The visible text of a page, a space between blocks and table cells."""

    _BLOCKS = frozenset({"p", "div", "br", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "pre"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head"):
            self._hidden += 1
        elif tag in self._BLOCKS:
            self.pieces.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head"):
            self._hidden -= 1
        elif tag in self._BLOCKS:
            self.pieces.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.pieces.append(data)


def page_text(path: Path) -> str:
    parser = _Text()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return normalized("".join(parser.pieces))


def part_pages(standard: Path, part: str) -> list[str] | None:
    """The texts of a part's pages: ``PS3.4`` -> ``STANDARD/part04/*.html``, ``RFC 9110`` ->
    ``STANDARD/rfc9110.html`` (or ``.txt``); None when they are not there."""
    if match := _FOLDER.match(part):
        folder = standard / f"part{int(match[1]):02d}"
        found = sorted(folder.glob("*.html")) if folder.is_dir() else []
        return [page_text(p) for p in found] or None
    if match := _RFC.match(part):
        for path in (standard / f"rfc{match[1]}.html", standard / f"rfc{match[1]}.txt"):
            if path.is_file():
                if path.suffix == ".html":
                    return [page_text(path)]
                text = _RFC_PAGE.sub("\n", path.read_text(encoding="utf-8", errors="replace"))
                return [normalized(text)]
    return None


def pieces(quote: str) -> list[str]:
    """The quote's verbatim pieces, between its elisions."""
    return [p for p in (normalized(s) for s in quote.split(ELISION)) if p]


@dataclass(frozen=True)
class Finding:
    what: str  # "ID" or "ID reading R"
    part: str
    problem: str | None  # None: every piece found


def _quotes(requirements: Iterable[Requirement], edition: str) -> Iterator[tuple[str, str, str]]:
    """(what, part, quote) for every quote of the edition, and of an RFC: requirements, then
    their readings (a reading's source begins with its part: "PS3.18 2024c 8.7.8.1")."""
    for r in requirements:
        if (r.edition == edition and _FOLDER.match(r.part)) or _RFC.match(r.part):
            yield r.id, r.part, r.text
        for g in r.readings:
            words = g.source.split()
            if words and _FOLDER.match(words[0]) and edition in words:
                yield f"{r.id} reading {g.id}", words[0], g.text
            elif len(words) > 1 and _RFC.match(" ".join(words[:2])):
                yield f"{r.id} reading {g.id}", " ".join(words[:2]), g.text


def check(requirements: Iterable[Requirement], standard: Path, edition: str) -> Iterable[Finding]:
    texts: dict[str, list[str] | None] = {}
    for what, part, quote in _quotes(requirements, edition):
        if part not in texts:
            texts[part] = part_pages(standard, part)
        pages = texts[part]
        if pages is None:
            yield Finding(what, part, f"no pages of {part} under {standard}")
            continue
        missing = [p for p in pieces(quote) if not any(p in page for page in pages)]
        if not pieces(quote):
            yield Finding(what, part, "the quote is empty")
        elif missing:
            where = part if _RFC.match(part) else f"{part} {edition}"
            yield Finding(what, part, f"not in {where}: {missing[0][:160]!r}")
        else:
            yield Finding(what, part, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m conformance.quotes",
        description="Check that every quote of the catalog of one edition is verbatim, against "
        "the standard's published HTML pages of that edition.",
    )
    parser.add_argument("standard", type=Path, help="folder with part18/, part04/, ... pages")
    parser.add_argument("--edition", default="2024c", help="the edition of those pages")
    parser.add_argument(
        "files", nargs="*", type=Path, help="catalog files (default: every one of the suite's)"
    )
    args = parser.parse_args(argv)
    if not args.standard.is_dir():
        print(f"error: {args.standard} is not a folder", file=sys.stderr)
        return 2
    try:
        requirements = [
            r for path in args.files or sorted(CATALOG_DIR.glob("*.toml")) for r in parse_file(path)
        ]
    except (OSError, CatalogError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    findings = list(check(requirements, args.standard, args.edition))
    bad = [f for f in findings if f.problem]
    for f in bad:
        print(f"{f.what}: {f.problem}")
    print(f"{len(findings) - len(bad)} of {len(findings)} quotes of {args.edition} are verbatim")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
