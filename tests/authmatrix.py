"""The authentication matrix as our tests expect it: the checks (one per service), the gateway
faults (tests/faults/auth.py) with the cells each must open, and the verdicts a server gives.

A server offers some services; the checks of the others are NOT-IMPLEMENTED on it. Without a
fault every offered cell refuses with 401 and a challenge: the two refusal checks are INFO naming
reading 401, the challenge check passes. A fault breaks the cells it names, where offered: a
refusal is a SHOULD (NON-STRICT), the challenge a MUST (FAIL).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import proof
from faults.auth import CHALLENGE, SERVICES, WITHOUT, WRONG, cells

AUTH_CHECKS = sorted(cells(WITHOUT) + cells(WRONG) + cells(CHALLENGE))
# Each gateway fault (tests/faults/auth.py) -> the cells it opens.
AUTH_FAULTS = {
    name: p.checks for name, p in proof.faults().items() if p.where == proof.AUTH_GATEWAY
}
(REFUSED_404,) = (p for p in proof.repairs().values() if p.where == proof.AUTH_GATEWAY)
CELL = re.compile(r"\[(?P<service>[a-z]+)\]$")


def service(check: str) -> str:
    match = CELL.search(check)
    assert match, check
    return match["service"]


def refusing(offered: Iterable[str]) -> dict[str, str]:
    """The verdicts of a server that refuses every request without its credential with 401 and
    a challenge, on the services it offers."""
    offered = set(offered)
    assert offered <= set(SERVICES), offered - set(SERVICES)
    return {
        check: "NOT-IMPLEMENTED"
        if service(check) not in offered
        else "PASS"
        if check.startswith(CHALLENGE)
        else "INFO"
        for check in AUTH_CHECKS
    }


def caught(fault: str, offered: Iterable[str]) -> dict[str, str]:
    """The verdicts under ``fault``: its cells broken where the server offers them. A service
    the fault opens to every credential answers no 401 at all: its challenge check has nothing
    to judge (INFO)."""
    offered = set(offered)
    cells_of = AUTH_FAULTS[fault]
    broken = {
        check: "FAIL" if check.startswith(CHALLENGE) else "NON-STRICT"
        for check in cells_of
        if service(check) in offered
    }
    opened = {
        f"{CHALLENGE}[{s}]": "INFO"
        for s in offered
        if f"{WITHOUT}[{s}]" in cells_of and f"{WRONG}[{s}]" in cells_of
    }
    return refusing(offered) | opened | broken


def readings(results: dict[str, object]) -> dict[str, str | None]:
    """Check -> the reading it recorded (None: none), for the auth checks a run judged."""
    checks = results["checks"]
    assert isinstance(checks, list)
    return {
        c["check"]: c["reading"]
        for c in checks
        if c["check"] in AUTH_CHECKS and c["verdict"] != "NOT-IMPLEMENTED"
    }


def verdicts(run_verdicts: dict[str, str]) -> dict[str, str]:
    return {check: run_verdicts.get(check, "not run") for check in AUTH_CHECKS}
