"""The whole catalog, read-only, on a foreign archive held by each of the four real servers.

The archive (tests/heldarchive.py: five studies of three patients, stored straight into the
server, never by a run of the suite) is all the run may read: ``--dicomweb-read-only
--dicomweb-studies=`` its five studies, with the server's profile. Through a proxy that records
every method, the run sends only GET, HEAD and OPTIONS; every verdict is the one in
expectations/read-only/<server>.toml (recorded by scripts/record-expectations, the same format
and loader as a writing run's); and the archive is byte-identical after the run: every instance,
retrieved as the server stores it before and after, hashes the same.
"""

from __future__ import annotations

import hashlib
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import heldarchive
import pytest
from hostileproxy import HostileProxy
from paths import EXPECTATIONS_DIR, ORTHANC_VERSIONS, REPO, SERVERS, newer_orthanc_root
from suiterun import RunSuite, SuiteRun

from conformance import expectations, multipart
from conformance.client import Client
from conformance.dicomweb import ACCEPT_DICOM_ANY_TS, retrieve
from conformance.local.localserver import LocalServer
from conformance.local.orthanc import LocalOrthanc
from conformance.local.tinypacs import LocalTinyPacs
from conformance.local.tinypacs import is_installed as tinypacs_installed

READ_ONLY_EXPECTATIONS = EXPECTATIONS_DIR / "read-only"
NEWER = sorted(v for v in ORTHANC_VERSIONS if v != "1.10")
READING_METHODS = {"GET", "HEAD", "OPTIONS"}
# The servers as the docs name them -> their profile (and read-only expectations file's name).
PROFILES = {"Orthanc 1.10": "orthanc", **{f"Orthanc {v}": f"orthanc-{v}" for v in NEWER}}
PROFILES["tiny-pacs"] = "tiny-pacs"
DOC = REPO / "docs" / "read-only.md"
UNJUDGED = {"DISABLED", "NOT-IMPLEMENTED"}  # as the run's own summary line counts
VERDICT_ORDER = ("PASS", "INFO", "NON-STRICT", "FAIL", "ERROR", "NOT-IMPLEMENTED", "DISABLED")


def expectations_of(profile: str) -> Path:
    return READ_ONLY_EXPECTATIONS / f"{profile}.toml"


def fingerprints(server: LocalServer, archive: heldarchive.HeldArchive) -> dict[str, str]:
    """SOP Instance UID -> SHA-256 of the instance as the server sends it (any transfer syntax:
    the one it stores)."""
    client = Client(server.dicomweb_url)
    got: dict[str, str] = {}
    for study, series, sop in heldarchive.stored_files(archive):
        path = f"studies/{study}/series/{series}/instances/{sop}"
        response = retrieve(client, path, ACCEPT_DICOM_ANY_TS)
        assert response.status_code == 200, (path, response.status_code)
        parts = list(multipart.iter_parts([response.content], response.headers["Content-Type"]))
        assert len(parts) == 1, (path, len(parts))
        got[sop] = hashlib.sha256(parts[0].body).hexdigest()
    return got


def read_only_run(server: LocalServer, profile: str, run_suite: RunSuite, *args: str) -> SuiteRun:
    """Store the archive, run the catalog read-only on it through a recording proxy, and show
    that the run only read and that the archive is as it was."""
    archive = heldarchive.held_archive()
    studies = heldarchive.store(Client(server.dicomweb_url), archive)
    before = fingerprints(server, archive)
    assert len(before) == len(archive.instances)
    expected = expectations_of(profile)
    with HostileProxy(server.url, root=server.dicomweb_path) as proxy:
        run = run_suite(
            f"{proxy.url}{server.dicomweb_path}",
            "--dicomweb-read-only",
            f"--dicomweb-studies={','.join(studies)}",
            f"--dicomweb-profile={profile}",
            f"--dicomweb-expectations={expected}",
            *args,
        )
    assert proxy.methods <= READING_METHODS, proxy.methods
    assert fingerprints(server, archive) == before, "the archive changed"
    assert f"dicomweb: reading {len(studies)} studies" in run.stdout, run.stdout
    assert_every_verdict_as_expected(run, expected)
    assert run.results["cleanup"] is None
    return run


def assert_every_verdict_as_expected(run: SuiteRun, expected_file: Path) -> None:
    baseline = expectations.load(expected_file).entries
    got = run.verdicts
    assert got, run.stdout
    changed = {
        check: f"{baseline[check].verdict} -> {verdict}" if check in baseline else "not listed"
        for check, verdict in got.items()
        if check not in baseline or baseline[check].verdict != verdict
    }
    assert not changed, f"verdicts differ from {expected_file}: {changed}\n{run.stdout}"
    assert run.results["unmatched_expectations"] == [], "entries for checks that no longer exist"
    assert run.ret == pytest.ExitCode.OK, run.stdout
    assert len([v for v in got.values() if v != "DISABLED"]) >= 60, run.stdout


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


def test_read_only_catalog_on_orthanc_gives_the_expected_verdicts(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    orthanc.purge()
    try:
        run = read_only_run(orthanc, "orthanc", run_suite)
    finally:
        orthanc.purge()
    # Orthanc answers every read that builds the held sample: nothing is left unjudged.
    assert "ERROR" not in run.verdicts.values(), run.stdout


def test_read_only_catalog_on_a_newer_orthanc_gives_its_expected_verdicts(
    newer_orthanc: tuple[str, LocalOrthanc], run_suite: RunSuite
) -> None:
    version, server = newer_orthanc
    read_only_run(server, f"orthanc-{version}", run_suite)


def test_read_only_catalog_on_tinypacs_gives_the_expected_verdicts(
    tinypacs: LocalTinyPacs, run_suite: RunSuite
) -> None:
    tinypacs.reset()
    # No DELETE on tiny-pacs; a read-only run cleans nothing up anyway.
    read_only_run(tinypacs, "tiny-pacs", run_suite, "--dicomweb-cleanup=none")


@pytest.mark.parametrize("server", sorted(PROFILES))
def test_each_read_only_file_names_the_checks_its_writing_file_names(server: str) -> None:
    """Both are recorded together (scripts/record-expectations): a check added since shows here,
    in seconds, before a server run does."""
    read_only = set(expectations.load(expectations_of(PROFILES[server])).entries)
    writing = set(expectations.load(SERVERS[server]).entries)
    hint = "run scripts/record-expectations (--read-only for these files alone)"
    assert read_only == writing, (
        f"only in the read-only file: {sorted(read_only - writing)}; only in the writing "
        f"file: {sorted(writing - read_only)}; {hint}"
    )


# ---------------------------------------------------------------------------------- the doc


def render_doc() -> str:
    """docs/read-only.md: what a read-only run judges on each server, from the files above."""
    files = {name: expectations.load(expectations_of(p)) for name, p in PROFILES.items()}
    entries = {name: f.entries for name, f in files.items()}
    names = list(entries)
    checks = sorted(set().union(*(e.keys() for e in entries.values())))
    lines = [
        "# What a read-only run judges",
        "",
        "<!-- generated by `python tests/test_read_only_servers.py > docs/read-only.md` (which",
        "     scripts/record-expectations runs after recording) from expectations/read-only/;",
        "     do not edit: tests/test_read_only_servers.py fails while it is out of date -->",
        "",
        "A read-only run (`--dicomweb-read-only --dicomweb-studies=UID[,UID]` or `auto:N`, issue",
        "23) judges an archive it may not write to, from the studies it already holds, and sends",
        "only GET, HEAD and OPTIONS. Below, the verdicts of the whole catalog run read-only on a",
        "foreign archive (tests/heldarchive.py: five studies of three patients in four character",
        "sets, with a multi-frame image, RLE Lossless images, a report, sequences and private",
        "tags, stored straight into each server, never by a run), as recorded in",
        "`expectations/read-only/` and asserted by `tests/test_read_only_servers.py`. DISABLED:",
        "the check needs to write (or a study of the run's own) and did not run; judged: neither",
        "DISABLED nor NOT-IMPLEMENTED, as the run's own summary line counts.",
        "",
        "## Verdicts per server",
        "",
        "| server | judged | " + " | ".join(VERDICT_ORDER) + " |",
        "| --- | --- | " + " | ".join("---" for _ in VERDICT_ORDER) + " |",
    ]
    for name in names:
        counts = Counter(str(e.verdict) for e in entries[name].values())
        judged = sum(n for v, n in counts.items() if v not in UNJUDGED)
        shown = " | ".join(str(counts.get(v, 0)) for v in VERDICT_ORDER)
        lines.append(f"| {name} | {judged} of {len(entries[name])} | {shown} |")
    judged_somewhere = [
        c for c in checks if any(e[c].verdict not in UNJUDGED for e in entries.values() if c in e)
    ]
    by_module: dict[str, list[str]] = defaultdict(list)
    for check in checks:
        by_module[check.split("::")[0]].append(check)
    lines += [
        "",
        "## Checks judged, per module",
        "",
        "Checks (parameters counted apart) judged (neither DISABLED nor NOT-IMPLEMENTED) on at",
        "least one server, of all the module's checks.",
        "",
        "| module | judged read-only | of |",
        "| --- | --- | --- |",
    ]
    for module, its in sorted(by_module.items()):
        lines.append(f"| `{module}` | {sum(c in judged_somewhere for c in its)} | {len(its)} |")
    lines += [
        "",
        "## Every check judged on at least one server",
        "",
        "| check | " + " | ".join(names) + " |",
        "| --- | " + " | ".join("---" for _ in names) + " |",
    ]
    for check in judged_somewhere:
        cells = [entries[n][check].verdict if check in entries[n] else "" for n in names]
        lines.append(f"| `{check}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def test_the_doc_says_what_the_expectations_say() -> None:
    assert DOC.read_text(encoding="utf-8") == render_doc(), (
        "docs/read-only.md is out of date: python tests/test_read_only_servers.py > "
        "docs/read-only.md"
    )


if __name__ == "__main__":
    sys.stdout.write(render_doc())
