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
from suiterun import SCHEMA, RunSuite, valid

from conformance import results
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
        "-k",
        "walkthrough",
        "--dicomweb-profile=orthanc",
        "--dicomweb-server-name=Orthanc 1.10.1 + DICOMweb 1.7",
    )
    document = valid(run.results)
    assert document["server_name"] == "Orthanc 1.10.1 + DICOMweb 1.7"
    assert document["suite"]["version"] and document["catalog"]["editions"]
    checks = {c["check"]: c for c in document["checks"]}
    for check in checks.values():
        assert bool(check["evidence"]) == (check["verdict"] in ("FAIL", "ERROR")), check
    failing = checks[
        "test_walkthrough.py::test_instance_retrieve_returns_red_triangle[accept=application/dicom]"
    ]
    assert failing["verdict"] == "FAIL"
    # Its own GET, not the session's 8.7 MB store of the study it reads.
    assert [e["method"] for e in failing["evidence"]] == ["GET"], failing["evidence"]
    assert failing["evidence"][0]["status"] == 400
    statuses = {r["status"] for r in document["requirements"]}
    assert statuses == {"tested", "not run", "untested"}
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
        "-k",
        "walkthrough",
        "--dicomweb-profile=orthanc",
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
