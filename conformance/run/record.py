"""The hooks around each check: what configuration decides before it runs, its deadline, the
exchanges it owns, and its record (``results.CheckRecord``), built once where its verdict is
judged. Every view shows that record: results.json, JUnit, the terminal and pytest-html.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import asdict
from typing import Any

import pytest

from .. import readmap
from ..errors import DeadlineExceeded
from ..items import check_name, is_check, requirement_ids
from ..judge import Judgement
from ..results import CheckRecord
from ..scrub import scrub_report
from ..verdicts import Verdict, VerdictSkip, chosen_readings, forget_readings
from .state import (
    duration_key,
    exchange_mark_key,
    judge_key,
    own_exchanges,
    record_key,
    state_key,
)
from .views import (
    EVIDENCE_EXCHANGES,
    attach_evidence,
    compact,
    compact_failure,
    junit_properties,
)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    forget_readings()
    if readmap.on:  # what is read from here on is this check's (docs/what-is-read.md)
        readmap.enter(item.nodeid if is_check(item) else None)
    state = item.config.stash.get(state_key, None)
    if state is not None:
        item.stash[exchange_mark_key] = len(state.client.exchanges) if state.client_made else 0
    judge = item.config.stash.get(judge_key, None)
    if judge is not None and is_check(item):
        decided = judge.before(requirement_ids(item))
        if decided is not None:
            raise decided
    if state is not None and is_check(item):
        at, what = state.run_deadline
        if time.monotonic() >= at:
            raise DeadlineExceeded(f"{what} passed before this check began")
        timeout = state.settings.check_timeout
        state.client.check_deadline = (
            time.monotonic() + timeout,
            f"the check's deadline of {timeout:g} s (--dicomweb-check-timeout)",
        )


def pytest_runtest_logfinish() -> None:
    if readmap.on:
        readmap.enter(None)


def pytest_runtest_teardown(item: pytest.Item) -> None:
    state = item.config.stash.get(state_key, None)
    if state is not None and state.client_made:
        state.client.check_deadline = None


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, Any, Any]:
    """Remember which exchanges a shared (not function-scoped) fixture made."""
    state = request.config.stash.get(state_key, None)
    if state is None or not state.client_made or fixturedef.scope == "function":
        return (yield)
    start = len(state.client.exchanges)
    try:
        return (yield)
    finally:
        state.shared.append(range(start, len(state.client.exchanges)))


# pytest_runtest_makereport is a firstresult hook: the compact report of a failure must be the
# report pytest makes (a wrapper cannot stop pytest rendering the traceback it replaces), and the
# judgement must wrap whichever report was made. So this one hook has two implementations.
@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """The report of a check the server failed, made here so that pytest never renders the
    traceback the compact failure replaces: rendering it parsed the check's module again for
    every traceback entry, and cost more than the check (issue 13). What an operator reads
    first: the rule, what broke, the exchanges; no check source, no fixture reprs (--tb=long
    still gives them). None: pytest makes the report."""
    if not (is_check(item) and compact(item, call)):
        return None
    sections = [(f"Captured {key} {when}", content) for when, key, content in item._report_sections]
    return pytest.TestReport(
        item.nodeid,
        item.location,
        dict.fromkeys(item.keywords, 1),
        "failed",
        compact_failure(item, call),
        call.when,  # type: ignore[arg-type]  # never "collect" for an item
        sections,
        call.duration,
        call.start,
        call.stop,
        user_properties=item.user_properties,
    )


@pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_runtest_makereport")
def pytest_runtest_makereport_judged(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the evidence of a failing check, judge its verdict once and record it: the record
    rides on the report that decided it (pytest-html's row, the word before a failure) and on
    the teardown's, final one (JUnit's properties, results.json, from any xdist worker)."""
    report = yield
    if not is_check(item):
        return report
    skip = call.excinfo is not None and call.excinfo.errisinstance(VerdictSkip)
    if skip and report.skipped and isinstance(report.longrepr, tuple):
        # Point a verdict's skip at the check, not at the helper that raised it.
        path, line = item.reportinfo()[:2]
        report.longrepr = (str(path), (line or 0) + 1, str(report.longrepr[2]))
    if report.failed and not compact(item, call):
        attach_evidence(item, report)
    judge = item.config.stash.get(judge_key, None)
    if judge is None:
        return report
    item.stash[duration_key] = item.stash.get(duration_key, 0.0) + report.duration
    record = item.stash.get(record_key, None)
    if report.when in ("setup", "call") and record is None:
        judgement = judge.judge(report, call.excinfo, requirement_ids(item), chosen_readings())
        if judgement is not None:
            judge.apply(report, judgement)
            record = item.stash[record_key] = _record(item, judgement)
    elif report.when == "teardown":
        if report.failed and (record is None or record.verdict == Verdict.PASS):
            record = item.stash[record_key] = _record(
                item, Judgement(Verdict.ERROR, "teardown failed")
            )
        if record is not None:
            record.duration = round(float(item.stash[duration_key]), 3)
            report.user_properties = [*report.user_properties, *junit_properties(asdict(record))]
    if record is not None:
        report.dicomweb_record = asdict(record)  # type: ignore[attr-defined]
    state = item.config.stash.get(state_key, None)
    if state is not None and state.client_made:
        # Outermost wrapper: whatever any plugin put into the report, no secret leaves it.
        scrub_report(report, state.client.redactor)
    return report


def _record(item: pytest.Item, judgement: Judgement) -> CheckRecord:
    """A check's record from its verdict: with its own last exchanges when it is not PASS."""
    record = CheckRecord(
        check_name(item.nodeid),
        item.nodeid,
        requirement_ids(item),
        str(judgement.verdict),
        message=judgement.message,
        reading=judgement.reading or None,
    )
    if judgement.expected is not None:
        key, expected = judgement.expected
        record.expected = str(expected.verdict)
        record.expected_by = f"{expected.origin}:{key}"
        record.expected_reason = expected.reason or None
        record.expected_reading = expected.reading or None
    if judgement.verdict is not Verdict.PASS:
        shown = own_exchanges(item)[-EVIDENCE_EXCHANGES:]
        record.evidence = [asdict(e) for e in shown]
    return record
