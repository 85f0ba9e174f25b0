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
an expected FAIL into an xfail; the verdict stays FAIL. A rule of level MAY never yields FAIL,
and one the check's own request breaks (``request_breaks``) never more than NON-STRICT.

Where the standard states a rule two ways (or a change proposal is rewriting it), a check
passes every reading its requirement lists and records the one the server chose with
``chose()``: the verdict is INFO, naming that reading.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NoReturn

from _pytest.outcomes import Skipped  # what pytest.skip raises; pytest.skip.Exception


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


class Informational(Exception):
    """Raised by ``info()``: the check ran to its end and records an observation."""


class VerdictSkip(Skipped):
    """A skip that carries its verdict (NOT-IMPLEMENTED or DISABLED) as a type, not as text.

    It is a pytest skip, so ``-rs`` and every report show it as one; the judge reads
    ``verdict`` and ``detail``. The message keeps the verdict as a prefix for people."""

    def __init__(self, verdict: Verdict, detail: str, capability: str | None = None) -> None:
        super().__init__(f"{verdict}: {detail}")
        self.verdict = verdict
        self.detail = detail
        self.capability = capability  # the capability found absent, if not the requirement's


class PreconditionFailed(Exception):
    """A step the check needs before its rule could be tested did not work: the check cannot
    judge the rule, so the verdict is ERROR, never FAIL."""

    def __init__(self, what: str) -> None:
        super().__init__(f"precondition failed: {what}")


def info(observation: str) -> NoReturn:
    """End the check with the INFO verdict: the standard leaves this open; say what was seen."""
    raise Informational(observation)


def not_implemented(what: str, capability: str | None = None) -> NoReturn:
    """The server lacks an optional capability (detected from a spec-sanctioned answer): the
    capability of the check's requirement, or ``capability`` where the check judges its rule on
    each of several services (authentication on frames, say: without frames, nothing to judge,
    and auth is not what is missing). Where the profile promises the capability, the verdict is
    FAIL if it is the requirement's own, else ERROR: the check could not judge its rule."""
    raise VerdictSkip(Verdict.NOT_IMPLEMENTED, what, capability)


def disabled(why: str) -> NoReturn:
    """The check is switched off by configuration."""
    raise VerdictSkip(Verdict.DISABLED, why)


# The readings the check now running recorded (one process runs one check at a time; the plugin
# empties the list before each check and reads it when the check is judged).
_chosen: list[str] = []


def chose(reading: str) -> None:
    """Record that the server's answer fits ``reading``, one of the acceptable readings its
    requirement lists (``readings`` in the catalog). The check goes on; if it passes, its verdict
    is INFO, naming the reading."""
    if reading not in _chosen:
        _chosen.append(reading)


def chosen_readings() -> list[str]:
    """What ``chose()`` recorded since the last ``forget_readings()``."""
    return list(_chosen)


def forget_readings() -> None:
    _chosen.clear()


def worst(verdicts: list[Verdict]) -> Verdict:
    return min(verdicts, key=SEVERITY.index) if verdicts else Verdict.DISABLED
