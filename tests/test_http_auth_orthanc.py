"""The http checks the catalog's fault run (test_catalog_faults.py) cannot prove.

The authentication checks run against an Orthanc that demands basic auth (alice / s3cret-pw):
it refuses with 401 and a challenge, so the two refusal checks are INFO naming reading 401 (RFC
9110 11.4's 401, or PS3.18 8.5's 404) and the challenge check passes. Each fails when a proxy in
front of it breaks its rule: serving without credentials or with wrong ones (NON-STRICT: 11.4
is a SHOULD), or dropping the challenge of a 401 (FAIL: PS3.18's "shall"). A gateway answering
404 instead shows the other reading. (On the catalog's Orthanc, without users, they are
DISABLED.) The Warning check is INFO on Orthanc, which sends no Warning header: a proxy that adds
a malformed one must make it fail.
"""

from __future__ import annotations

from typing import Any

import proof
import pytest
from faultproxy import FaultProxy
from suiterun import RunSuite

from conformance.local.orthanc import LocalOrthanc

THIS = "test_http_auth_orthanc.py"
# The gateway faults (tests/faults/http.py) -> the auth checks each must fail.
AUTH_FAULTS = {
    name: p.checks for name, p in proof.faults(THIS).items() if p.where == proof.AUTH_GATEWAY
}
AUTH_CHECKS = sorted(set().union(*AUTH_FAULTS.values()))
CHALLENGE = "test_http.py::test_401_answers_carry_a_challenge"
# A server that refuses with 401 and a challenge: the refusals record reading 401.
REFUSING = {check: "PASS" if check == CHALLENGE else "INFO" for check in AUTH_CHECKS}
# The verdict of the check a fault breaks: the refusal is a SHOULD, the challenge a MUST.
CAUGHT = {check: "FAIL" if check == CHALLENGE else "NON-STRICT" for check in AUTH_CHECKS}
(REFUSED_404,) = (p for p in proof.repairs().values() if p.test == THIS)
(WARNING_CHECK,) = proof.faults(THIS)["malformed-warning-header"].checks
BASIC_AUTH = {
    "DICOMWEB_AUTH": "basic",
    "DICOMWEB_USERNAME": "alice",
    "DICOMWEB_PASSWORD": "s3cret-pw",
}


def auth_verdicts(run_verdicts: dict[str, str]) -> dict[str, str]:
    return {check: run_verdicts.get(check, "not run") for check in AUTH_CHECKS}


def readings(results: dict[str, Any]) -> dict[str, str | None]:
    """Check -> the reading it recorded (None: none), for the auth checks."""
    return {c["check"]: c["reading"] for c in results["checks"] if c["check"] in AUTH_CHECKS}


def test_auth_checks_pass_on_orthanc_with_basic_auth(
    orthanc_with_auth: LocalOrthanc, run_suite: RunSuite
) -> None:
    orthanc_with_auth.purge()
    run = run_suite(orthanc_with_auth.dicomweb_url, env=BASIC_AUTH, checks=AUTH_CHECKS)
    orthanc_with_auth.purge()
    assert auth_verdicts(run.verdicts) == REFUSING, run.stdout
    refused = {c: "401" for c in AUTH_CHECKS if c != CHALLENGE}
    assert readings(run.results) == {**refused, CHALLENGE: None}, run.stdout
    assert "s3cret-pw" not in run.stdout + run.junit  # the wrong password derives from it


@pytest.mark.parametrize("fault", sorted(AUTH_FAULTS))
def test_auth_checks_catch_a_server_that_does_not_enforce_credentials(
    orthanc_with_auth: LocalOrthanc, run_suite: RunSuite, fault: str
) -> None:
    orthanc_with_auth.purge()
    with FaultProxy(orthanc_with_auth.url, fault) as proxy:
        run = run_suite(f"{proxy.url}/dicom-web", env=BASIC_AUTH, checks=AUTH_CHECKS)
    orthanc_with_auth.purge()
    expected = {**REFUSING, **{check: CAUGHT[check] for check in AUTH_FAULTS[fault]}}
    assert auth_verdicts(run.verdicts) == expected, run.stdout


def test_auth_checks_take_a_404_refusal_as_its_reading(
    orthanc_with_auth: LocalOrthanc, run_suite: RunSuite
) -> None:
    """PS3.18 8.5: local policy may answer 404 rather than 401; with no 401 there is no
    challenge to judge (INFO)."""
    orthanc_with_auth.purge()
    with FaultProxy(orthanc_with_auth.url, REFUSED_404.name) as proxy:
        run = run_suite(f"{proxy.url}/dicom-web", env=BASIC_AUTH, checks=AUTH_CHECKS)
    orthanc_with_auth.purge()
    assert auth_verdicts(run.verdicts) == dict.fromkeys(AUTH_CHECKS, "INFO"), run.stdout
    assert readings(run.results) == {**dict(REFUSED_404.readings), CHALLENGE: None}, run.stdout


def test_warning_check_catches_a_malformed_warning(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    check = WARNING_CHECK
    orthanc.purge()
    direct = run_suite(orthanc.dicomweb_url, checks=[check])
    with FaultProxy(orthanc.url, "malformed-warning-header") as proxy:
        faulty = run_suite(f"{proxy.url}/dicom-web", checks=[check])
    orthanc.purge()
    assert direct.verdicts.get(check) == "INFO", direct.stdout  # Orthanc sends no Warning
    assert faulty.verdicts.get(check) == "FAIL", faulty.stdout
