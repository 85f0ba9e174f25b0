"""A run stopped from outside (a CI cancel, `timeout`, an eviction, Ctrl-C) still cleans up and
writes every report; a second Ctrl-C during the cleanup stops it at once, and says what is left.

Each test starts the suite against a real Orthanc as a process of its own, waits until the run has
stored data, signals it as a terminal or a CI runner would, and then reads what it left: on the
server, and in its reports. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from hostileproxy import HostileProxy
from test_hostile import marked_studies_on

from conformance.local.orthanc import LocalOrthanc

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


class Run:
    """The whole catalog against ``base_url``, as a process group of its own."""

    def __init__(self, base_url: str, directory: Path, *args: str) -> None:
        self.directory = directory
        env = {k: v for k, v in os.environ.items() if not k.startswith("DICOMWEB_")}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pytest",
                "--pyargs",
                "conformance.checks",
                f"--base-url={base_url}",
                f"--junitxml={directory / 'junit.xml'}",
                f"--dicomweb-results={directory / 'results.json'}",
                "--dicomweb-profile=orthanc",
                "-p",
                "no:cacheprovider",
                *args,
            ],
            cwd=directory,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a group of its own, as a terminal's job is
        )

    def wait_until(self, ready: object, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not ready():  # type: ignore[operator]
            if self.process.poll() is not None:
                pytest.fail(f"the run ended before {what}:\n{self.output()}")
            if time.monotonic() > deadline:
                self.process.kill()
                pytest.fail(f"{what} did not happen within {timeout} s")
            time.sleep(0.05)

    def finish(self, timeout: float = 90) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            pytest.fail(f"the run did not end within {timeout} s of the signal")

    def output(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.read().decode(errors="replace")

    @property
    def results(self) -> dict[str, object]:
        path = self.directory / "results.json"
        assert path.exists(), "no results.json"
        data: dict[str, object] = json.loads(path.read_text())
        return data


def has_data(orthanc: LocalOrthanc) -> bool:
    return bool(requests.get(f"{orthanc.url}/studies", timeout=5).json())


@pytest.mark.parametrize(
    ("workers", "signalled"),
    [((), "SIGTERM"), (("-n", "2"), "SIGTERM"), (("-n", "2"), "SIGINT to the group")],
    ids=["serial SIGTERM", "-n 2 SIGTERM", "-n 2 Ctrl-C"],
)
def test_a_stopped_run_cleans_up_and_writes_its_reports(
    orthanc: LocalOrthanc, tmp_path: Path, workers: tuple[str, ...], signalled: str
) -> None:
    orthanc.purge()
    run = Run(orthanc.dicomweb_url, tmp_path, *workers)
    run.wait_until(lambda: has_data(orthanc), "the run stored data")
    if signalled == "SIGTERM":
        run.process.send_signal(signal.SIGTERM)  # what `timeout` and CI runners send: one PID
    else:
        os.killpg(run.process.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends: the group
    status = run.finish()
    output = run.output()
    assert status == pytest.ExitCode.INTERRUPTED, output
    assert "Traceback (most recent call last)" not in output, output
    assert (tmp_path / "junit.xml").exists(), output
    cleanup = run.results["cleanup"]
    assert isinstance(cleanup, dict) and cleanup["leftovers"] == {}, output
    assert marked_studies_on(orthanc) == [], output
    assert "dicomweb cleanup" in output


def test_a_second_ctrl_c_stops_the_cleanup_and_says_what_is_left(
    orthanc: LocalOrthanc, tmp_path: Path
) -> None:
    orthanc.purge()
    with HostileProxy(orthanc.url, "slow-deletes") as proxy:
        run = Run(f"{proxy.url}/dicom-web", tmp_path)
        run.wait_until(lambda: len(marked_studies_on(orthanc)) >= 3, "the run stored 3 studies")
        os.killpg(run.process.pid, signal.SIGINT)
        run.wait_until(lambda: "DELETE" in proxy.methods, "the cleanup began", timeout=30)
        os.killpg(run.process.pid, signal.SIGINT)
        status = run.finish(timeout=30)
    output = run.output()
    assert status == pytest.ExitCode.INTERRUPTED, output
    assert "Traceback (most recent call last)" not in output, output
    cleanup = run.results["cleanup"]
    assert isinstance(cleanup, dict)
    left = set(cleanup["leftovers"])
    assert left and left == set(marked_studies_on(orthanc)), cleanup
    assert "cleanup was interrupted" in output
    orthanc.purge()
