"""What a failing check costs beside a passing one: the whole catalog, serial, against a local
throwaway Orthanc (whose deviations give dozens of failures), each check timed from the start
of its setup to the end of its reports (pytest_runtest_protocol: fixtures, the check, the
verdict, the failure report). Prints the median and the total per outcome.

Usage: .venv/bin/python benchmarks/check_cost.py
(also a pytest plugin: -p check_cost, writing each check's outcome and seconds to
$CHECK_COST_FILE)
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Generator
from pathlib import Path

import pytest

_costs: list[tuple[str, float]] = []
_reports_key = pytest.StashKey[list[pytest.TestReport]]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    started = time.perf_counter()
    outcome = yield
    reports = item.stash.get(_reports_key, [])
    failed = any(r.failed for r in reports)
    skipped = any(r.skipped for r in reports)
    kind = "failed" if failed else "skipped" if skipped else "passed"
    _costs.append((kind, time.perf_counter() - started))
    return outcome


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    item.stash.setdefault(_reports_key, []).append(report)
    return report


def pytest_unconfigure(config: pytest.Config) -> None:
    target = os.environ.get("CHECK_COST_FILE")
    if target:
        Path(target).write_text(json.dumps(_costs))


def main() -> int:
    from conformance.local.orthanc import LocalOrthanc

    here = Path(__file__).resolve().parent
    with LocalOrthanc() as orthanc, tempfile.TemporaryDirectory() as folder:
        target = Path(folder, "costs.json")
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(here), os.environ.get("PYTHONPATH", "")]),
            "CHECK_COST_FILE": str(target),
        }
        command = [
            sys.executable, "-m", "pytest", "--pyargs", "conformance.checks", "-q",
            "-p", "no:cacheprovider", "-p", "check_cost", "--dicomweb-profile=orthanc",
            f"--base-url={orthanc.dicomweb_url}",
        ]  # fmt: skip
        subprocess.run(command, stdout=subprocess.DEVNULL, env=env, check=False)
        costs = json.loads(target.read_text())
    for kind in ("passed", "failed", "skipped"):
        seconds = [s for k, s in costs if k == kind]
        if seconds:
            median, total = statistics.median(seconds) * 1000, sum(seconds)
            print(
                f"{kind:>8}: {len(seconds):3} checks, median {median:6.1f} ms, total {total:5.1f} s"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
