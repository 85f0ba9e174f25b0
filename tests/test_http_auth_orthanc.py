"""The http checks the catalog's fault run (test_catalog_faults.py) cannot prove.

The authentication checks run against an Orthanc that demands basic auth (alice / s3cret-pw):
they pass on it, and each fails when a proxy in front of it stops enforcing credentials (on the
catalog's Orthanc, without users, they are DISABLED). The Warning check is INFO on Orthanc, which
sends no Warning header: a proxy that adds a malformed one must make it fail.
"""

from __future__ import annotations

import proof
import pytest
from faultproxy import FaultProxy
from suiterun import RunSuite

from conformance.orthanc import LocalOrthanc

THIS = "test_http_auth_orthanc.py"
# The gateway faults (tests/faults/http.py) -> the one auth check each must fail.
AUTH_FAULTS = {
    name: check
    for name, p in proof.faults(THIS).items()
    if p.where == proof.AUTH_GATEWAY
    for check in p.checks
}
AUTH_CHECKS = sorted(AUTH_FAULTS.values())
(WARNING_CHECK,) = proof.faults(THIS)["malformed-warning-header"].checks
BASIC_AUTH = {
    "DICOMWEB_AUTH": "basic",
    "DICOMWEB_USERNAME": "alice",
    "DICOMWEB_PASSWORD": "s3cret-pw",
}


def auth_verdicts(run_verdicts: dict[str, str]) -> dict[str, str]:
    return {check: run_verdicts.get(check, "not run") for check in AUTH_CHECKS}


def test_auth_checks_pass_on_orthanc_with_basic_auth(
    orthanc_with_auth: LocalOrthanc, run_suite: RunSuite
) -> None:
    orthanc_with_auth.purge()
    run = run_suite(orthanc_with_auth.dicomweb_url, env=BASIC_AUTH, checks=AUTH_CHECKS)
    orthanc_with_auth.purge()
    assert auth_verdicts(run.verdicts) == dict.fromkeys(AUTH_CHECKS, "PASS"), run.stdout
    assert "s3cret-pw" not in run.stdout + run.junit  # the wrong password derives from it


@pytest.mark.parametrize(("fault", "caught"), sorted(AUTH_FAULTS.items()))
def test_auth_checks_catch_a_server_that_does_not_enforce_credentials(
    orthanc_with_auth: LocalOrthanc, run_suite: RunSuite, fault: str, caught: str
) -> None:
    orthanc_with_auth.purge()
    with FaultProxy(orthanc_with_auth.url, fault) as proxy:
        run = run_suite(f"{proxy.url}/dicom-web", env=BASIC_AUTH, checks=AUTH_CHECKS)
    orthanc_with_auth.purge()
    expected = {check: "FAIL" if check == caught else "PASS" for check in AUTH_CHECKS}
    assert auth_verdicts(run.verdicts) == expected, run.stdout


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
