"""The gate's modes (--dicomweb-mode): certify refuses what would make a run unpublishable,
nightly needs its expectations and fails on a stale one, smoke runs the walkthrough alone."""

from __future__ import annotations

from pathlib import Path

import pytest
from paths import ORTHANC_EXPECTATIONS
from suiterun import WALKTHROUGH_ON_ORTHANC, RunSuite

from conformance.local.orthanc import LocalOrthanc

NOWHERE = "http://127.0.0.1:9/dicom-web"


@pytest.mark.parametrize(
    ("args", "refusal"),
    [
        ((f"--dicomweb-expectations={ORTHANC_EXPECTATIONS}",), "refuses an expectations file"),
        (("--dicomweb-disable=search",), "core capabilities switched off (search)"),
        (("-k", "walkthrough"), "runs every check; drop -k walkthrough"),
    ],
)
def test_certify_refuses_what_would_hide_a_verdict(
    run_suite: RunSuite, args: tuple[str, ...], refusal: str
) -> None:
    run = run_suite(NOWHERE, "--dicomweb-mode=certify", *args)
    assert run.ret == pytest.ExitCode.USAGE_ERROR, run.stdout
    assert refusal in run.stdout
    assert run.verdicts == {}


def test_nightly_needs_expectations(run_suite: RunSuite) -> None:
    run = run_suite(NOWHERE, "--dicomweb-mode=nightly")
    assert run.ret == pytest.ExitCode.USAGE_ERROR
    assert "needs --dicomweb-expectations" in run.stdout


def test_nightly_fails_on_a_stale_entry_that_a_plain_run_only_lists(
    orthanc: LocalOrthanc, run_suite: RunSuite, tmp_path: Path
) -> None:
    stale = '"test_walkthrough.py::test_store_to_study_path[gone]" = "PASS"\n'
    expected = tmp_path / "expect.toml"
    expected.write_text(ORTHANC_EXPECTATIONS.read_text() + stale)
    common = (
        *WALKTHROUGH_ON_ORTHANC,
        f"--dicomweb-expectations={expected}",
    )
    orthanc.purge()
    plain = run_suite(orthanc.dicomweb_url, *common)
    assert plain.ret == pytest.ExitCode.OK, plain.stdout
    assert "test_store_to_study_path[gone] matched no check" in plain.stdout
    orthanc.purge()
    nightly = run_suite(orthanc.dicomweb_url, *common, "--dicomweb-mode=nightly")
    assert nightly.ret == pytest.ExitCode.TESTS_FAILED, nightly.stdout
    assert nightly.results["mode"] == "nightly"


def test_smoke_runs_the_walkthrough_alone(orthanc: LocalOrthanc, run_suite: RunSuite) -> None:
    orthanc.purge()
    run = run_suite(orthanc.dicomweb_url, "--dicomweb-mode=smoke", "--dicomweb-profile=orthanc")
    assert run.verdicts and all(c.startswith("test_walkthrough.py::") for c in run.verdicts)
    assert len(run.verdicts) == 23
    assert run.results["unmatched_expectations"] == []
