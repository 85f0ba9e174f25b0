"""The http checks the catalog's fault run (test_catalog_faults.py) cannot prove.

The authentication checks run against an Orthanc that demands basic auth (alice / s3cret-pw):
they pass on it, and each fails when a proxy in front of it stops enforcing credentials (on the
catalog's Orthanc, without users, they are DISABLED). The Warning check is INFO on Orthanc, which
sends no Warning header: a proxy that adds a malformed one must make it fail.
"""

from __future__ import annotations

import pytest
from faultproxy import FaultProxy
from suiterun import RunSuite

from conformance.orthanc import LocalOrthanc

WITHOUT_CREDENTIALS = "test_http.py::test_request_without_credentials_is_refused_with_a_challenge"
WRONG_CREDENTIALS = "test_http.py::test_request_with_wrong_credentials_is_refused"
AUTH_CHECKS = [WITHOUT_CREDENTIALS, WRONG_CREDENTIALS]
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


@pytest.mark.parametrize(
    ("fault", "caught"),
    [
        ("auth-not-enforced", WITHOUT_CREDENTIALS),
        ("auth-accepts-any-credentials", WRONG_CREDENTIALS),
    ],
)
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
    check = "test_http.py::test_warning_headers_follow_the_http_grammar"
    orthanc.purge()
    direct = run_suite(orthanc.dicomweb_url, checks=[check])
    with FaultProxy(orthanc.url, "malformed-warning-header") as proxy:
        faulty = run_suite(f"{proxy.url}/dicom-web", checks=[check])
    orthanc.purge()
    assert direct.verdicts.get(check) == "INFO", direct.stdout  # Orthanc sends no Warning
    assert faulty.verdicts.get(check) == "FAIL", faulty.stdout
