"""The http checks the catalog's fault run (test_catalog_faults.py) cannot prove.

The authentication checks, one per service (tests/authmatrix.py), run against an Orthanc that
demands basic auth (alice / s3cret-pw): every service it offers refuses with 401 and a
challenge, so the two refusal checks are INFO naming reading 401 (RFC 9110 11.4's 401, or PS3.18
8.5's 404) and the challenge check passes; DELETE and the change feed, which Orthanc does not
offer, are NOT-IMPLEMENTED. Each cell fails when a gateway in front of it breaks its rule:
serving without credentials or with wrong ones (NON-STRICT: 11.4 is a SHOULD), or dropping the
challenge of a 401 (FAIL: PS3.18's "shall"). A gateway answering 404 instead shows the other
reading. (On the catalog's Orthanc, without users, they are
DISABLED.) The Warning check is INFO on Orthanc, which sends no Warning header: a proxy that adds
a malformed one must make it fail.
"""

from __future__ import annotations

import proof
import pytest
from authmatrix import AUTH_CHECKS, AUTH_FAULTS, REFUSED_404, caught, readings, refusing, verdicts
from faultproxy import FaultProxy
from suiterun import RunSuite

from conformance.local.orthanc import LocalOrthanc

THIS = "test_http_auth_orthanc.py"
# What Orthanc offers of the matrix's services: no DELETE, no change feed.
OFFERED = {"search", "metadata", "retrieve", "frames", "bulkdata", "rendered", "store"}
(WARNING_CHECK,) = proof.faults(THIS)["malformed-warning-header"].checks
BASIC_AUTH = {
    "DICOMWEB_AUTH": "basic",
    "DICOMWEB_USERNAME": "alice",
    "DICOMWEB_PASSWORD": "s3cret-pw",
}


def test_auth_checks_pass_on_orthanc_with_basic_auth(
    orthanc_with_auth: LocalOrthanc, run_suite: RunSuite
) -> None:
    orthanc_with_auth.purge()
    run = run_suite(orthanc_with_auth.dicomweb_url, env=BASIC_AUTH, checks=AUTH_CHECKS)
    orthanc_with_auth.purge()
    assert verdicts(run.verdicts) == refusing(OFFERED), run.stdout
    judged = {c: v for c, v in refusing(OFFERED).items() if v != "NOT-IMPLEMENTED"}
    expected = {c: None if v == "PASS" else "401" for c, v in judged.items()}
    assert readings(run.results) == expected, run.stdout
    assert "s3cret-pw" not in run.stdout + run.junit  # the wrong password derives from it


@pytest.mark.parametrize("fault", sorted(AUTH_FAULTS))
def test_auth_checks_catch_a_server_that_does_not_enforce_credentials(
    orthanc_with_auth: LocalOrthanc, run_suite: RunSuite, fault: str
) -> None:
    orthanc_with_auth.purge()
    with FaultProxy(orthanc_with_auth.url, fault, forwarded=True) as proxy:
        run = run_suite(f"{proxy.url}/dicom-web", env=BASIC_AUTH, checks=AUTH_CHECKS)
    orthanc_with_auth.purge()
    assert verdicts(run.verdicts) == caught(fault, OFFERED), run.stdout


def test_auth_checks_take_a_404_refusal_as_its_reading(
    orthanc_with_auth: LocalOrthanc, run_suite: RunSuite
) -> None:
    """PS3.18 8.5: local policy may answer 404 rather than 401; with no 401 there is no
    challenge to judge (INFO)."""
    orthanc_with_auth.purge()
    with FaultProxy(orthanc_with_auth.url, REFUSED_404.name, forwarded=True) as proxy:
        run = run_suite(f"{proxy.url}/dicom-web", env=BASIC_AUTH, checks=AUTH_CHECKS)
    orthanc_with_auth.purge()
    judged = {c: "INFO" for c, v in refusing(OFFERED).items() if v != "NOT-IMPLEMENTED"}
    assert verdicts(run.verdicts) == refusing(OFFERED) | judged, run.stdout
    chosen = dict(REFUSED_404.readings)
    expected = {c: chosen.get(c) for c in judged}
    assert readings(run.results) == expected, run.stdout


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
