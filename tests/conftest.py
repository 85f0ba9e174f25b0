"""Shared resources for the project's own tests: a real Orthanc, and running the suite on it."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Iterable, Iterator

import pytest
from azurestandin import AzureStandIn
from paths import CHECKS_DIR
from suiterun import RunSuite, SuiteRun, parse_junit, valid

from conformance import orthancbuilds
from conformance.judge import check_name
from conformance.orthanc import LocalOrthanc, is_installed

pytest_plugins = ["pytester"]

# No run of the suite in these tests takes a minute; a hung one fails here, not at CI's limit.
SUITE_TIMEOUT = 600


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM (`timeout`, a CI cancel) stops our tests as Ctrl-C does: fixtures tear down and
    stop their servers. (Should this process die regardless, the kernel stops them: see
    conformance/localserver.py.)"""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _need_orthanc() -> None:
    if is_installed():
        return
    message = "Orthanc and its DICOMweb plugin are not installed: run scripts/bootstrap"
    if os.environ.get("CI"):
        pytest.fail(message)  # CI installs them: a missing server there is a broken build
    pytest.skip(message)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line that cannot be missed per pinned Orthanc that could not be fetched."""
    for build in orthancbuilds.BUILDS.values():
        note = orthancbuilds.note_of(build)
        if build.suite is not None and note.exists():
            terminalreporter.write_line(
                f"WARNING: Orthanc {build.version} was not tested: {note.read_text().strip()}",
                yellow=True,
                bold=True,
            )


@pytest.fixture(scope="session")
def checks(pytestconfig: pytest.Config) -> dict[str, list[str]]:
    """Check name -> the requirement IDs it names, for every check the suite collects."""
    found: dict[str, list[str]] = {}

    class Collector:
        def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
            for item in items:
                ids = [i for mark in item.iter_markers("requirement") for i in mark.args]
                found[check_name(item.nodeid)] = ids

    code = pytest.main(
        [str(CHECKS_DIR), "--collect-only", "-q", "-p", "no:cacheprovider", "--base-url=http://x"],
        plugins=[Collector()],
    )
    assert code == pytest.ExitCode.OK
    return found


@pytest.fixture(scope="session")
def orthanc() -> Iterator[LocalOrthanc]:
    """A throwaway Orthanc with its DICOMweb plugin, for the whole test session."""
    _need_orthanc()
    with LocalOrthanc() as server:
        yield server


@pytest.fixture(scope="session")
def orthanc_with_auth() -> Iterator[LocalOrthanc]:
    """A throwaway Orthanc that demands basic auth (alice / s3cret-pw)."""
    _need_orthanc()
    with LocalOrthanc(users={"alice": "s3cret-pw"}) as server:
        yield server


@pytest.fixture(scope="session")
def azure_standin() -> Iterator[AzureStandIn]:
    """The Azure stand-in (tests/azurestandin.py, no fault) over an Orthanc of its own."""
    _need_orthanc()
    with LocalOrthanc() as server, AzureStandIn(server) as standin:
        yield standin


@pytest.fixture
def run_suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> RunSuite:
    """Run the installed checks (``--pyargs conformance.checks``) as a user would, elsewhere."""

    def run(
        base_url: str,
        *args: str,
        env: dict[str, str] | None = None,
        checks: Iterable[str] | None = None,
    ) -> SuiteRun:
        for key in [k for k in os.environ if k.startswith("DICOMWEB_")]:
            monkeypatch.delenv(key)
        # As on CI, where pytest explains failed asserts in full (untruncated): a check whose
        # failure explanation is slow to build stalls here too, not only there.
        monkeypatch.setenv("CI", "true")
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        junit = pytester.path / "junit.xml"
        junit.unlink(missing_ok=True)
        results = pytester.path / "results.json"
        results.unlink(missing_ok=True)
        # Only the named checks (test_x.py::test_y[p]), or all of them, from the installed package.
        targets = (
            [str(CHECKS_DIR / name) for name in checks]
            if checks is not None
            else ["--pyargs", "conformance.checks"]
        )
        result = pytester.runpytest_subprocess(
            *targets,
            f"--base-url={base_url}",
            f"--junitxml={junit}",
            f"--dicomweb-results={results}",
            "-p",
            "no:cacheprovider",
            "-rs",
            *args,
            timeout=SUITE_TIMEOUT,
        )
        text = junit.read_text() if junit.exists() else ""
        outcomes = parse_junit(junit) if text else {}
        # Every results.json a run writes in our tests must be valid against the shipped schema.
        data = valid(json.loads(results.read_text())) if results.exists() else {}
        return SuiteRun(result.ret, result.stdout.str() + result.stderr.str(), outcomes, text, data)

    return run
