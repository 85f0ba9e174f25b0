"""results.json, the source of every report: valid against the schema the package ships, with
evidence for every verdict but PASS (the check's own exchanges, never a shared fixture's), every
requirement tested, not run or untested, and no stale-expectation noise from deselected checks.
The runs are of pytester checks against a server that is not there (the pre-flight only runs for
the suite's own checks), and of the walkthrough against a real Orthanc."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
from paths import ORTHANC_EXPECTATIONS
from reportsample import EXPECTATIONS, whole_run
from suiterun import SCHEMA, WALKTHROUGH_ON_ORTHANC, RunSuite, valid

from conformance import report, reporthtml, reports, results, sections
from conformance.local.orthanc import LocalOrthanc


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    # And every run of the suite in our tests (tests/conftest.py's run_suite) validates its
    # results.json against it.


def test_a_walkthrough_run_on_orthanc_writes_valid_results_with_evidence(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    orthanc.purge()
    run = run_suite(
        orthanc.dicomweb_url,
        *WALKTHROUGH_ON_ORTHANC,
        "--dicomweb-server-name=Orthanc 1.10.1 + DICOMweb 1.7",
    )
    document = valid(run.results)
    assert document["server_name"] == "Orthanc 1.10.1 + DICOMweb 1.7"
    assert document["suite"]["version"] and document["catalog"]["editions"]
    checks = {c["check"]: c for c in document["checks"]}
    for check in checks.values():
        if check["verdict"] in ("FAIL", "ERROR"):
            assert check["evidence"], check  # what broke, and how the server answered
        elif check["verdict"] == "PASS":
            assert not check["evidence"], check
    failing = checks[
        "test_walkthrough.py::test_instance_retrieve_returns_red_triangle[accept=application/dicom]"
    ]
    assert failing["verdict"] == "FAIL"
    # Its own GET, not the session's 8.7 MB store of the study it reads.
    assert [e["method"] for e in failing["evidence"]] == ["GET"], failing["evidence"]
    assert failing["evidence"][0]["status"] == 400
    statuses = {r["status"] for r in document["requirements"]}
    assert statuses == {"tested", "not run", "untested", "withdrawn"}
    untested = [r for r in document["requirements"] if r["status"] == "untested"]
    assert all(r["untested"] and r["verdict"] is None for r in untested)
    tested = next(r for r in document["requirements"] if r["status"] == "tested")
    assert tested["text"] and tested["section"] and tested["checks"]


def test_deselected_checks_leave_their_expectations_alone(
    orthanc: LocalOrthanc, run_suite: RunSuite, tmp_path: Path
) -> None:
    """-k walkthrough with the whole Orthanc expectations file: no 'matched no check' lines."""
    orthanc.purge()
    run = run_suite(
        orthanc.dicomweb_url,
        *WALKTHROUGH_ON_ORTHANC,
        f"--dicomweb-expectations={ORTHANC_EXPECTATIONS}",
    )
    assert "matched no check" not in run.stdout, run.stdout
    assert valid(run.results)["unmatched_expectations"] == []
    assert run.ret == pytest.ExitCode.OK, run.stdout


def test_a_results_file_of_another_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text('{"format": "something else"}')
    with pytest.raises(ValueError, match=r"not a results\.json this suite can read"):
        results.load(path)


def test_reports_are_written_next_to_results_and_rerendered_from_it_alone(
    orthanc: LocalOrthanc, run_suite: RunSuite, pytester: pytest.Pytester, tmp_path: Path
) -> None:
    orthanc.purge()
    run = run_suite(
        orthanc.dicomweb_url,
        "--dicomweb-profile=orthanc",
        f"--dicomweb-expectations={ORTHANC_EXPECTATIONS}",
    )
    document = valid(run.results)
    line = report.conformance_line(document)
    assert line.startswith("FAIL: ") and "tested MUST requirements fail" in line
    assert line in run.stdout  # the terminal ends with it too
    written = pytester.path / "conformance.html", pytester.path / "conformance.md"
    assert all(p.exists() for p in written), run.stdout
    # The server is gone from the picture: a results.json is enough to make them again.
    again = reports.write_all(results.load(pytester.path / "results.json"), tmp_path)
    assert [p.read_text() for p in again] == [p.read_text() for p in reversed(written)]
    page = (tmp_path / "conformance.html").read_text()
    assert len(page.encode()) < 1_000_000
    assert "<script src" not in page and "<link" not in page and "http://cdn" not in page
    failing = [r for r in document["requirements"] if r["verdict"] == "FAIL"]
    assert page.count('data-verdict="FAIL"') == len(failing)
    for r in failing:
        assert f'data-id="{r["id"]}"' in page
    # An expected FAIL shows as such, with its reason, never as a pass.
    deviation = next(c for c in document["checks"] if c["expected"] == "FAIL")
    assert f"expected FAIL by {ORTHANC_EXPECTATIONS.name}" in page
    statement = (tmp_path / "conformance.md").read_text()
    assert statement.startswith("# DICOMweb conformance\n\n**" + line + "**")
    assert "## Known deviations" in statement and deviation["check"] in statement
    assert "### [PS3.18 10.6.2](https://dicom.nema.org/" in statement


# --- The reports, made from a results.json alone (tests/reportsample.py: no server) ------------


def requirement(
    rid: str, verdict: str | None, status: str = "tested", **extra: object
) -> dict[str, object]:
    return {"id": rid, "level": "MUST", "verdict": verdict, "status": status, **extra}


def test_a_run_that_left_requirements_out_reads_partial_with_its_mode() -> None:
    rows = [
        requirement("A", "FAIL"),
        *(requirement(f"OK{n}", "PASS") for n in range(10)),
        *(requirement(f"LEFT{n}", None, "not run") for n in range(209)),
        requirement("NONE", None, "untested"),
    ]
    line = report.conformance_line({"requirements": rows, "mode": "smoke"})
    assert line == (
        "PARTIAL (smoke run: 209 requirements not run): "
        "1 of 11 tested MUST requirements fail, from 1 distinct fault"
    )
    # Without a mode (a -k subset), and passing: PARTIAL still, never PASS.
    passing = [r for r in rows if r["id"] != "A"]
    assert report.conformance_line({"requirements": passing}) == (
        "PARTIAL (209 requirements not run): 0 of 10 tested MUST requirements fail"
    )
    subset = whole_run(leave_out=["qido"], mode="smoke")
    assert report.conformance_line(subset).startswith("PARTIAL (smoke run: ")


def test_a_whole_run_reads_pass_fail_or_incomplete_and_names_a_failing_may() -> None:
    whole = [requirement("A", "PASS"), requirement("N", None, "untested")]
    assert report.conformance_line({"requirements": whole, "mode": None}) == (
        "PASS: 0 of 1 tested MUST requirements fail"
    )
    broken = [*whole, requirement("E", "ERROR")]
    assert report.conformance_line({"requirements": broken}).startswith("INCOMPLETE: ")
    # A broken optional capability fails the run: the line says so, not a bare PASS.
    may = [*whole, {**requirement("M", "FAIL"), "level": "MAY"}]
    assert report.conformance_line({"requirements": may}) == (
        "PASS: 0 of 1 tested MUST requirements fail; 1 MAY requirement fails"
    )
    assert report.conformance_line(whole_run()).startswith("FAIL: ")


def test_sections_come_in_the_standards_order_one_heading_each() -> None:
    assert sections.section_number("PS3.18", "10.4.4, Table 10.4.4-1") == "10.4.4"
    assert sections.section_number("PS3.18", "Table 8.7.4-1; 8.3.5.1.3") == "8.7.4"
    assert sections.section_number("PS3.18", "Tables 10.6.3-3, 10.6.3-4") == "10.6.3"
    assert sections.section_number("PS3.18", "Annex I, Table I.1-1; I.2.1") == "I"
    assert sections.section_number("PS3.4", "C.2.2.2.1 (by way of PS3.18 10.6.2)") == "C.2.2.2.1"
    assert sections.section_number("RFC 9110", "15.5, 15.6") == "15.5"
    assert (
        sections.section_number("Azure change feed overview", "API Design; Latest") == "API Design"
    )

    def row(rid: str, part: str, section: str) -> dict[str, str]:
        return {"id": rid, "transaction": "qido", "part": part, "section": section}

    rows = [
        row("T", "PS3.18", "Table 10.4.4-1"),
        row("C", "PS3.4", "C.2.2.2.1"),
        row("A", "PS3.18", "10.4.4, Table 10.4.4-1"),
        row("X", "PS3.18", "8.7.10"),
        row("F", "PS3.18", "F.2.3"),
        row("N", "PS3.18", "8.7.9"),
        row("R", "RFC 9110", "15.5"),
        row("S", "PS3.18", "3 (Definitions: Metadata)"),
        row("B", "PS3.18", "15.6.3.1"),
    ]
    headings = sections.grouped({"requirements": rows})["qido"]
    assert list(headings) == [
        "PS3.18 3",
        "PS3.18 8.7.9",
        "PS3.18 8.7.10",
        "PS3.18 10.4.4",
        "PS3.18 15.6.3.1",
        "PS3.18 F.2.3",
        "PS3.4 C.2.2.2.1",
        "RFC 9110 15.5",
    ]
    assert [r["id"] for r in headings["PS3.18 10.4.4"]] == ["T", "A"]  # one heading, not two
    assert sections.heading(row("I", "PS3.18", "Annex I, Table I.1-1")) == "PS3.18 Annex I"


def test_each_section_links_to_the_standards_page() -> None:
    dicom = "https://dicom.nema.org/medical/dicom/2024c/output/chtml"
    url = sections.standard_url
    # The page of the nearest section that has one (a first subsection is on its parent's).
    assert url("PS3.18", "2024c", "8.7.8.1") == f"{dicom}/part18/sect_8.7.8.html#sect_8.7.8.1"
    assert (
        url("PS3.18", "2024c", "10.4.3.3.2")
        == f"{dicom}/part18/sect_10.4.3.3.2.html#sect_10.4.3.3.2"
    )
    assert url("PS3.18", "2024c", "10.6.1.2.3") == f"{dicom}/part18/sect_10.6.html#sect_10.6.1.2.3"
    assert url("PS3.18", "2024c", "10") == f"{dicom}/part18/chapter_10.html"
    assert url("PS3.18", "2024c", "3.9") == f"{dicom}/part18/chapter_3.html#sect_3.9"
    assert url("PS3.18", "2024c", "I") == f"{dicom}/part18/chapter_I.html"
    assert (
        url("PS3.4", "2024c", "C.2.2.2.1.1") == f"{dicom}/part04/sect_C.2.2.2.html#sect_C.2.2.2.1.1"
    )
    assert url("PS3.18", "2024c", "10.4.4", "10.4.4-1") == (
        f"{dicom}/part18/sect_10.4.4.html#table_10.4.4-1"  # a table: the section it is in
    )
    assert (
        url("RFC 9110", "June 2022", "15.5")
        == "https://www.rfc-editor.org/rfc/rfc9110#section-15.5"
    )
    assert url("Azure change feed overview", "x", "API Design") is None
    # In a requirement's reference, each number links, to its own part's pages.
    linked = sections.linked_section("PS3.18", "2024c", "8.3.4, Table 8.7.3-1; PS3.4 C.2.2.2.2")
    assert f'<a href="{dicom}/part18/sect_8.3.4.html#sect_8.3.4">8.3.4</a>' in linked
    assert f'<a href="{dicom}/part18/sect_8.7.3.html#table_8.7.3-1">Table 8.7.3-1</a>' in linked
    assert f'PS3.4 <a href="{dicom}/part04/sect_C.2.2.2.2.html#sect_C.2.2.2.2">' in linked
    back = sections.linked_section("PS3.5", "2024c", "7.1.1 (with PS3.18 F.2.2); 7.4.2")
    assert f"{dicom}/part18/sect_F.2.2.html" in back and f"{dicom}/part05/sect_7.4.2.html" in back


def test_the_server_is_the_one_the_run_named_never_the_profile() -> None:
    named = reporthtml.render_html(whole_run(server_name="Orthanc 1.13.0 + DICOMweb plugin 1.24"))
    assert "<title>DICOMweb conformance: Orthanc 1.13.0 + DICOMweb plugin 1.24</title>" in named
    for nameless in ("", None):
        document = whole_run(server_name=nameless)
        page, statement = reporthtml.render_html(document), report.markdown(document)
        assert "<title>DICOMweb conformance: server not named</title>" in page
        assert "<tr><th>Server</th><td>server not named</td></tr>" in page
        assert "- Server: server not named" in statement
        assert "<tr><th>Profile</th><td>orthanc</td></tr>" in page


def test_editions_read_as_editions_and_documents_by_name() -> None:
    statement = report.markdown(whole_run())
    catalog_line = next(line for line in statement.splitlines() if line.startswith("- Catalog"))
    assert "PS3.18 2024c, PS3.4 2024c" in catalog_line
    assert "RFC 9110 (June 2022)" in catalog_line
    assert (
        "Azure DICOM service conformance statement v2 "
        "(MicrosoftDocs/azure-docs 01ff6a16, ms.date 1/18/2024)" in catalog_line
    )


def test_the_legend_and_every_info_of_a_must_say_why() -> None:
    document = whole_run()
    statement = report.markdown(document)
    for verdict in ("PASS", "NON-STRICT", "NOT-IMPLEMENTED", "NOT RUN", "UNTESTED", "WITHDRAWN"):
        assert f"- **{verdict}**: " in statement
    checks = {c["check"]: c for c in document["checks"]}
    page = reporthtml.render_html(document)
    for r in document["requirements"]:
        if r["verdict"] == "INFO":
            why = report.info_reason(r, checks)
            assert why and why.startswith(f"the server chose reading {r['reading']} ("), why
            assert f"INFO: {why[:60]}" in statement
            assert f'<p class="why"><b>INFO:</b> {reporthtml.escape(why)}</p>' in page
    # With no reading to name, the check's own message is the reason.
    r = {"verdict": "INFO", "reading": None, "readings": [], "checks": ["c"]}
    said = {"c": {"verdict": "INFO", "message": "OPTIONS studies answered 404"}}
    assert report.info_reason(r, said) == "OPTIONS studies answered 404"


def test_a_gate_report_opens_on_what_changed() -> None:
    document = whole_run(gate=True)
    statement = report.markdown(document)
    changed = [c for c in document["checks"] if report.change(c)]
    summary = report.gate_summary(document["checks"])
    assert summary == (
        "4 verdicts differ from sample.toml: 1 now FAIL, 1 now PASS, 1 reading changed, "
        "1 FAIL no entry names"
    )
    head, _, rest = statement.partition("## Changed since expectations (4)\n\n")
    assert "## Summary" not in head and rest.startswith(summary + "\n")
    for c in changed:
        assert f"`{c['check']}`" in rest.split("## Summary")[0]
    assert f"<tr><th>Expectations</th><td>{EXPECTATIONS}</td></tr>" in reporthtml.render_html(
        document
    )
    # A run without expectations has no such section (a profile's departures are no gate).
    assert "Changed since expectations" not in report.markdown(whole_run())


def test_known_deviations_are_listed_by_requirement_in_words() -> None:
    document = whole_run(gate=True)
    statement = report.markdown(document)
    deviations = statement.split("## Known deviations")[1].split("\n## ")[0]
    assert "N-byte" not in deviations  # the message, not the reason written from it
    failing = [
        c
        for c in document["checks"]
        if c["expected"] == c["verdict"] == "FAIL" and c["expected_reason"]
    ]
    for c in failing:
        (rid,) = c["requirements"]
        entry = deviations.split(f"- **{rid}** (MUST, FAIL): ")[1].split("\n- ")[0]
        assert f"  - `{c['check']}`: {c['message']}" in entry
    assert "NOT-IMPLEMENTED" not in deviations  # an absent optional capability is no deviation
    # In the HTML, a reason that restates the message is not shown twice.
    assert report.restates(
        "answered 404 with a N-byte payload", "answered 404 with a 37-byte payload"
    )
    assert report.restates("GET studies/2.25.… as DWC-<run>", "GET studies/2.25.12 as dwc-4a2b")
    assert not report.restates(
        "answered 404 with a N-byte payload", "answered 404 with a 3-byte body"
    )
    assert not report.restates("no Warning header is ever sent", "answered 200")
    page = reporthtml.render_html(document)
    assert "expected FAIL by sample.toml</span>" in page
    assert "expected FAIL by sample.toml: answered 404 with a N-byte payload" not in page
    assert "expected FAIL by sample.toml: no Warning header is ever sent</span>" in page


def test_evidence_in_the_html_is_compact_and_says_where_the_rest_is() -> None:
    page = reporthtml.render_html(whole_run())
    assert "&lt; [\n{&quot;0020000D&quot;:{&quot;vr&quot;:&quot;UI&quot;" in page
    assert "… (6 more lines in results.json)" in page  # 12 results and brackets: 8 of 14 lines
    assert "\n        &quot;0020000D&quot;" not in page  # no value per line


def test_a_whole_run_report_is_self_contained_and_small() -> None:
    page = reporthtml.render_html(whole_run(gate=True))
    assert len(page.encode()) < 1_000_000
    assert "<script src" not in page and "<link" not in page and "@import" not in page
    assert "@media print" in page
