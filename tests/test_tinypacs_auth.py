"""Authentication for real on the second server: tiny-pacs-dicomweb with a bearer token.

The suite's auth checks pass on it (the refusals are INFO naming reading 401), each fails when a
proxy in front of it stops enforcing the token or drops the challenge, and a wrong token stops
the run before any check with one clear message that does not show the token.
(tests/test_http_auth_orthanc.py does the same with Orthanc's basic auth.)
"""

from __future__ import annotations

from collections.abc import Iterator

import faults.auth
import pytest
from authmatrix import AUTH_CHECKS, AUTH_FAULTS, caught, refusing, service, verdicts
from faultproxy import FaultProxy
from suiterun import RunSuite

from conformance.local.tinypacs import LocalTinyPacs, is_installed

TOKEN = "tiny-pacs-test-token-5f1c"
# What tiny-pacs offers of the matrix's services (its study metadata, frames and renderings
# answer 404 to the run's own token too; its metadata gives no BulkDataURI).
OFFERED = {"search", "retrieve", "store"}
# The gateway faults of a bearer token that open a service tiny-pacs offers.
TOKEN_FAULTS = sorted(
    name
    for name, checks in AUTH_FAULTS.items()
    if name not in faults.auth.BASIC_ONLY and {service(c) for c in checks} & OFFERED
)


@pytest.fixture(scope="module")
def tinypacs_with_token() -> Iterator[LocalTinyPacs]:
    if not is_installed():
        pytest.skip("tiny-pacs is not installed: run scripts/bootstrap")
    with LocalTinyPacs(token=TOKEN) as server:
        yield server


def bearer(token: str) -> dict[str, str]:
    return {"DICOMWEB_AUTH": "bearer", "DICOMWEB_TOKEN": token}


def test_auth_checks_pass_on_tinypacs_with_a_token(
    tinypacs_with_token: LocalTinyPacs, run_suite: RunSuite
) -> None:
    run = run_suite(
        tinypacs_with_token.dicomweb_url,
        "--dicomweb-cleanup=none",
        env=bearer(TOKEN),
        checks=AUTH_CHECKS,
    )
    assert verdicts(run.verdicts) == refusing(OFFERED), run.stdout
    assert TOKEN not in run.stdout + run.junit


@pytest.mark.parametrize("fault", TOKEN_FAULTS)
def test_auth_checks_catch_a_gateway_that_does_not_enforce_the_token(
    tinypacs_with_token: LocalTinyPacs,
    run_suite: RunSuite,
    monkeypatch: pytest.MonkeyPatch,
    fault: str,
) -> None:
    # The faulty gateway adds the service's own credentials: here the bearer token.
    monkeypatch.setattr(faults.auth, "SERVICE_AUTHORIZATION", f"Bearer {TOKEN}")
    with FaultProxy(tinypacs_with_token.url, fault, forwarded=True) as proxy:
        run = run_suite(
            f"{proxy.url}/dicomweb",
            "--dicomweb-cleanup=none",
            env=bearer(TOKEN),
            checks=AUTH_CHECKS,
        )
    assert verdicts(run.verdicts) == caught(fault, OFFERED), run.stdout


def test_a_wrong_token_stops_the_run_with_one_clear_message(
    tinypacs_with_token: LocalTinyPacs, run_suite: RunSuite
) -> None:
    wrong = "not-the-token-9b7e"
    run = run_suite(tinypacs_with_token.dicomweb_url, env=bearer(wrong))
    assert run.ret == pytest.ExitCode.USAGE_ERROR, run.stdout
    assert run.stdout.count("ERROR: dicomweb:") == 1, run.stdout
    assert "401" in run.stdout
    assert run.verdicts == {} and run.outcomes == {}
    assert wrong not in run.stdout and TOKEN not in run.stdout
