"""Every name that stands for a check is a check: in seconds, with no server.

Adding a check touches its module, its requirement and the expectations files (written by
scripts/record-expectations); a fault or a repair may name it. A name that matches nothing is a
silent lie (an expectation that never applies, a fault that proves nothing), so each is held here
against the checks pytest collects, parameters included, and every collected check must have a
verdict on each real server, be shown to fail, and be shown to pass (test_fault_coverage.py)."""

from __future__ import annotations

import subprocess
import sys

import proof
import pytest
from paths import REPO, SERVERS

from conformance import catalog, expectations, profiles
from conformance.items import check_name


@pytest.fixture(scope="module")
def collected() -> set[str]:
    """The checks pytest collects from the installed package (collection only: no request)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "--pyargs",
            "conformance.checks",
            "--base-url=http://127.0.0.1:9/dicom-web",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    names = {check_name(line) for line in done.stdout.splitlines() if "::" in line}
    assert names, done.stdout + done.stderr
    return names


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_every_check_has_a_verdict_on_each_real_server(collected: set[str], server: str) -> None:
    recorded = set(expectations.load(SERVERS[server]).entries)
    missing, gone = sorted(collected - recorded), sorted(recorded - collected)
    hint = "run scripts/record-expectations and review git diff expectations/"
    assert not missing, f"checks with no verdict on {server}: {missing}; {hint}"
    assert not gone, f"entries on {server} for checks that no longer exist: {gone}; {hint}"


def test_every_fault_and_repair_names_collected_checks(collected: set[str]) -> None:
    unknown = {
        name: sorted(p.checks - collected)
        for name, p in proof.load().items()
        if p.checks - collected
    }
    assert not unknown, f"proofs naming no collected check: {unknown}"


def test_every_profile_key_is_a_collected_check_or_a_requirement(collected: set[str]) -> None:
    ids = set(catalog.default())
    unknown = {
        name: sorted(set(entries) - collected - ids)
        for name in profiles.shipped()
        if set(entries := profiles.load(name).expectations.entries) - collected - ids
    }
    assert not unknown, unknown
