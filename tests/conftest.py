"""Shared resources for the project's own tests: a real Orthanc, and running the suite on it.

A test that starts a server (Orthanc, tiny-pacs, a proxy or stand-in in front of one) is marked
``server``, so ``pytest tests -m "not server"`` is the fast loop. A test using a fixture that
gives a server (its return annotation names one) is marked here; one that starts a server itself
is marked by hand, and while a test without the mark runs, the launchers refuse to start one
(``localserver.REFUSE_ENV``): a forgotten mark fails that test at once, saying so.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
from collections.abc import Generator, Iterable, Iterator

import pytest
from azurestandin import AzureStandIn
from paths import CHECKS_DIR
from scriptedserver import clients, server  # noqa: F401 (fixtures of test_client, test_budget)
from suiterun import RunSuite, SuiteRun, parse_junit, valid

from conformance.items import check_name
from conformance.local import localserver, orthancbuilds
from conformance.local.orthanc import LocalOrthanc, is_installed

pytest_plugins = ["pytester"]

# No run of the suite in these tests takes a minute; a hung one fails here, not at CI's limit.
SUITE_TIMEOUT = 600


# What a fixture that gives a server returns (in its annotation): the launchers' servers and the
# stand-ins and proxies in front of one.
SERVER_TYPES = re.compile(
    r"\b(LocalServer|LocalOrthanc|LocalTinyPacs|AzureStandIn|FaultProxy|HostileProxy)\b"
)


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM (`timeout`, a CI cancel) stops our tests as Ctrl-C does: fixtures tear down and
    stop their servers. (Should this process die regardless, the kernel stops them: see
    conformance/local/localserver.py.)"""
    config.addinivalue_line(
        "markers",
        "server: starts a server (Orthanc, tiny-pacs, a proxy or stand-in in front of one); "
        'the fast loop is -m "not server"',
    )
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
        # A shell starts a background job (`cmd &`, nohup) with Ctrl-C ignored, and every process
        # it starts inherits that: the tests that send SIGINT to a run or a server would wait in
        # vain. Our tests behave the same in the foreground and the background.
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)


def gives_a_server(fixturedef: pytest.FixtureDef[object]) -> bool:
    """Whether a fixture's return annotation names a server."""
    annotation = getattr(fixturedef.func, "__annotations__", {}).get("return")
    return annotation is not None and SERVER_TYPES.search(str(annotation)) is not None


@pytest.hookimpl(tryfirst=True)  # before -m deselects by the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``server`` every test using, directly or not, a fixture that gives a server."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None or item.get_closest_marker("server"):
            continue
        if any(gives_a_server(d) for defs in info.name2fixturedefs.values() for d in defs):
            item.add_marker(pytest.mark.server)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """While a test not marked ``server`` runs, no launcher starts a server, in this process or
    the ones it starts."""
    if item.get_closest_marker("server"):
        return (yield)
    os.environ[localserver.REFUSE_ENV] = (
        f"{item.nodeid} is not marked server: mark it @pytest.mark.server (tests/conftest.py)"
    )
    try:
        return (yield)
    finally:
        os.environ.pop(localserver.REFUSE_ENV, None)


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
    with LocalOrthanc() as launched:
        yield launched


@pytest.fixture(scope="session")
def orthanc_with_auth() -> Iterator[LocalOrthanc]:
    """A throwaway Orthanc that demands basic auth (alice / s3cret-pw)."""
    _need_orthanc()
    with LocalOrthanc(users={"alice": "s3cret-pw"}) as launched:
        yield launched


@pytest.fixture(scope="session")
def azure_standin() -> Iterator[AzureStandIn]:
    """The Azure stand-in (tests/azurestandin.py, no fault) over an Orthanc of its own."""
    _need_orthanc()
    with LocalOrthanc() as launched, AzureStandIn(launched) as standin:
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
