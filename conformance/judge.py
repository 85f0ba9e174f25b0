"""From pytest reports to verdicts, and from verdicts back to pytest outcomes.

The plugin hands every report of a check to a ``Judge``. It decides the verdict from what happened
(passed, an assertion failed, a NOT-IMPLEMENTED skip, an INFO observation, an exception of the
suite), the level of the requirements the check covers, the profile's declared capabilities and
the expected verdicts; then it sets the pytest outcome that verdict maps to.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pytest
from _pytest._code.code import ExceptionInfo, ExceptionRepr

from .catalog import Catalog
from .errors import BudgetSpent, ReadOnlyError
from .expectations import Expectation, Expectations
from .items import check_name
from .profiles import Profile
from .report import restates
from .verdicts import Informational, PreconditionFailed, Verdict, VerdictSkip

MESSAGE_LIMIT = 500


@dataclass
class Judgement:
    verdict: Verdict
    message: str
    expected: tuple[str, Expectation] | None = None
    reading: str | None = None  # the reading of its rule the server chose, where there are several


def _first_line(text: str) -> str:
    return " ".join(text.strip().splitlines()[:1])[:MESSAGE_LIMIT]


def _failure_message(
    report: pytest.TestReport, excinfo: ExceptionInfo[BaseException] | None
) -> str:
    if excinfo is not None:  # what pytest's crash line says, whatever the report shows
        return _first_line(excinfo.exconly(tryshort=True).removeprefix("AssertionError: "))
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return _first_line(crash.message.removeprefix("AssertionError: "))
    return _first_line(str(longrepr))


class Judge:
    def __init__(
        self,
        catalog: Catalog,
        profile: Profile,
        expectations: Expectations,
        strict: bool = False,
        disabled: Mapping[str, str] | None = None,
    ) -> None:
        self.catalog = catalog
        self.profile = profile
        self.expectations = profile.expectations.merged(expectations)
        self.strict = strict
        self.disabled = dict(disabled or {})  # capability -> why it is switched off

    def before(self, requirement_ids: Sequence[str]) -> VerdictSkip | None:
        """The skip to raise when configuration or the profile already decides the verdict."""
        capabilities = self.catalog.capabilities(requirement_ids)
        for capability in sorted(capabilities & set(self.disabled)):
            return VerdictSkip(Verdict.DISABLED, f"{capability}: {self.disabled[capability]}")
        for rid in requirement_ids:
            vendor = self.catalog[rid].vendor if rid in self.catalog else None
            if vendor is not None and vendor != self.profile.vendor:
                return VerdictSkip(
                    Verdict.NOT_IMPLEMENTED,
                    f"{rid} is {vendor}'s documented extension: it binds {vendor}'s service, "
                    f"judged only under a profile of {vendor}'s (this run's is "
                    f"{self.profile.name})",
                )
        for capability in sorted(capabilities):
            declared = self.profile.declared(capability)
            if declared is not None and not declared.supported:
                return VerdictSkip(
                    Verdict.NOT_IMPLEMENTED,
                    f"profile {self.profile.name} declares no {capability} ({declared.source})",
                )
        return None

    def judge(
        self,
        report: pytest.TestReport,
        excinfo: ExceptionInfo[BaseException] | None,
        requirement_ids: Sequence[str],
        readings: Sequence[str] = (),
    ) -> Judgement | None:
        """The verdict of a setup or call report; None while the check has yet to run.
        ``readings``: what the check recorded with ``chose()``."""
        if report.when == "setup" and report.passed:
            return None
        absent: str | None = None  # the capability a NOT-IMPLEMENTED skip names, if any
        # Decided by the exception's type, never by its text.
        if excinfo is not None and excinfo.errisinstance(VerdictSkip):
            skip: VerdictSkip = excinfo.value  # type: ignore[assignment]
            verdict, message = skip.verdict, _first_line(skip.detail)
            absent = skip.capability
        elif report.skipped and getattr(report, "wasxfail", None) is None:
            # Any other skip (pytest.skip, a skip mark) is a check switched off.
            reason = str(report.longrepr[2]).removeprefix("Skipped: ")  # type: ignore[index]
            verdict, message = Verdict.DISABLED, _first_line(reason)
        elif excinfo is not None and excinfo.errisinstance(PreconditionFailed):
            verdict, message = Verdict.ERROR, _first_line(str(excinfo.value))
        elif excinfo is not None and excinfo.errisinstance(Informational):
            verdict, message = Verdict.INFO, _first_line(str(excinfo.value))
        elif excinfo is not None and excinfo.errisinstance((ReadOnlyError, BudgetSpent)):
            # The check needs a write that a read-only run does not send, or a read past the
            # run's read budget: not run.
            verdict, message = Verdict.DISABLED, _first_line(str(excinfo.value))
        elif report.passed:
            verdict, message = Verdict.PASS, ""
        else:
            message = _failure_message(report, excinfo)
            broke_rule = excinfo is not None and excinfo.errisinstance(
                (AssertionError, pytest.fail.Exception)
            )
            verdict = Verdict.FAIL if report.when == "call" and broke_rule else Verdict.ERROR
        if verdict is Verdict.FAIL:
            levels = self.catalog.levels(requirement_ids)
            if levels == {"MAY"}:
                # The standard lets the server not do it: absent, never a breach.
                verdict = Verdict.NOT_IMPLEMENTED
                message = f"not done, which the rule allows (MAY): {message}"
            elif levels and levels <= {"SHOULD", "MAY"}:
                verdict = Verdict.NON_STRICT
        reading = None
        if readings:
            listed = self.catalog.readings(requirement_ids)
            unknown = [g for g in readings if g not in listed]
            if unknown:
                verdict = Verdict.ERROR
                message = (
                    f"the check recorded reading {', '.join(unknown)}, which none of its "
                    f"requirements ({', '.join(requirement_ids)}) lists"
                )
            else:
                reading = ", ".join(sorted(readings))
                if verdict is Verdict.PASS:
                    verdict = Verdict.INFO
                    message = "; ".join(f"reading {g}: {listed[g].source}" for g in readings)
        if verdict is Verdict.NOT_IMPLEMENTED:
            own = self.catalog.capabilities(requirement_ids)
            capabilities = [absent] if absent else own
            promised = [
                (c, d)
                for c in sorted(capabilities)
                if (d := self.profile.declared(c)) is not None and d.supported
            ]
            if promised:
                capability, declared = promised[0]
                said = f"profile {self.profile.name} declares {capability} ({declared.source})"
                if capability in own:
                    verdict = Verdict.FAIL
                    message = f"{said}, but the server does not have it: {message}"
                else:
                    # A capability the check only uses (frames, for an auth check): its absence
                    # is no breach of the check's rules, which it leaves unjudged.
                    verdict = Verdict.ERROR
                    message = f"{said}, so the check cannot judge its rule: {message}"
        judgement = Judgement(verdict, message, reading=reading)
        judgement.expected = self.expectations.lookup(_check_of(report), requirement_ids)
        return judgement

    def apply(self, report: pytest.TestReport, judgement: Judgement) -> None:
        """Set the pytest outcome the verdict maps to, given what was expected."""
        verdict, message = judgement.verdict, judgement.message
        if verdict is Verdict.INFO:
            report.outcome, report.longrepr = "passed", None
        elif verdict in (Verdict.FAIL, Verdict.ERROR) and report.skipped:  # promised, missing
            report.outcome, report.longrepr = "failed", f"{verdict}: {message}"
        elif verdict is Verdict.DISABLED and report.failed:  # a write refused, a budget spent
            path, line = report.location[0], report.location[1] or 0
            report.outcome, report.longrepr = "skipped", (path, line + 1, f"{verdict}: {message}")
        # A check switched off was not run: it has no verdict to compare with an expected one.
        if judgement.expected is not None and verdict is not Verdict.DISABLED:
            key, expected = judgement.expected
            if expected.verdict is not verdict:
                self._unexpected(report, judgement, key, expected)
                return
            if expected.reading is not None and expected.reading != judgement.reading:
                self._unexpected(report, judgement, key, expected)
                return
            if verdict in (Verdict.FAIL, Verdict.ERROR, Verdict.NON_STRICT):
                report.outcome = "skipped"
                report.wasxfail = (
                    f"expected {verdict} ({expected.origin}): {expected.reason or message}"
                )
            return
        if verdict is Verdict.NON_STRICT and not self.strict:
            report.outcome = "skipped"
            report.wasxfail = f"{verdict}: {message}"

    @staticmethod
    def _unexpected(
        report: pytest.TestReport, judgement: Judgement, key: str, expected: Expectation
    ) -> None:
        verdict = judgement.verdict
        if expected.verdict is verdict:  # the same verdict, another reading of the rule
            got = f"reading {judgement.reading or '(none)'}"
            wanted = f"reading {expected.reading}"
        else:
            got, wanted = f"verdict {verdict}", str(expected.verdict)
        # The reason is worth a place only where it says more than the message shown with it.
        shown = expected.reason and not restates(expected.reason, judgement.message)
        note = (
            f"{got}, but {expected.origin} expects {wanted} for {key}"
            + (f" ({expected.reason})" if shown else "")
            + ": update the expectations if the change is right"
        )
        report.outcome = "failed"
        if isinstance(report.longrepr, ExceptionRepr):
            report.longrepr.addsection("dicomweb expectation", note)
        elif isinstance(report.longrepr, str):
            report.longrepr = f"{note}\n\n{report.longrepr}"
        else:
            detail = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
            report.longrepr = f"{note}\n{detail}".rstrip()


def _check_of(report: pytest.TestReport) -> str:
    return check_name(report.nodeid)
