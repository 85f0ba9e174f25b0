"""dicomweb-conformance, the console script: each command, as a person types it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from suiterun import valid

from conformance import cli, results
from conformance.orthanc import LocalOrthanc


def test_requirements_lists_and_searches_the_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["requirements", "wildcard", "--transaction", "qido", "--level", "MUST"]) == 0
    out = capsys.readouterr()
    assert "QIDO-MATCH-WILDCARD-ANY" in out.out and "PS3.4 C.2.2.2.4" in out.out
    assert "5 requirement(s)" in out.err  # the three wildcard rules, and two that mention it


def test_run_writes_every_report_into_one_folder_and_the_rest_works_from_it(
    orthanc: LocalOrthanc, tmp_path: Path
) -> None:
    orthanc.purge()
    out = tmp_path / "reports"
    command = [sys.executable, "-m", "conformance.cli"]
    done = subprocess.run(
        [
            *command,
            "run",
            "--out",
            str(out),
            f"--base-url={orthanc.dicomweb_url}",
            "-k",
            "walkthrough",
            "--dicomweb-profile=orthanc",
            "-p",
            "no:cacheprovider",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stdout  # Orthanc fails one walkthrough check
    names = {p.name for p in out.iterdir()}
    assert {"junit.xml", "results.json", "conformance.html", "conformance.md"} <= names
    valid(results.load(out / "results.json"))
    again = tmp_path / "again"
    assert cli.main(["report", str(out / "results.json"), "--out", str(again)]) == 0
    assert (again / "conformance.html").exists()
    assert (
        cli.main(
            [
                "compare",
                str(out / "results.json"),
                str(out / "results.json"),
                "--out",
                str(tmp_path / "cmp"),
            ]
        )
        == 0
    )
    baseline = subprocess.run(
        [*command, "baseline", str(out / "results.json")], capture_output=True, text=True
    )
    assert baseline.returncode == 0 and "[expect]" in baseline.stdout
    assert "-byte payload" not in baseline.stdout or "N-byte" in baseline.stdout
