"""Every check can fail: each fault of tests/faults, injected by the proxy in front of a real
Orthanc, must be caught by the checks it is registered with.

Only the checks a fault names run through it (the rest would pass through unchanged), with
--dicomweb-strict so that a broken SHOULD counts as caught. Each of those checks must not fail
on Orthanc without the fault (the Orthanc expectations file says PASS, or INFO for a check that
records what the standard leaves open and still asserts what it does not), or the catch would
prove nothing.

Orthanc also holds a study of "someone else", as a production server would: a fault that ignores
a search's scope is only visible when there is something outside the scope.
"""

from __future__ import annotations

import proof
import pytest
from faultproxy import FaultProxy
from paths import ORTHANC_EXPECTATIONS
from suiterun import RunSuite, expected_outside

from conformance import samples
from conformance.client import Client
from conformance.dicomweb import stow
from conformance.local.orthanc import LocalOrthanc

CAUGHT = {"FAIL", "ERROR", "NON-STRICT"}
NOT_FAILING = {"PASS", "INFO"}
FAULTS = proof.faults("test_catalog_faults.py")  # tests/faults: the proxy's faults we run here


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fault_is_caught_by_its_checks(
    orthanc: LocalOrthanc, run_suite: RunSuite, fault: str
) -> None:
    orthanc.purge()
    theirs = samples.fresh_copy(samples.load(), "someone-else", "theirs")
    assert stow(Client(orthanc.dicomweb_url), theirs).status_code == 200
    with FaultProxy(orthanc.url, fault) as proxy:
        run = run_suite(f"{proxy.url}/dicom-web", "--dicomweb-strict", checks=FAULTS[fault].checks)
    missed = run.verdicts_outside(FAULTS[fault].checks, CAUGHT)
    assert not missed, f"{fault} not caught by: {missed}\n{run.stdout}"


def test_checks_that_catch_a_fault_pass_on_orthanc_without_it() -> None:
    """PASS or INFO: both are verdicts of a server that broke no rule the check asserts. A fault
    over a repair (OVER_A_REPAIR) has the repair as its server without the fault: its checks
    must be ones a repair makes pass (test_catalog_repairs.py)."""
    over_orthanc = [p.checks for p in FAULTS.values() if p.where != proof.OVER_A_REPAIR]
    assert not expected_outside(ORTHANC_EXPECTATIONS, set().union(*over_orthanc), NOT_FAILING)
    over_repairs = [p.checks for p in FAULTS.values() if p.where == proof.OVER_A_REPAIR]
    passing_through_a_repair = proof.repaired() | {c for c, _ in proof.repaired_readings()}
    assert set().union(*over_repairs) <= passing_through_a_repair
