"""A check that cannot fail is worse than none: every check must be shown to fail.

A check counts as shown to fail when a fault our tests inject is registered to catch it (in the
registry of tests/proof.py: the proxy's faults, the Azure stand-in's, the walkthrough's, the auth
gateway's, and a profile promising a capability Orthanc lacks), or when a real server we run it
against breaks its rule (a FAIL or NON-STRICT verdict recorded for Orthanc 1.10, 1.12 or 1.13 or
tiny-pacs in expectations/).

A check whose failure only a real server shows must also be shown to pass, or it might accuse
every server: on another real server (a newer Orthanc that fixed the bug is the strongest
evidence), or, where no real server passes, on Orthanc with a repair (tests/repairs.py) mending
that one rule. (A fault's checks pass on Orthanc without it: test_catalog_faults.py.)

A check of a MAY never FAILs (the server may not do it): it is shown to tell the two apart
instead, done on one server and not done (NOT-IMPLEMENTED or INFO) on another.
"""

from __future__ import annotations

import proof
from paths import ORTHANC_EXPECTATIONS, SERVERS

from conformance import catalog, expectations

FAILING = {"FAIL", "NON-STRICT", "ERROR"}


def caught_by_faults() -> set[str]:
    proof.load()
    return proof.caught_by_faults()


def on_a_real_server(verdicts: set[str]) -> set[str]:
    """The checks with one of ``verdicts`` on any real server (an Orthanc version, tiny-pacs)."""
    found = set()
    for path in SERVERS.values():
        entries = expectations.load(path).entries
        found |= {check for check, e in entries.items() if e.verdict in verdicts}
    return found


def passing_on_a_real_server() -> set[str]:
    """The checks a real server passes: PASS, or INFO naming the reading of its rule the server
    chose. An INFO without a reading ("not observable here") shows nothing either way."""
    found = set()
    for path in SERVERS.values():
        for check, e in expectations.load(path).entries.items():
            if e.verdict == "PASS" or (e.verdict == "INFO" and e.reading):
                found.add(check)
    return found


def failing_on_a_real_server() -> set[str]:
    return on_a_real_server(FAILING)


def only_a_real_server_fails() -> set[str]:
    return failing_on_a_real_server() - caught_by_faults()


def repaired() -> set[str]:
    """The checks a repair makes pass, outright or by recording a reading of their rule."""
    proof.load()
    return proof.repaired() | {check for check, _ in proof.repaired_readings()}


def only_may(checks: dict[str, list[str]]) -> set[str]:
    known = catalog.default()
    return {c for c, ids in checks.items() if ids and known.levels(ids) == {"MAY"}}


def test_every_check_is_shown_to_fail(checks: dict[str, list[str]]) -> None:
    every_check = set(expectations.load(ORTHANC_EXPECTATIONS).entries) - only_may(checks)
    never = sorted(every_check - caught_by_faults() - failing_on_a_real_server())
    assert not never, f"checks no fault and no server has made fail: {never}"


def test_every_check_of_a_may_tells_done_from_not_done(checks: dict[str, list[str]]) -> None:
    may = only_may(checks)
    not_done = on_a_real_server({"NOT-IMPLEMENTED", "INFO"})
    done = on_a_real_server({"PASS"}) | repaired()
    blind = sorted(c for c in may if c not in not_done or c not in done)
    assert not blind, f"checks of a MAY never seen both done and not done: {blind}"


def test_checks_only_a_real_server_fails_are_shown_to_pass() -> None:
    never = only_a_real_server_fails() - passing_on_a_real_server() - repaired()
    assert not never, f"checks no server and no repair has made pass: {sorted(never)}"


def test_repairs_are_only_for_checks_no_real_server_passes() -> None:
    """A repair proves what no server does; where a server passes the check, it is not needed.
    Where the standard allows several readings, that holds per reading: a repair proves a
    reading no real server chooses."""
    # A repair that is the server a fault is injected over (OVER_A_REPAIR) is that fault's
    # base, not a proof of passing: it stays where a real server passes too.
    bases = set().union(
        *(p.checks for p in proof.faults().values() if p.where == proof.OVER_A_REPAIR)
    )
    assert not (proof.repaired() - bases) & passing_on_a_real_server()
    chosen = {
        (check, e.reading)
        for path in SERVERS.values()
        for check, e in expectations.load(path).entries.items()
        if e.verdict == "INFO" and e.reading
    }
    proof.load()
    assert not proof.repaired_readings() & chosen
