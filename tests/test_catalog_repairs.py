"""Every check can pass: the checks that every real server fails are run where the rule holds.

Orthanc (1.10, 1.12 and 1.13) breaks the rule of each check registered with a repair
(tests/repairs.py); so does tiny-pacs, or it lacks the feature. The failing side of these checks is
proven by the servers themselves; the repair, a proxy in front of Orthanc 1.10 mending that one
rule, proves the other side: the check passes on a server that keeps the rule, so it does not
accuse every server. Where a real server passes, it is the evidence and no repair is kept
(test_fault_coverage.py).

Two capabilities Orthanc 1.10 lacks, the accept query parameter (which no server has; repaired
too) and thumbnails (which Orthanc 1.12 and 1.13 have, and pass), are shown to fail on Orthanc
1.10 by a profile that promises them (PROMISED): a server that claims a feature and lacks it,
which the verdicts turn from NOT-IMPLEMENTED into FAIL.
"""

from __future__ import annotations

from pathlib import Path

import proof
import pytest
from faultproxy import FaultProxy
from paths import ORTHANC_EXPECTATIONS
from suiterun import RunSuite

from conformance import expectations
from conformance.local.orthanc import LocalOrthanc

PASSING = {"PASS"}
THIS = "test_catalog_repairs.py"
REPAIRS = {n: p for n, p in proof.repairs().items() if p.test == THIS}  # tests/repairs.py
# A capability neither real server has -> the checks that fail where a profile promises it.
PROMISED = {
    name.removeprefix("promised-").removesuffix("-missing"): p.checks
    for name, p in proof.faults(THIS).items()
}


@pytest.mark.parametrize("name", sorted(REPAIRS))
def test_repair_makes_its_checks_pass(
    orthanc: LocalOrthanc, run_suite: RunSuite, name: str
) -> None:
    orthanc.purge()
    repair = REPAIRS[name]
    with FaultProxy(orthanc.url, name) as proxy:
        run = run_suite(f"{proxy.url}/dicom-web", "--dicomweb-strict", checks=repair.checks)
    readings = dict(repair.readings)
    not_passing = run.verdicts_outside(repair.checks - set(readings), PASSING)
    assert not not_passing, f"{name} does not make them pass: {not_passing}\n{run.stdout}"
    # Where the standard allows several readings, passing is INFO naming the one repaired.
    chosen = {c["check"]: (c["verdict"], c["reading"]) for c in run.results["checks"]}
    wrong = {c: chosen.get(c) for c, g in readings.items() if chosen.get(c) != ("INFO", g)}
    assert not wrong, f"{name}: not the readings {readings}: {wrong}\n{run.stdout}"


def test_checks_a_repair_passes_fail_on_orthanc_without_it() -> None:
    """Otherwise the repair would prove nothing that Orthanc itself does not. A repair that
    proves a reading of a rule (the standard allows several) proves one Orthanc does not
    choose."""
    entries = expectations.load(ORTHANC_EXPECTATIONS).entries
    # Orthanc does not pass them: it fails them, lacks the feature, or its answer shows nothing
    # (INFO without a reading: "answered 404, not 405: no Allow to check").
    passing = sorted(
        check
        for check in proof.repaired()
        if check not in entries
        or entries[check].verdict == "PASS"
        or (entries[check].verdict == "INFO" and entries[check].reading)
    )
    assert not passing, f"checks Orthanc passes or does not know, repaired: {passing}"
    same = sorted(
        (check, reading)
        for check, reading in proof.repaired_readings()
        if (e := entries.get(check)) and e.verdict == "INFO" and e.reading == reading
    )
    assert not same, f"readings Orthanc itself records, so their repair proves nothing: {same}"


def test_a_promised_capability_orthanc_lacks_fails_its_checks(
    orthanc: LocalOrthanc, run_suite: RunSuite, tmp_path: Path
) -> None:
    promises = "\n".join(
        f'{name} = {{ supported = true, source = "a vendor\'s claim, for this test" }}'
        for name in PROMISED
    )
    profile = tmp_path / "promises.toml"
    profile.write_text(f'name = "promises"\nextends = "orthanc"\n[capabilities]\n{promises}\n')
    orthanc.purge()
    checks = set().union(*PROMISED.values())
    run = run_suite(orthanc.dicomweb_url, f"--dicomweb-profile={profile}", checks=checks)
    not_failing = run.verdicts_outside(checks, {"FAIL"})
    assert not not_failing, f"{not_failing}\n{run.stdout}"
