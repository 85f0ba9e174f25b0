"""What the plugin does once a server is given: settings, the pre-flight check, and the hooks
that make verdicts, evidence and cleanup of the checks. ``plugin.py`` imports and registers this
module, and the fixtures of ``runfixtures.py``, only then.

The hooks lean on modules of their own: ``runstate.py`` (what a process shares between hooks and
fixtures), ``recorder.py`` (the verdicts, results.json and the terminal's summary),
``failures.py`` (a failure as an operator reads it), ``runcleanup.py`` (cleanup, the sweep and
--dicomweb-purge) and ``identity.py`` (what the server is).

It stays out of the way of other test suites that also use pytest-base-url's ``--base-url``
(selenium, playwright): the pre-flight runs only when the DICOMweb checks are targeted.
"""

from __future__ import annotations

import html
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Generator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from pytest_metadata.plugin import metadata_key

from . import catalog, deadline, expectations, profiles, samples
from .cleanup import CleanupReport
from .errors import DeadlineExceeded
from .failures import EVIDENCE_EXCHANGES, attach_evidence, compact, compact_failure, own_exchanges
from .identity import identify, profile_mismatch
from .judge import Judge, Judgement, check_name
from .plugin import CHECKS_DIR, arg_path, is_check, requirement_ids, targets_checks
from .preflight import preflight
from .profiles import Profile
from .recorder import VerdictRecorder
from .runcleanup import clean_up, merged, purge_studies
from .runstate import (
    RunState,
    cleanup_reports_key,
    deselected_key,
    evidence_key,
    exchange_mark_key,
    identity_key,
    judge_key,
    judgement_key,
    server_key,
    settings_key,
    state_key,
)
from .scrub import scrub_report
from .settings import OPTIONS, Settings, SettingsError, resolve
from .verdicts import Verdict, VerdictSkip, chosen_readings, forget_readings


def configure(config: pytest.Config, base_url: str) -> None:
    """Resolve the settings and set up the run; called by the plugin when a base URL is given,
    after it has registered this module's hooks and the fixtures (runfixtures.py)."""
    config.stash[cleanup_reports_key] = []
    config.stash[deselected_key] = []
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    try:
        settings = _settings(config, base_url)
        if settings.samples is not None or workerinput is None:
            samples.load(settings.samples)  # fail now, not in two hundred fixtures
        profile = profiles.load(settings.profile)
        expected = (
            expectations.load(settings.expectations)
            if settings.expectations
            else expectations.Expectations()
        )
        requirements = catalog.default()
    except (
        SettingsError,
        samples.SampleError,
        profiles.ProfileError,
        expectations.ExpectationsError,
        catalog.CatalogError,
    ) as exc:
        raise pytest.UsageError(f"dicomweb: {exc}") from None
    if settings.article_uids and (config.getoption("numprocesses", None) or 0):
        raise pytest.UsageError(
            "dicomweb: --dicomweb-article-uids stores one fixed study and so runs serially: "
            "drop -n/--numprocesses"
        )
    config.stash[settings_key] = settings
    _load_hypothesis_profile(settings.hypothesis)
    if settings.mode == "certify":
        _check_certify_targets(config)
    label = workerinput["workerid"] if workerinput else "main"
    # The run's deadline is the controller's: workers get it as a wall-clock time.
    ends = workerinput["dicomweb_run_ends"] if workerinput else time.time() + settings.run_timeout
    run_deadline = time.monotonic() + (ends - time.time())
    shared = Path(workerinput["dicomweb_shared_dir"]) if workerinput else None
    shared = shared if shared is not None and shared.is_dir() else None  # a worker elsewhere
    config.stash[state_key] = RunState(settings, label, profile, run_deadline, shared)
    disabled = {c: "switched off by --dicomweb-disable" for c in settings.disable}
    if settings.auth == "none":
        disabled.setdefault("auth", "the run has no credentials (--dicomweb-auth=none)")
    config.stash[judge_key] = Judge(requirements, profile, expected, settings.strict, disabled)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(settings, ends), "dicomweb-xdist")
    if workerinput is not None:
        _interrupt_on_sigterm()  # the controller does it once it knows the run is ours
    if workerinput is None:
        config.pluginmanager.register(
            VerdictRecorder(settings, requirements, profile), "dicomweb-verdicts"
        )


def _settings(config: pytest.Config, base_url: str) -> Settings:
    """The run's settings from the command line, the environment, a config file and the ini."""
    cli = {
        o.name: config.getoption(o.cli.lstrip("-").replace("-", "_"), None)
        for o in OPTIONS
        if not o.secret
    }
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is not None:
        # Every worker marks its data with the controller's run id.
        cli["run_id"] = workerinput["dicomweb_run_id"]
    ini = {o.ini: config.getini(o.ini) for o in OPTIONS}
    return resolve(base_url, cli, ini=ini)


def _load_hypothesis_profile(name: str) -> None:
    """How the property checks (checks/test_properties.py) search: ``ci`` derandomized (the same
    examples every run, so a verdict changes only when the server does), ``deep`` random and
    ten times longer. Neither has a deadline (the server's time is not the property's) nor an
    example database: a run must write nothing to the user's folder."""
    from hypothesis import HealthCheck, settings

    common: dict[str, Any] = {
        "deadline": None,
        "database": None,
        "suppress_health_check": [HealthCheck.too_slow],
        "print_blob": False,
        "report_multiple_bugs": False,  # one failure, the smallest: that is the verdict's evidence
    }
    # From hypothesis's own defaults, never from whatever profile is loaded now.
    parent = settings.get_profile("default")
    settings.register_profile("dicomweb-ci", parent, max_examples=30, derandomize=True, **common)
    settings.register_profile(
        "dicomweb-deep", parent, max_examples=300, derandomize=False, **common
    )
    settings.load_profile(f"dicomweb-{name}")


class XdistHooks:
    """Hooks that only exist under pytest-xdist, registered only when it is there."""

    def __init__(self, settings: Settings, run_ends: float) -> None:
        self.run_id = settings.run_id
        self.run_ends = run_ends
        self.shared_dir: str | None = None  # made by the controller for its workers

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["dicomweb_run_id"] = self.run_id
        node.workerinput["dicomweb_run_ends"] = self.run_ends
        if self.shared_dir is None:
            self.shared_dir = tempfile.mkdtemp(prefix=f"dicomweb-{self.run_id}-")
        node.workerinput["dicomweb_shared_dir"] = self.shared_dir

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self.shared_dir is not None:
            shutil.rmtree(self.shared_dir, ignore_errors=True)

    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        output = getattr(node, "workeroutput", {})
        state = node.config.stash.get(state_key, None)
        for uid, patient_id in output.get("dicomweb_shared", []):
            if state is not None:  # stored for every worker: deleted after the last one
                state.registry.add(uid, "shared by the workers", patient_id)
        report = output.get("dicomweb_cleanup")
        if report:
            node.config.stash[cleanup_reports_key].append(CleanupReport(**report))
        if output.get("dicomweb_deselected"):
            # Every worker collects (and deselects) the same: one list is the run's.
            node.config.stash[deselected_key] = output["dicomweb_deselected"]


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    settings = config.stash.get(settings_key, None)
    if settings is None:
        return None
    shown = settings.redacted()
    samples_dir = shown["samples"] or "generated (conformance.fixtures)"
    uids = "article's own" if settings.article_uids else "fresh per run"
    expected = f", expectations {settings.expectations}" if settings.expectations else ""
    return [
        f"dicomweb: {settings.base_url} auth={settings.auth} run-id={settings.run_id} "
        f"cleanup={settings.cleanup}",
        f"dicomweb: profile {settings.profile}{expected}, strict={settings.strict}",
        f"dicomweb: samples {samples_dir}, UIDs {uids}",
    ]


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    settings = config.stash.get(settings_key, None)
    if settings is None or hasattr(config, "workerinput") or config.option.collectonly:
        return
    if not targets_checks(config):
        return  # --base-url is someone else's (selenium, playwright): stay out of the way
    _interrupt_on_sigterm(session)
    state = config.stash[state_key]
    probe = preflight(state.client, settings)
    if probe.problem:
        raise pytest.UsageError(f"dicomweb: {probe.problem}")
    # What the server says it is goes into every report: a stand-in or a proxy must show.
    config.stash[server_key] = probe.server or "(no Server header)"
    identity = config.stash[identity_key] = identify(settings, probe)
    metadata = config.stash.get(metadata_key, None)
    if metadata is not None:
        metadata["DICOMweb server"] = config.stash[server_key]
        metadata["DICOMweb server name"] = identity.name or "not named"
    warning = profile_mismatch(state.profile, identity.name or identity.header)
    if warning:
        config.get_terminal_writer().line(f"dicomweb: warning: {warning}", yellow=True)


def purge(config: pytest.Config, base_url: str) -> int | None:
    """--dicomweb-purge, in place of a session: list (and delete) what earlier runs left, by
    their marker, and return the exit status; None when the run is not a purge."""
    try:
        settings = _settings(config, base_url)
    except SettingsError as exc:
        raise pytest.UsageError(f"dicomweb: {exc}") from None
    if settings.purge is None:
        return None
    ends = time.monotonic() + settings.run_timeout
    state = RunState(settings, "main", Profile(settings.profile), ends)
    try:
        probe = preflight(state.client, settings)
        if probe.problem:
            raise pytest.UsageError(f"dicomweb: {probe.problem}")
        return purge_studies(state)
    except KeyboardInterrupt:
        print("dicomweb purge: interrupted; no checks run (exit 2)", flush=True)
        return int(pytest.ExitCode.INTERRUPTED)


def _interrupt_on_sigterm(session: pytest.Session | None = None) -> None:
    """SIGTERM (a CI cancel, `timeout`, an eviction) ends the run as Ctrl-C does: the checks stop,
    cleanup runs and every report is written.

    Where pytest itself runs the checks (a serial run) the stop is graceful: the request in
    flight ends, no new one is sent, and pytest stops after the current check, from its own
    loop. An exception raised wherever the signal lands can hit a frame pytest cannot render
    (seen once: a TypeError in its traceback code, and a raw traceback instead of a report). A
    second SIGTERM, an xdist controller (it runs no check) and a worker raise at once."""
    if threading.current_thread() is not threading.main_thread():
        return
    if session is None or session.config.pluginmanager.hasplugin("dsession"):
        signal.signal(signal.SIGTERM, _interrupt)
        return

    def stop_after_this_check(signum: int, frame: Any) -> None:
        if session.shouldstop:
            _interrupt(signum, frame)
        reason = f"signal {signal.Signals(signum).name}"
        session.shouldstop = reason
        state = session.config.stash.get(state_key, None)
        if state is not None and state._client is not None:
            state.client.run_deadline = (time.monotonic(), f"the run was stopped ({reason})")
        deadline.expire_current()

    signal.signal(signal.SIGTERM, stop_after_this_check)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def _check_certify_targets(config: pytest.Config) -> None:
    """A certifying run runs every check: no -k or -m, no single module or check."""
    narrowed = [f"-k {config.option.keyword}"] if config.option.keyword else []
    narrowed += [f"-m {config.option.markexpr}"] if config.option.markexpr else []
    narrowed += [a for a in config.args if "::" in a or arg_path(config, a) != CHECKS_DIR]
    if narrowed:
        raise pytest.UsageError(
            "dicomweb: --dicomweb-mode=certify runs every check; drop "
            + ", ".join(narrowed)
            + " (run the whole suite: pytest --pyargs conformance.checks)"
        )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """--dicomweb-mode=smoke: the article's walkthrough only, every other check deselected."""
    settings = config.stash.get(settings_key, None)
    if settings is None or settings.mode != "smoke":
        return
    kept = [i for i in items if not is_check(i) or Path(i.path).name == "test_walkthrough.py"]
    dropped = [i for i in items if i not in kept]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_deselected(items: Sequence[pytest.Item]) -> None:
    if not items:
        return
    config = items[0].config
    settings = config.stash.get(settings_key, None)
    if settings is not None and settings.mode == "certify" and any(is_check(i) for i in items):
        raise pytest.UsageError(
            "dicomweb: --dicomweb-mode=certify runs every check: none may be deselected"
        )
    found = config.stash.setdefault(deselected_key, [])
    found += [
        {"check": check_name(i.nodeid), "requirements": requirement_ids(i)}
        for i in items
        if is_check(i)
    ]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    # tryfirst: on an xdist worker this must run before the worker reports that it finished.
    config = session.config
    workeroutput = getattr(config, "workeroutput", None)
    state = config.stash.get(state_key, None)
    if workeroutput is not None:
        workeroutput["dicomweb_deselected"] = config.stash.get(deselected_key, [])
        workeroutput["dicomweb_shared"] = state.handed_over if state is not None else []
    if state is None or not state.registry.studies:
        return
    report = clean_up(state)
    if workeroutput is not None:
        workeroutput["dicomweb_cleanup"] = asdict(report)
    else:
        config.stash[cleanup_reports_key].append(report)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    reports = config.stash.get(cleanup_reports_key, [])
    if not reports:
        return
    state = config.stash[state_key]
    text = state.client.redactor.text if state._client else str
    total = merged(reports)
    tr = terminalreporter
    removed = len(total.removed)
    tr.section("dicomweb cleanup")
    tr.line(f"removed {removed} stud{'y' if removed == 1 else 'ies'} ({total.method})")
    for uid, why in total.leftovers.items():
        tr.line(f"left on the server: study {uid} — {text(why)}", yellow=True)
    for uid, why in total.foreign.items():
        tr.line(f"not this run's, left alone: study {uid} — {text(why)}", yellow=True)


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


# A second implementation of the hook (pytest reads only names that start with pytest_).
@pytest.hookimpl(wrapper=True, tryfirst=True, specname="pytest_runtest_makereport")
def pytest_runtest_makereport_judged(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach the evidence of a failing check, then turn the report into its verdict."""
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
    ids = requirement_ids(item)
    if report.when in ("setup", "call") and judgement_key not in item.stash:
        judgement = judge.judge(report, call.excinfo, ids, chosen_readings())
        if judgement is not None:
            item.stash[judgement_key] = judgement
            judge.apply(report, judgement)
            if judgement.verdict is not Verdict.PASS:
                # For results.json (travels with the report from an xdist worker), and for
                # JUnit: an expected FAIL is a skip there, and would lose its evidence.
                shown = own_exchanges(item)[-EVIDENCE_EXCHANGES:]
                report.dicomweb_evidence = [asdict(e) for e in shown]  # type: ignore[attr-defined]
                if shown:
                    evidence = "\n\n".join(e.render() for e in shown)
                    item.stash[evidence_key] = evidence
            # Also on this report, for the HTML report's row (JUnit takes the teardown's).
            report.user_properties.extend(_properties(ids, judgement))
    elif report.when == "teardown":
        judgement = item.stash.get(judgement_key, None)
        if report.failed and (judgement is None or judgement.verdict is Verdict.PASS):
            judgement = Judgement(Verdict.ERROR, "teardown failed")
        if judgement is not None:
            report.user_properties.extend(_properties(ids, judgement))
            if evidence_key in item.stash:
                report.user_properties.append(("evidence", item.stash[evidence_key]))
    state = item.config.stash.get(state_key, None)
    if state is not None and state._client is not None:
        # Outermost wrapper: whatever any plugin put into the report, no secret leaves it.
        scrub_report(report, state.client.redactor)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> Generator[None, Any, Any]:
    """A check that failed, or deviated as expected, names its requirements in the word before
    its name ("FAILED QIDO-MATCH-NON-ASCII conformance/checks/…"): in the short summary pytest
    cuts what follows the name at the terminal's width, never the word."""
    status = yield
    ids = dict(getattr(report, "user_properties", ())).get("requirements")
    if not ids or not status or status[0] not in ("failed", "error", "xfailed", "xpassed"):
        return status
    category, letter, word = status
    named = ",".join(str(ids).split())
    if isinstance(word, tuple):
        return category, letter, (f"{word[0]} {named}", word[1])
    return category, letter, f"{word} {named}"


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_header(cells: list[str]) -> None:
    """pytest-html: a Verdict and a Requirements column."""
    cells[2:2] = ["<th>Verdict</th>", "<th>Requirements</th>"]


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_row(report: pytest.TestReport, cells: list[str]) -> None:
    props = dict(getattr(report, "user_properties", ()))  # a collection error's report has none
    verdict = html.escape(str(props.get("verdict", "")))
    requirements = html.escape(str(props.get("requirements", "")))
    cells[2:2] = [f"<td>{verdict}</td>", f"<td>{requirements}</td>"]


def _properties(ids: list[str], judgement: Judgement) -> list[tuple[str, str]]:
    """The verdict as JUnit properties (and as the record results.json is built from)."""
    props = [("requirements", " ".join(ids)), ("verdict", str(judgement.verdict))]
    if judgement.expected is not None:
        key, expected = judgement.expected
        props += [("expected", str(expected.verdict)), ("expected_by", f"{expected.origin}:{key}")]
        if expected.reason:
            props.append(("expected_reason", expected.reason))
        if expected.reading:
            props.append(("expected_reading", expected.reading))
    if judgement.reading:
        props.append(("reading", judgement.reading))
    if judgement.message:
        props.append(("message", judgement.message))
    return props


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, Any, Any]:
    """Remember which exchanges a shared (not function-scoped) fixture made."""
    state = request.config.stash.get(state_key, None)
    if state is None or state._client is None or fixturedef.scope == "function":
        return (yield)
    start = len(state.client.exchanges)
    try:
        return (yield)
    finally:
        state.shared.append(range(start, len(state.client.exchanges)))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    forget_readings()
    state = item.config.stash.get(state_key, None)
    if state is not None:
        item.stash[exchange_mark_key] = len(state.client.exchanges) if state._client else 0
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


def pytest_runtest_teardown(item: pytest.Item) -> None:
    state = item.config.stash.get(state_key, None)
    if state is not None and state._client is not None:
        state.client.check_deadline = None
