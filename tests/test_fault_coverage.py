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
"""

from __future__ import annotations

import proof
from paths import ORTHANC_EXPECTATIONS, SERVERS

from conformance import expectations

FAILING = {"FAIL", "NON-STRICT", "ERROR"}
PASSING = {"PASS", "INFO"}


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


def failing_on_a_real_server() -> set[str]:
    return on_a_real_server(FAILING)


def only_a_real_server_fails() -> set[str]:
    return failing_on_a_real_server() - caught_by_faults()


def repaired() -> set[str]:
    proof.load()
    return proof.repaired()


def test_every_check_is_shown_to_fail() -> None:
    every_check = set(expectations.load(ORTHANC_EXPECTATIONS).entries)
    never = sorted(every_check - caught_by_faults() - failing_on_a_real_server())
    assert not never, f"checks no fault and no server has made fail: {never}"


def test_checks_only_a_real_server_fails_are_shown_to_pass() -> None:
    never = only_a_real_server_fails() - on_a_real_server(PASSING) - repaired()
    assert not never, f"checks no server and no repair has made pass: {sorted(never)}"


def test_repairs_are_only_for_checks_no_real_server_passes() -> None:
    """A repair proves what no server does; where a server passes the check, it is not needed."""
    assert not repaired() & on_a_real_server(PASSING)
