"""Where a requirement sits in the standard, and links to it: the section a requirement is filed
under, sections in the standard's order (PS3.18 by number, then the other DICOM parts, RFCs and
vendors' documents), the published page of each section, and an edition as a reader names it.
The reports (``report.py``, ``reporthtml.py``) and ``compare.py`` group and link by these.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from html import escape
from typing import Any

from .catalog import TRANSACTIONS

Results = Mapping[str, Any]


def transaction_name(key: str) -> str:
    return TRANSACTIONS.get(key, key)


# A section number where a reference starts: "10.4.4", "Table 10.4.4-1" (in section 10.4.4),
# "Annex I", "C.2.2.2.1", "F.2.3".
_NUMBER = re.compile(
    r"(?<![\w.])(?:Tables?\s+|Annex\s+)?"
    r"(?P<n>(?:[A-Z]{1,2}|\d+)(?:\.\d+)*)(?P<table>-\d+)?(?![\w.])"
)
_DICOM_PART = re.compile(r"^PS3\.(\d+)$")
_RFC = re.compile(r"^RFC (\d+)$")
_DICOM_EDITION = re.compile(r"^\d{4}[a-e]$")


def _numbered(part: str) -> bool:
    """Whether a part's sections are numbers (the DICOM standard and RFCs), not a vendor's
    headings."""
    return bool(_DICOM_PART.match(part) or _RFC.match(part))


def part_key(part: str) -> tuple[int, int, str]:
    """PS3.18 first (the DICOMweb part), then the other DICOM parts by number, then RFCs, then
    vendors' documents."""
    if part == "PS3.18":
        return (0, 0, "")
    if m := _DICOM_PART.match(part):
        return (1, int(m[1]), "")
    if m := _RFC.match(part):
        return (2, int(m[1]), "")
    return (3, 0, part)


def section_number(part: str, section: str) -> str:
    """The section a requirement is filed under: the first one its ``section`` names
    ("10.4.4, Table 10.4.4-1" is 10.4.4; "Table 8.7.4-1" is 8.7.4); a vendor document's first
    heading."""
    if _numbered(part) and (found := _NUMBER.search(section)):
        return found["n"]
    return section.split(";")[0].strip()


def number_key(number: str) -> tuple[tuple[int, int, str], ...]:
    """Number by number ("8.7.10" after "8.7.9"); an annex ("F.2") after the numbered clauses."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in number.split("."))


def heading(r: Mapping[str, Any]) -> str:
    """A section's heading: "PS3.18 10.4.4", "RFC 9110 15.5", or a vendor's document and its
    heading."""
    number = section_number(r["part"], r["section"])
    if not _numbered(r["part"]):
        return f"{r['part']}: {number}"
    return f"{r['part']} {'Annex ' if number.isalpha() else ''}{number}"


def grouped(results: Results) -> dict[str, dict[str, list[Mapping[str, Any]]]]:
    """transaction -> section heading -> requirements: transactions in the catalog's order,
    sections in the standard's (PS3.18 by number, then PS3.4, then RFCs and vendors' documents),
    requirements in the catalog's order within a section."""
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in results["requirements"]:
        groups[r["transaction"]].append(r)
    order = [t for t in TRANSACTIONS if t in groups] + sorted(set(groups) - set(TRANSACTIONS))
    grouped: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for transaction in order:
        sections: dict[str, list[Mapping[str, Any]]] = {}
        keys: dict[str, tuple[Any, ...]] = {}
        for r in groups[transaction]:
            title = heading(r)
            sections.setdefault(title, []).append(r)
            number = section_number(r["part"], r["section"]) if _numbered(r["part"]) else ""
            keys[title] = (part_key(r["part"]), number_key(number) if number else ())
        grouped[transaction] = {t: sections[t] for t in sorted(sections, key=keys.__getitem__)}
    return grouped


def standard_url(part: str, edition: str, number: str, table: str | None = None) -> str | None:
    """The published page of a section (or of the section a table is in), at its anchor: the
    DICOM standard's HTML or the RFC Editor's. None for a vendor's document."""
    if m := _RFC.match(part):
        return f"https://www.rfc-editor.org/rfc/rfc{m[1]}#section-{number}"
    m = _DICOM_PART.match(part)
    if not m:
        return None
    # One page per section, five levels deep at most; a first subsection ("x.1") is on its
    # parent's page, and so are its own subsections; clauses 1 to 4 (scope, references,
    # definitions, symbols) are one page each.
    pieces = number.split(".")
    kept = pieces[:1]
    if not (pieces[0].isdigit() and int(pieces[0]) <= 4):
        for piece in pieces[1:5]:
            if piece == "1":
                break
            kept.append(piece)
    page = ("chapter_" if len(kept) == 1 else "sect_") + ".".join(kept)
    anchor = f"#table_{table}" if table else f"#sect_{number}" if len(pieces) > 1 else ""
    release = edition if _DICOM_EDITION.match(edition) else "current"
    site = f"https://dicom.nema.org/medical/dicom/{release}/output/chtml"
    return f"{site}/part{int(m[1]):02d}/{page}.html{anchor}"


def heading_url(r: Mapping[str, Any]) -> str | None:
    """The page of the section a requirement is filed under."""
    return standard_url(r["part"], r["edition"], section_number(r["part"], r["section"]))


# What a section reference holds: a section number, or another part's name ("PS3.4 C.2.2.2.2",
# "(by way of PS3.18 8.3.4.1)"), whose numbers follow until the clause ends (";" or ")").
_REFERENCE = re.compile(rf"(?P<part>PS3\.\d+)\s+|(?P<end>[);])|{_NUMBER.pattern}")


def _table(m: re.Match[str]) -> str | None:
    """The table a reference names ("Table 10.4.4-1"; "10.6.1-2" after "Tables 10.6.1-1 and")."""
    return m["n"] + m["table"] if m["table"] else None


def linked_section(part: str, edition: str, section: str) -> str:
    """``section`` as HTML, each section number in it a link to its page."""
    if not _numbered(part):
        return escape(section)
    out, at, current = [], 0, part
    for m in _REFERENCE.finditer(section):
        if m["part"]:
            current = m["part"]
        elif m["end"]:
            current = part
        elif url := standard_url(current, edition, m["n"], _table(m)):
            out.append(escape(section[at : m.start()]))
            out.append(f'<a href="{escape(url)}">{escape(m[0])}</a>')
            at = m.end()
    return "".join(out) + escape(section[at:])


def edition_name(part: str, edition: str) -> str:
    """An edition as a reader names it: "PS3.18 2024c", "RFC 9110 (June 2022)", "Azure change
    feed overview (MicrosoftDocs/azure-docs 0381795b, ms.date 1/18/2024)"."""
    if _DICOM_PART.match(part):
        return f"{part} {edition}"
    if edition.endswith(")") and " (" in edition:  # "commit (ms.date …)" inside parentheses
        edition = edition[:-1].replace(" (", ", ", 1)
    return f"{part} ({edition})"
