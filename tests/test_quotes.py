"""The quote checker: a quote is verbatim when each piece between its "[...]" is in the pages
of its part and edition (a small standard of our own here; the real one is NEMA's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance import quotes
from conformance.catalog import parse_file

PAGE = """<html><head><title>8.7.5</title></head><body><div class="section">
<h3>8.7.5 Acceptable Media Types</h3>
<p>The response to a request without an Accept header field shall be 406 (Not Acceptable).
The presence of an Accept Query Parameter does not eliminate the need for an Accept header
field. For details see <a href="sect_8.3.3.html">Section&nbsp;8.3.3.1</a>.</p>
<table><tr><td>Default</td><td>D</td><td>The origin server shall return this media type
when none of the Acceptable Media Types (see Section 8.7.5) are supported.</td></tr></table>
<p>It is &#8220;quoted&#8221;.</p></div></body></html>"""

RFC = """<html><body><p>The origin server MUST generate an Allow header field in a 405
response containing a list of the target resource's currently supported methods.</p>
</body></html>"""


def standard(tmp_path: Path) -> Path:
    (tmp_path / "std" / "part18").mkdir(parents=True)
    (tmp_path / "std" / "part18" / "sect_8.7.5.html").write_text(PAGE)
    (tmp_path / "std" / "rfc9110.html").write_text(RFC)
    return tmp_path / "std"


def catalog_file(tmp_path: Path, *quotes_: tuple[str, str, str]) -> Path:
    """One requirement per (part, edition, quote)."""
    lines = ['binds = "origin server"', 'capability = "http"']
    for n, (part, edition, text) in enumerate(quotes_):
        lines += [
            "[[requirement]]",
            f'id = "X-Q{n}"',
            'title = "t"',
            'level = "MUST"',
            f'part = "{part}"',
            'section = "8.7.5"',
            f'edition = "{edition}"',
            f"text = {json.dumps(text)}",  # a JSON string is a TOML basic string
        ]
    path = tmp_path / "x.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "quote",
    [
        "The response to a request without an Accept header field shall be 406 (Not Acceptable).",
        # Across a line break and a link, with an elision.
        "shall be 406 (Not Acceptable). [...] For details see Section 8.3.3.1.",
        # A table row, its cells joined by bars.
        "Default | D | The origin server shall return this media type when none of the "
        "Acceptable Media Types (see Section 8.7.5) are supported.",
        # Typographic quotes compare as straight ones.
        'Default | D | The origin server shall return [...] It is "quoted".',
    ],
)
def test_a_verbatim_quote_is_found(tmp_path: Path, quote: str) -> None:
    path = catalog_file(tmp_path, ("PS3.18", "2024c", quote))
    findings = list(quotes.check(parse_file(path), standard(tmp_path), "2024c"))
    assert [f.problem for f in findings] == [None]


@pytest.mark.parametrize(
    "quote",
    [
        "The response to a request without an Accept header shall be 406 (Not Acceptable).",
        "The response shall be 406 (Not Acceptable) [...] and a 405 shall carry an Allow.",
        "The response to a request without an Accept header field shall be 406.",  # cut short
    ],
)
def test_a_paraphrase_is_refused(tmp_path: Path, quote: str) -> None:
    path = catalog_file(tmp_path, ("PS3.18", "2024c", quote))
    (finding,) = quotes.check(parse_file(path), standard(tmp_path), "2024c")
    assert finding.problem is not None and "not in PS3.18 2024c" in finding.problem


def test_rfcs_are_checked_and_other_editions_are_left_alone(tmp_path: Path) -> None:
    path = catalog_file(
        tmp_path,
        ("RFC 9110", "June 2022", "The origin server MUST generate an Allow header field"),
        ("RFC 9110", "June 2022", "The origin server MUST generate an Allow header always"),
        ("PS3.18", "2025b", "a newer edition's words shall not be checked against 2024c"),
    )
    findings = {
        f.what: f.problem for f in quotes.check(parse_file(path), standard(tmp_path), "2024c")
    }
    assert findings["X-Q0"] is None
    assert findings["X-Q1"] is not None and "not in RFC 9110" in findings["X-Q1"]
    assert "X-Q2" not in findings


def test_the_command_exits_1_naming_each_quote_that_is_not_verbatim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = catalog_file(
        tmp_path,
        (
            "PS3.18",
            "2024c",
            "The response to a request without an Accept header field shall be 406",
        ),
        ("PS3.18", "2024c", "The origin server shall make coffee."),
    )
    assert quotes.main([str(standard(tmp_path)), str(path)]) == 1
    out = capsys.readouterr().out
    assert "X-Q1: not in PS3.18 2024c: 'The origin server shall make coffee.'" in out
    assert "1 of 2 quotes of 2024c are verbatim" in out
