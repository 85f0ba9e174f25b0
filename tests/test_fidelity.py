"""Every verdict stands on the standard's own words (issue 19), held by tests that need no
server: the catalog is on one edition, every level is its quote's verb, no check judges a rule
for the user agent or a withdrawn one, a MAY never FAILs, a request that breaks a "shall" is
never judged as a MUST, readings are named only where the catalog lists them, and a breach is
counted once however many requirements it fails."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from paths import REPO, SERVERS

from conformance import basis, catalog, expectations, report, results

CATALOG = catalog.default()
STANDARD_EDITION = "2024c"  # the newest edition readable in full (its published pages)


def test_the_standard_is_quoted_from_one_edition() -> None:
    editions = {r.id: r.edition for r in CATALOG.values() if r.part.startswith("PS3.")}
    others = {rid: e for rid, e in editions.items() if e != STANDARD_EDITION}
    assert not others, f"quoted from another edition than {STANDARD_EDITION}: {others}"


def test_every_rule_says_whom_it_binds_and_the_user_agents_are_not_judged(
    checks: dict[str, list[str]],
) -> None:
    judged = {rid for ids in checks.values() for rid in ids}
    unjudgeable = sorted(rid for rid in judged if not CATALOG[rid].judged)
    assert not unjudgeable, f"checks judge a user agent's rule or a withdrawn one: {unjudgeable}"
    for r in CATALOG.values():
        if not r.judged:
            assert r.untested or r.withdrawn, f"{r.id}: say why it is not judged"


def test_a_check_covers_requirements_of_one_level(checks: dict[str, list[str]]) -> None:
    """A check's failure is one verdict: a MUST and a MAY in one check would make it both."""
    mixed = {c: ids for c, ids in checks.items() if len(CATALOG.levels(ids)) > 1}
    assert not mixed, f"checks covering requirements of several levels: {mixed}"


def recorded() -> dict[str, dict[str, expectations.Expectation]]:
    return {name: expectations.load(path).entries for name, path in SERVERS.items()}


def test_no_server_is_recorded_failing_a_may_or_a_rule_its_request_breaks(
    checks: dict[str, list[str]],
) -> None:
    wrong = []
    for server, entries in recorded().items():
        for check, entry in entries.items():
            ids = checks.get(check, [check] if check in CATALOG else [])
            if entry.verdict == "FAIL" and ids:
                if CATALOG.levels(ids) == {"MAY"}:
                    wrong.append(f"{server}: {check} FAILs a MAY")
                if all(CATALOG[i].request_breaks for i in ids):
                    wrong.append(
                        f"{server}: {check} FAILs the answer to a request breaking a shall"
                    )
    assert not wrong, wrong


def test_recorded_readings_are_listed_by_their_requirements(
    checks: dict[str, list[str]],
) -> None:
    for server, entries in recorded().items():
        for check, entry in entries.items():
            if entry.reading is not None:
                listed = CATALOG.readings(checks.get(check, [check]))
                for reading in entry.reading.split(", "):
                    assert reading in listed, f"{server}: {check} records reading {reading}"


def test_the_standard_basis_document_is_made_from_the_catalog() -> None:
    committed = (REPO / "docs" / "standard-basis.md").read_text(encoding="utf-8")
    assert committed == basis.render(CATALOG, basis.vendor_levels()), (
        "docs/standard-basis.md is not the catalog's: run "
        "`.venv/bin/dicomweb-conformance basis > docs/standard-basis.md`"
    )


def row(rid: str, verdict: str | None, explained_by: list[str] | None = None) -> dict[str, Any]:
    return {"id": rid, "verdict": verdict, "explained_by": explained_by or [], "level": "MUST"}


def test_requirements_failing_from_one_fault_are_one_breach() -> None:
    rows = [
        row("PCT", "FAIL"),
        row("PN", "FAIL", ["PCT"]),
        row("REF", "FAIL", ["PCT"]),
        row("SEQ", "FAIL"),
        row("SEQ-SPS", "FAIL", ["SEQ"]),
        row("OWN", "FAIL", ["PASSES"]),  # its cause holds in this run: a breach of its own
        row("PASSES", "PASS"),
        row("ONE", "FAIL", ["TWO"]),  # linked both ways: still one breach
        row("TWO", "FAIL", ["ONE"]),
    ]
    groups = sorted(sorted(r["id"] for r in g) for g in results.breaches(rows))
    assert groups == [["ONE", "TWO"], ["OWN"], ["PCT", "PN", "REF"], ["SEQ", "SEQ-SPS"]]


def test_the_conformance_line_counts_faults_as_well_as_requirements() -> None:
    rows = [row("PCT", "FAIL"), row("PN", "FAIL", ["PCT"]), row("OK", "PASS"), row("X", "FAIL")]
    for group in results.breaches(rows):
        for r in group:
            r["breach"] = [g["id"] for g in group]
    line = report.conformance_line({"requirements": rows})
    assert line == "FAIL: 3 of 4 tested MUST requirements fail, from 2 distinct faults"
    alone = [row("X", "FAIL"), row("OK", "PASS")]
    assert report.conformance_line({"requirements": alone}).endswith("from 1 distinct fault")


def test_a_read_only_run_that_left_requirements_unjudged_is_never_a_pass() -> None:
    rows = [row("OK", "PASS"), row("STORE", "DISABLED"), row("STOW", "DISABLED")]
    reading = {"read_only": True}
    line = report.conformance_line({"requirements": rows, "reading": reading})
    assert line == (
        "PARTIAL (read-only run: 2 requirements not judged): 0 of 1 tested MUST requirements fail"
    )
    # A writing run that switched capabilities off says so elsewhere (DISABLED by choice).
    assert report.conformance_line({"requirements": rows}).startswith("PASS: 0 of 1")


def test_the_report_header_says_what_a_read_only_run_read() -> None:
    reading = {
        "read_only": True,
        "studies": ["1.2.3", "1.2.4"],
        "instances_sampled": 9,
        "partial": True,
        "requests": 1234,
        "bytes": 3_100_000,
        "budget": "5,000 requests and 500.0 MB",
    }
    assert report.read_only_line(reading) == (
        "read-only run on 2 studies (9 instances sampled, not the whole study)"
    )
    assert report.read_line(reading) == (
        "read 1,234 requests and 3.1 MB of a budget of 5,000 requests and 500.0 MB"
    )
    writing = {**reading, "read_only": False, "studies": [], "instances_sampled": 0}
    assert report.read_line({**writing, "budget": None}) == "read 1,234 requests and 3.1 MB"


@pytest.fixture(scope="module")
def readings_by_requirement() -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for r in CATALOG.values():
        found[r.id] = [g.id for g in r.readings]
    return found


def test_an_expected_reading_the_requirement_does_not_list_is_refused(
    readings_by_requirement: dict[str, list[str]],
) -> None:
    rid = next(r for r, gs in readings_by_requirement.items() if gs)
    with pytest.raises(expectations.ExpectationsError, match="expects reading 'nowhere'") as no:
        expectations.parse_table({rid: {"verdict": "INFO", "reading": "nowhere"}}, "x.toml")
    assert str(no.value).startswith("x.toml: entry") and "\n" not in str(no.value)
    listed = readings_by_requirement[rid][0]
    table = {rid: {"verdict": "INFO", "reading": listed}}
    assert expectations.parse_table(table, "x.toml").entries[rid].reading == listed
