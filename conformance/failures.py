"""A failing check as an operator reads it: the rule, what broke and the exchanges that show it,
in place of pytest's traceback when the server caused the failure; for any other failure, the
exchanges attached to its report.
"""

from __future__ import annotations

import pytest
from _pytest._code.code import (
    ExceptionChainRepr,
    ExceptionRepr,
    ReprFileLocation,
    ReprTracebackNative,
)

from . import catalog
from .client import Exchange
from .errors import NoAnswer, Throttled
from .plugin import requirement_ids
from .runstate import exchange_mark_key, state_key
from .verdicts import PreconditionFailed

EVIDENCE_EXCHANGES = 6
SHORT_CHARS = 300  # what broke, as the short summary (and JUnit's message attribute) says it


def own_exchanges(item: pytest.Item) -> list[Exchange]:
    """The exchanges of this check and its own fixtures, not those of fixtures it shares."""
    state = item.config.stash.get(state_key, None)
    if state is None or state._client is None:
        return []
    start = item.stash.get(exchange_mark_key, 0)
    exchanges = state.client.exchanges
    return [
        exchanges[i]
        for i in range(start, len(exchanges))
        if not any(i in shared for shared in state.shared)
    ]


# Failures that say what the server did; anything else (a bug of ours) keeps its traceback.
SERVER_FAILURES = (AssertionError, pytest.fail.Exception, NoAnswer, Throttled, PreconditionFailed)


def compact(item: pytest.Item, call: pytest.CallInfo[None]) -> bool:
    return (
        item.config.option.tbstyle == "auto"
        and call.excinfo is not None
        and call.excinfo.errisinstance(SERVER_FAILURES)
    )


def compact_failure(item: pytest.Item, call: pytest.CallInfo[None]) -> ExceptionChainRepr:
    """The failure as pytest prints it (the rule, what broke, the exchanges) and, for its short
    summary and JUnit's message, the first line of what broke."""
    assert call.excinfo is not None
    text = _compact_text(item, call)
    what = str(call.excinfo.value).strip().splitlines() or [call.excinfo.typename]
    short = what[0] if len(what[0]) <= SHORT_CHARS else what[0][:SHORT_CHARS] + " …"
    path, line = item.reportinfo()[:2]
    crash = ReprFileLocation(str(path), (line or 0) + 1, short)
    return ExceptionChainRepr([(ReprTracebackNative([text + "\n"]), crash, None)])


def _compact_text(item: pytest.Item, call: pytest.CallInfo[None]) -> str:
    assert call.excinfo is not None
    known = catalog.default()
    rules = [
        f"{rid} {known[rid].title} ({known[rid].reference})"
        for rid in requirement_ids(item)
        if rid in known
    ]
    what = str(call.excinfo.value).strip() or call.excinfo.typename
    if len(what) > 2000:
        what = what[:2000] + " …"
    exchanges = own_exchanges(item)
    shown = exchanges[-EVIDENCE_EXCHANGES:]
    lines = [*rules, f"{call.excinfo.typename}: {what}"]
    if shown:
        skipped = len(exchanges) - len(shown)
        lines.append("")
        lines.append("dicomweb exchanges" + (f" (the last {len(shown)})" if skipped else "") + ":")
        lines += [e.render() + "\n" for e in shown]
    return "\n".join(lines).rstrip()


def attach_evidence(item: pytest.Item, report: pytest.TestReport) -> None:
    """The exchanges of a failing check, inside its report (terminal, JUnit XML, HTML)."""
    exchanges = own_exchanges(item)
    if not exchanges:
        return
    shown = exchanges[-EVIDENCE_EXCHANGES:]
    skipped = len(exchanges) - len(shown)
    text = "\n\n".join(e.render() for e in shown)
    if skipped:
        text = f"({skipped} earlier exchange(s) of this check not shown)\n\n{text}"
    if isinstance(report.longrepr, ExceptionRepr):
        # Inside the failure itself, so JUnit XML and HTML reports carry the evidence too.
        report.longrepr.addsection("dicomweb exchanges", text)
    else:
        report.sections.append(("dicomweb exchanges", text))
