"""What a person sees of a check and of the run, all shown from the checks' records: a failure
as an operator reads it (the rule, what broke, the exchanges) in place of pytest's traceback when
the server caused it, the word before a failing check's name, its JUnit properties, pytest-html's
Verdict and Requirements columns, and the terminal's summary of verdicts and cleanup.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Generator, Mapping
from typing import Any

import pytest
from _pytest._code.code import (
    ExceptionChainRepr,
    ExceptionRepr,
    ReprFileLocation,
    ReprTracebackNative,
)

from .. import catalog, results
from ..cleanup import merged
from ..errors import NoAnswer, Throttled
from ..evidence import Exchange
from ..items import requirement_ids
from ..report import conformance_line, gate_summary, read_line, read_only_line
from ..verdicts import PreconditionFailed, Verdict
from .recorder import recorder_of
from .state import cleanup_reports_key, identity_key, own_exchanges, reading_of, state_key

EVIDENCE_EXCHANGES = 6
SHORT_CHARS = 300  # what broke, as the short summary (and JUnit's message attribute) says it


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


def junit_properties(record: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A check's record as its JUnit properties: the verdict, what was expected and, when it is
    not PASS, the exchanges (an expected FAIL is a skip in JUnit, and would lose them)."""
    props = [("requirements", " ".join(record["requirements"])), ("verdict", record["verdict"])]
    for name in ("expected", "expected_by", "expected_reason", "expected_reading", "reading"):
        if record[name]:
            props.append((name, record[name]))
    if record["message"]:
        props.append(("message", record["message"]))
    if record["evidence"]:
        props.append(("evidence", "\n\n".join(Exchange(**e).render() for e in record["evidence"])))
    return props


def _record(report: pytest.TestReport) -> Mapping[str, Any] | None:
    return getattr(report, "dicomweb_record", None)


@pytest.hookimpl(wrapper=True)
def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> Generator[None, Any, Any]:
    """A check that failed, or deviated as expected, names its requirements in the word before
    its name ("FAILED QIDO-MATCH-NON-ASCII conformance/checks/…"): in the short summary pytest
    cuts what follows the name at the terminal's width, never the word."""
    status = yield
    record = _record(report)
    if record is None or not status or status[0] not in ("failed", "error", "xfailed", "xpassed"):
        return status
    category, letter, word = status
    named = ",".join(record["requirements"])
    if isinstance(word, tuple):
        return category, letter, (f"{word[0]} {named}", word[1])
    return category, letter, f"{word} {named}"


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_header(cells: list[str]) -> None:
    """pytest-html: a Verdict and a Requirements column."""
    cells[2:2] = ["<th>Verdict</th>", "<th>Requirements</th>"]


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_row(report: pytest.TestReport, cells: list[str]) -> None:
    record = _record(report) or {"verdict": "", "requirements": []}  # a collection error's
    verdict = html.escape(record["verdict"])
    requirements = html.escape(" ".join(record["requirements"]))
    cells[2:2] = [f"<td>{verdict}</td>", f"<td>{requirements}</td>"]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The run's verdicts (on the controller), then what cleanup did."""
    recorder = recorder_of(config)
    if recorder is not None and recorder.records:
        _verdicts(terminalreporter, config, recorder)
    _cleanup(terminalreporter, config)


def read_only_summary(records: list[dict[str, Any]], reading: dict[str, Any]) -> str:
    """What a read-only run judged, on what, what it read and what it could not run."""
    unrun = [r for r in records if r["verdict"] == "DISABLED" and "read-only" in r["message"]]
    judged = [r for r in records if r["verdict"] not in (Verdict.DISABLED, Verdict.NOT_IMPLEMENTED)]
    spent = [r for r in records if r["verdict"] == "DISABLED" and "read budget" in r["message"]]
    return (
        f"{read_only_line(reading)}: {len(judged)} checks judged; {len(unrun)} checks need to "
        "write and were not run (DISABLED; each is listed in results.json)"
        + (f"; {len(spent)} checks not run: the read budget was spent" if spent else "")
        + f"; {read_line(reading)}"
    )


def _verdicts(tr: Any, config: pytest.Config, recorder: Any) -> None:
    records, settings = recorder.records, recorder.settings
    counts = Counter(r["verdict"] for r in records)
    tr.section("dicomweb verdicts")
    tr.line(
        ", ".join(f"{counts[v]} {v}" for v in Verdict if counts[v])
        + f" (profile {recorder.profile.name})"
    )
    identity = config.stash.get(identity_key, None)
    if identity is not None:
        tr.line(f"server: {identity.line()}")
    rows = results.requirement_rows(recorder.catalog, records)
    by_status = Counter(r["status"] for r in rows)
    tested = Counter(r["verdict"] for r in rows if r["verdict"])
    tr.line(
        f"requirements: {', '.join(f'{tested[v]} {v}' for v in Verdict if tested[v])}; "
        f"{by_status['not run']} not run, {by_status['untested']} untested "
        f"(of {len(rows)})"
    )
    for line in _failing_requirements(records, rows):
        tr.line(line)
    headline = {"requirements": rows, "mode": settings.mode, "reading": reading_of(config)}
    tr.line(conformance_line(headline), bold=True)
    why = recorder.exit_reason(rows)
    if why:
        tr.line(why, bold=True)
    if not settings.writes:
        tr.line(read_only_summary(records, reading_of(config)))
    for key in recorder.unmatched_expectations(config):
        tr.line(f"expectation {key} matched no check in this run", yellow=True)
    if settings.results:
        tr.line(f"results: {settings.results}")
        for path in recorder.reports:
            tr.line(f"report: {path}")
        if recorder.report_error:
            tr.line(f"the reports could not be written: {recorder.report_error}", red=True)
    gate = gate_summary(records) if settings.expectations else None
    if gate:
        tr.line(gate, bold=True)


def _failing_requirements(records: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[str]:
    """The requirements that FAIL or ERROR, each marked expected or not, a few per line."""
    checks = {r["check"]: r for r in records}
    shown = []
    for row in rows:
        if row["verdict"] not in (Verdict.FAIL, Verdict.ERROR):
            continue
        bad = [checks[c] for c in row["checks"] if checks[c]["verdict"] == row["verdict"]]
        expected = all(c["expected"] == c["verdict"] for c in bad)
        shown.append(f"{row['id']} {row['verdict']}{'' if expected else ' (unexpected)'}")
    if not shown:
        return []
    lines = [", ".join(shown[i : i + 4]) for i in range(0, len(shown), 4)]
    return [f"failing requirements ({len(shown)}):", *(f"  {line}" for line in lines)]


def _cleanup(tr: Any, config: pytest.Config) -> None:
    reports = config.stash.get(cleanup_reports_key, [])
    if not reports:
        return
    state = config.stash[state_key]
    text = state.client.redactor.text if state.client_made else str
    total = merged(reports)
    removed = len(total.removed)
    tr.section("dicomweb cleanup")
    tr.line(f"removed {removed} stud{'y' if removed == 1 else 'ies'} ({total.method})")
    for uid, why in total.leftovers.items():
        tr.line(f"left on the server: study {uid} — {text(why)}", yellow=True)
    for uid, why in total.foreign.items():
        tr.line(f"not this run's, left alone: study {uid} — {text(why)}", yellow=True)
