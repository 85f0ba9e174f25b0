"""The whole catalog against four real servers, verdict by verdict.

Each server's expectations file holds the verdict of every check on it, with the reason of every
one that is not PASS: expectations/orthanc.toml (Orthanc 1.10, the machine's own),
orthanc-1.12.toml and orthanc-1.13.toml (Debian trixie's and forky's, fetched by bootstrap), and
tiny-pacs.toml. The run uses the server's profile and its expectations file, so a change in any
verdict, either way, fails the run and this test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from paths import ORTHANC_EXPECTATIONS, ORTHANC_VERSIONS, TINYPACS_EXPECTATIONS, newer_orthanc_root
from suiterun import RunSuite, SuiteRun

from conformance import expectations
from conformance.local.orthanc import LocalOrthanc
from conformance.local.tinypacs import LocalTinyPacs
from conformance.local.tinypacs import is_installed as tinypacs_installed

NEWER = sorted(v for v in ORTHANC_VERSIONS if v != "1.10")


@pytest.fixture(scope="module")
def tinypacs() -> Iterator[LocalTinyPacs]:
    if not tinypacs_installed():
        pytest.skip("tiny-pacs is not installed: run scripts/bootstrap")
    with LocalTinyPacs() as server:
        yield server


@pytest.fixture(scope="module", params=NEWER)
def newer_orthanc(request: pytest.FixtureRequest) -> Iterator[tuple[str, LocalOrthanc]]:
    version: str = request.param
    with LocalOrthanc(root=newer_orthanc_root(version)) as server:
        yield version, server


def assert_every_verdict_as_expected(run: SuiteRun, expected_file: Path) -> None:
    baseline = expectations.load(expected_file).entries
    got = run.verdicts
    assert got, run.stdout
    changed = {
        check: f"{baseline[check].verdict} -> {verdict}" if check in baseline else "not listed"
        for check, verdict in got.items()
        if check not in baseline or baseline[check].verdict != verdict
    }
    assert not changed, f"verdicts differ from {expected_file.name}: {changed}\n{run.stdout}"
    assert run.results["unmatched_expectations"] == [], "entries for checks that no longer exist"
    assert run.ret == pytest.ExitCode.OK, run.stdout


def test_catalog_on_orthanc_gives_the_expected_verdicts(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    orthanc.purge()
    run = run_suite(
        orthanc.dicomweb_url,
        "--dicomweb-profile=orthanc",
        f"--dicomweb-expectations={ORTHANC_EXPECTATIONS}",
    )
    assert_every_verdict_as_expected(run, ORTHANC_EXPECTATIONS)
    assert run.results["counts"].get("PASS", 0) >= 100


def test_catalog_on_orthanc_in_parallel_and_one_request_at_a_time_gives_the_same_verdicts(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    """The same expectations as the serial run at the default concurrency above: neither the
    workers nor asking independent requests at once (properties asked first, every level read
    together, the cleanup's deletes) changes a verdict. Here under xdist and strictly one
    request after another (--dicomweb-concurrency=1), one run for both."""
    orthanc.purge()
    run = run_suite(
        orthanc.dicomweb_url,
        "-n",
        "2",
        "--dicomweb-concurrency=1",
        "--dicomweb-profile=orthanc",
        f"--dicomweb-expectations={ORTHANC_EXPECTATIONS}",
    )
    assert_every_verdict_as_expected(run, ORTHANC_EXPECTATIONS)


def test_catalog_on_a_newer_orthanc_gives_its_expected_verdicts(
    newer_orthanc: tuple[str, LocalOrthanc], run_suite: RunSuite
) -> None:
    version, server = newer_orthanc
    expected = ORTHANC_VERSIONS[version]
    run = run_suite(
        server.dicomweb_url,
        f"--dicomweb-profile=orthanc-{version}",
        f"--dicomweb-expectations={expected}",
    )
    assert_every_verdict_as_expected(run, expected)
    assert run.results["counts"].get("PASS", 0) >= 100


def test_catalog_on_tinypacs_gives_the_expected_verdicts(
    tinypacs: LocalTinyPacs, run_suite: RunSuite
) -> None:
    tinypacs.reset()
    run = run_suite(
        tinypacs.dicomweb_url,
        "--dicomweb-profile=tiny-pacs",
        f"--dicomweb-expectations={TINYPACS_EXPECTATIONS}",
        "--dicomweb-cleanup=none",  # no DELETE: the in-memory server is reset instead
    )
    assert_every_verdict_as_expected(run, TINYPACS_EXPECTATIONS)
