"""The authentication matrix on the Azure stand-in with a bearer token: the only server here
with DELETE and a change feed, so the only one where those two services' checks can pass and
fail. (A stand-in, not Azure: its token is a shared string, not an Entra ID token.)

Without a fault every service it offers refuses a missing or wrong token with 401 and a Bearer
challenge; each gateway fault that opens DELETE or the change feed is caught there, as
tests/test_http_auth_orthanc.py shows for the services Orthanc offers.
"""

from __future__ import annotations

from collections.abc import Iterator

import faults.auth
import pytest
from authmatrix import AUTH_CHECKS, AUTH_FAULTS, caught, refusing, service, verdicts
from azurestandin import AzureStandIn
from faultproxy import FaultProxy
from suiterun import RunSuite

from conformance.local.orthanc import LocalOrthanc

TOKEN = "stand-in-test-token-8d2a"
# What the stand-in offers of the matrix's services: all of them (Orthanc's reads, its STOW,
# Azure's DELETE and change feed).
OFFERED = set(faults.auth.SERVICES)
ONLY_HERE = {"delete", "changefeed"}  # no other server of ours offers them
FAULTS_HERE = sorted(
    name
    for name, checks in AUTH_FAULTS.items()
    if name not in faults.auth.BASIC_ONLY and {service(c) for c in checks} & ONLY_HERE
)
PROFILE = "--dicomweb-profile=azure-v2"


@pytest.fixture(scope="module")
def standin_with_token(orthanc: LocalOrthanc) -> Iterator[AzureStandIn]:
    with AzureStandIn(orthanc, token=TOKEN) as standin:
        yield standin


def bearer(token: str) -> dict[str, str]:
    return {"DICOMWEB_AUTH": "bearer", "DICOMWEB_TOKEN": token}


def test_auth_checks_pass_on_the_standin_with_a_token(
    orthanc: LocalOrthanc, standin_with_token: AzureStandIn, run_suite: RunSuite
) -> None:
    orthanc.purge()
    run = run_suite(standin_with_token.base_url(), PROFILE, env=bearer(TOKEN), checks=AUTH_CHECKS)
    orthanc.purge()
    assert verdicts(run.verdicts) == refusing(OFFERED), run.stdout
    assert TOKEN not in run.stdout + run.junit


@pytest.mark.parametrize("fault", FAULTS_HERE)
def test_auth_checks_catch_a_gateway_that_opens_delete_or_the_change_feed(
    orthanc: LocalOrthanc,
    standin_with_token: AzureStandIn,
    run_suite: RunSuite,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
) -> None:
    monkeypatch.setattr(faults.auth, "SERVICE_AUTHORIZATION", f"Bearer {TOKEN}")
    orthanc.purge()
    root = standin_with_token.base_url().removesuffix("/v2")
    with FaultProxy(root, fault, forwarded=True) as proxy:
        run = run_suite(f"{proxy.url}/v2", PROFILE, env=bearer(TOKEN), checks=AUTH_CHECKS)
    orthanc.purge()
    assert verdicts(run.verdicts) == caught(fault, OFFERED), run.stdout
