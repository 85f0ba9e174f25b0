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
from suiterun import SCHEMA, WALKTHROUGH_ON_ORTHANC, RunSuite, valid

from conformance import report, results
from conformance.orthanc import LocalOrthanc


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
    again = report.write_all(results.load(pytester.path / "results.json"), tmp_path)
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
    assert "### PS3.18 10.6" in statement or "### PS3.18 10.6.1" in statement
