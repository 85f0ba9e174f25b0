"""Verdicts: what a check found, in the words of a conformance statement.

Each verdict maps onto an ordinary pytest outcome, so ``-ra``, JUnit XML and pytest-html keep
working, and the verdict itself travels as a JUnit property:

========================  =========================================================
PASS                      passed
FAIL (a MUST broken)      failed
NON-STRICT (a SHOULD)     xfailed, or failed under ``--dicomweb-strict``
NOT-IMPLEMENTED           skipped (an optional capability is absent)
DISABLED                  skipped (switched off by configuration)
INFO                      passed (the standard leaves it open; what the server did is recorded)
ERROR                     failed or error (the suite or the infrastructure broke)
========================  =========================================================

A MUST failure is never turned into a skip. Known deviations (profiles, expectations files) turn
an expected FAIL into an xfail; the verdict stays FAIL.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NoReturn

import pytest


class Verdict(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    NON_STRICT = "NON-STRICT"
    NOT_IMPLEMENTED = "NOT-IMPLEMENTED"
    DISABLED = "DISABLED"
    INFO = "INFO"
    ERROR = "ERROR"


# Worst first: the verdict of a requirement is the worst of its checks' verdicts.
SEVERITY = (
    Verdict.ERROR,
    Verdict.FAIL,
    Verdict.NON_STRICT,
    Verdict.INFO,
    Verdict.PASS,
    Verdict.NOT_IMPLEMENTED,
    Verdict.DISABLED,
)

# Skip reasons carry their verdict as a prefix: "NOT-IMPLEMENTED: no change feed (404)".
SKIP_VERDICTS = (Verdict.NOT_IMPLEMENTED, Verdict.DISABLED)
PRECONDITION = "precondition failed"


class Informational(Exception):
    """Raised by ``info()``: the check ran to its end and records an observation."""


def info(observation: str) -> NoReturn:
    """End the check with the INFO verdict: the standard leaves this open; say what was seen."""
    raise Informational(observation)


def not_implemented(what: str) -> NoReturn:
    """The server lacks an optional capability (detected from a spec-sanctioned answer)."""
    pytest.skip(f"{Verdict.NOT_IMPLEMENTED}: {what}")


def disabled(why: str) -> NoReturn:
    pytest.skip(f"{Verdict.DISABLED}: {why}")


def from_skip_reason(reason: str) -> tuple[Verdict, str]:
    """The verdict a skip reason carries (a skip without a prefix is a switched-off check)."""
    text = reason.removeprefix("Skipped: ")
    for verdict in SKIP_VERDICTS:
        if text.startswith(f"{verdict}:"):
            return verdict, text[len(verdict) + 1 :].strip()
    return Verdict.DISABLED, text


def worst(verdicts: list[Verdict]) -> Verdict:
    return min(verdicts, key=SEVERITY.index) if verdicts else Verdict.DISABLED
