"""A check that cannot fail is worse than none: every check must be shown to fail.

A check counts as shown to fail when a fault our tests inject is registered to catch it (the
proxy's faults in tests/faults, the Azure stand-in's, the walkthrough's and the auth faults, and
a profile promising a capability Orthanc lacks), or when a real server we run it against breaks
its rule (a FAIL or NON-STRICT verdict recorded in expectations/orthanc.toml or
expectations/tiny-pacs.toml).

A check whose failure only a real server shows must also be shown to pass, or it might accuse
every server: on the other real server, or on Orthanc with a repair (tests/repairs.py) mending
that one rule. (A fault's checks pass on Orthanc without it: test_catalog_faults.py.)
"""

from __future__ import annotations

import test_azure_standin_suite as standin
import test_catalog_repairs as repaired_checks
import test_http_auth_orthanc as auth
import test_walkthrough_orthanc as walkthrough
from faults import CATCHES
from paths import ORTHANC_EXPECTATIONS, TINYPACS_EXPECTATIONS
from repairs import PASSES

from conformance import expectations

FAILING = {"FAIL", "NON-STRICT", "ERROR"}
PASSING = {"PASS", "INFO"}
WARNING_CHECK = "test_http.py::test_warning_headers_follow_the_http_grammar"


def caught_by_faults() -> set[str]:
    found = set().union(*CATCHES.values(), *standin.CATCHES.values())
    found |= {f"test_walkthrough.py::{n}" for v in walkthrough.FAULT_CATCHERS.values() for n in v}
    found |= {*auth.AUTH_CHECKS, WARNING_CHECK}
    return found | set().union(*repaired_checks.PROMISED.values())


def on_a_real_server(verdicts: set[str]) -> set[str]:
    """The checks with one of ``verdicts`` on Orthanc or on tiny-pacs."""
    found = set()
    for path in (ORTHANC_EXPECTATIONS, TINYPACS_EXPECTATIONS):
        entries = expectations.load(path).entries
        found |= {check for check, e in entries.items() if e.verdict in verdicts}
    return found


def failing_on_a_real_server() -> set[str]:
    return on_a_real_server(FAILING)


def only_a_real_server_fails() -> set[str]:
    return failing_on_a_real_server() - caught_by_faults()


def repaired() -> set[str]:
    return set().union(*PASSES.values())


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
