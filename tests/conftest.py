"""Shared resources for the project's own tests: a real Orthanc, and running the suite on it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from suiterun import RunSuite, SuiteRun, parse_junit

from conformance.orthanc import LocalOrthanc, is_installed

pytest_plugins = ["pytester"]


def _need_orthanc() -> None:
    if is_installed():
        return
    message = "Orthanc and its DICOMweb plugin are not installed: run scripts/bootstrap"
    if os.environ.get("CI"):
        pytest.fail(message)  # CI installs them: a missing server there is a broken build
    pytest.skip(message)


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


@pytest.fixture
def run_suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> RunSuite:
    """Run the installed checks (``--pyargs conformance.checks``) as a user would, elsewhere."""

    def run(base_url: str, *args: str, env: dict[str, str] | None = None) -> SuiteRun:
        for key in [k for k in os.environ if k.startswith("DICOMWEB_")]:
            monkeypatch.delenv(key)
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        junit = pytester.path / "junit.xml"
        junit.unlink(missing_ok=True)
        result = pytester.runpytest_subprocess(
            "--pyargs",
            "conformance.checks",
            f"--base-url={base_url}",
            f"--junitxml={junit}",
            "-p",
            "no:cacheprovider",
            "-rs",
            *args,
        )
        text = junit.read_text() if junit.exists() else ""
        outcomes = parse_junit(junit) if text else {}
        return SuiteRun(result.ret, result.stdout.str() + result.stderr.str(), outcomes, text)

    return run
