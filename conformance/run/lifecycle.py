"""The run's life after set-up: the pre-flight before any check, pytest-xdist's workers (what
they are given, what they hand back), SIGTERM ending a run as Ctrl-C does, and the run's end in
one place: cleanup whatever happens (a second Ctrl-C or a SIGTERM stops it after the current
request), the sweep for what stopped or crashed workers left, one report of it all, and the
record written. Also --dicomweb-purge of what earlier runs left. What is deleted, and how
safely, is ``cleanup.py``'s.
"""

from __future__ import annotations

import atexit
import functools
import gc
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Generator
from dataclasses import asdict
from typing import Any

import pytest
from pytest_metadata.plugin import metadata_key

from .. import deadline, samples
from ..cleanup import CleanupReport, marked_studies
from ..held import held_studies
from ..items import targets_checks
from ..preflight import preflight
from ..settings import Settings
from .identity import identify, profile_mismatch
from .recorder import recorder_of
from .state import (
    RunState,
    cleanup_reports_key,
    deselected_key,
    identity_key,
    server_key,
    settings_key,
    state_key,
    workers_read_key,
)


def pytest_sessionstart(session: pytest.Session) -> None:
    config = session.config
    settings = config.stash.get(settings_key, None)
    if settings is None or hasattr(config, "workerinput") or config.option.collectonly:
        return
    if not targets_checks(config):
        return  # --base-url is someone else's (selenium, playwright): stay out of the way
    interrupt_on_sigterm(session)
    state = config.stash[state_key]
    probe = preflight(state.client, settings)
    if probe.problem:
        raise pytest.UsageError(f"dicomweb: {probe.problem}")
    if settings.studies:
        state.held = read_held(config, state)
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


def read_held(config: pytest.Config, state: RunState) -> tuple[str, ...]:
    """The studies the run reads, decided once, before any check and before xdist starts its
    workers (they get them with their input): one line for each named study the server does not
    have; none to read stops the run (exit 4)."""
    settings = state.settings
    held = held_studies(state.client, settings.studies, settings.discover)
    writer = config.get_terminal_writer()
    for uid in held.missing:
        writer.line(f"dicomweb: study {uid} is not on the server: not read", yellow=True)
    if held.problem:
        raise pytest.UsageError(f"dicomweb: {held.problem}")
    described = held.described(discovered=settings.discover is not None)
    writer.line(f"dicomweb: reading {described}: {', '.join(held.studies)}")
    xdist = config.pluginmanager.get_plugin("dicomweb-xdist")
    if xdist is not None:
        xdist.held = held.studies
    return held.studies


class XdistHooks:
    """Hooks that only exist under pytest-xdist, registered only when it is there."""

    def __init__(self, settings: Settings, run_ends: float) -> None:
        self.run_id = settings.run_id
        self.run_ends = run_ends
        self.shared_dir: str | None = None  # made by the controller for its workers
        self.held: tuple[str, ...] | None = None  # the studies the run reads (read_held)

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["dicomweb_run_id"] = self.run_id
        node.workerinput["dicomweb_run_ends"] = self.run_ends
        if self.shared_dir is None:
            self.shared_dir = tempfile.mkdtemp(prefix=f"dicomweb-{self.run_id}-")
        node.workerinput["dicomweb_shared_dir"] = self.shared_dir
        node.workerinput["dicomweb_held"] = self.held

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
        if output.get("dicomweb_read"):
            node.config.stash[workers_read_key].append(output["dicomweb_read"])
        if output.get("dicomweb_deselected"):
            # Every worker collects (and deselects) the same: one list is the run's.
            node.config.stash[deselected_key] = output["dicomweb_deselected"]


def interrupt_on_sigterm(session: pytest.Session | None = None) -> None:
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
        if state is not None and state.client_made:
            state.client.run_deadline = (time.monotonic(), f"the run was stopped ({reason})")
        deadline.expire_current()

    signal.signal(signal.SIGTERM, stop_after_this_check)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> Generator[None, None, None]:
    """The run's end, in one place. First (before JUnit XML is written, and before an xdist
    worker says it has finished, in its wrapper's end): a worker hands the controller what it
    found, every process deletes what it stored, and the requirements' verdicts go into JUnit's
    properties. Last (pytest-xdist has stopped its workers, also when interrupted; the terminal
    summary is still to come): the controller sweeps, and its recorder decides the exit status and
    writes results.json and the reports."""
    config = session.config
    workeroutput = getattr(config, "workeroutput", None)
    state = config.stash.get(state_key, None)
    if workeroutput is not None:
        workeroutput["dicomweb_deselected"] = config.stash.get(deselected_key, [])
        workeroutput["dicomweb_shared"] = state.handed_over if state is not None else []
        workeroutput["dicomweb_read"] = state.read() if state is not None else {}
    if state is not None and state.registry.studies:
        report = clean_up(state)
        if workeroutput is not None:
            workeroutput["dicomweb_cleanup"] = asdict(report)
        else:
            config.stash[cleanup_reports_key].append(report)
    recorder = recorder_of(config)
    if recorder is not None:
        recorder.junit_properties(session)
    yield
    if recorder is None:
        return  # a worker, or a run without checks: nothing to sweep or record here
    if state is not None and state.client_made:
        swept = sweep(state)
        if swept is not None:
            config.stash[cleanup_reports_key].append(swept)
    recorder.finish(session)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """The run is over: as its process exits, the heap (the evidence, hypothesis's data, the
    generated instances) is moved out of the cycle collector's reach (``gc.freeze``, first of
    the exit's handlers). The interpreter's exit runs that collector over everything still
    alive, several times, as it empties the modules: about 0.3 s of CPU at the end of a whole
    catalog's process, and at the end of ``-n 8`` on two cores eight workers exit at once while
    the controller waits for them. Their objects are still freed as their last reference goes;
    a cycle left at exit is left to the system. (At exit, not now: a run inside another
    process, pytester's, leaves that process's heap as it was.)"""
    if targets_checks(config):
        atexit.unregister(gc.freeze)  # once, however many runs one process makes
        atexit.register(gc.freeze)


def clean_up(state: RunState, studies: list[str] | None = None) -> CleanupReport:
    """Run the cleanup, whatever happens: a second Ctrl-C or a SIGTERM stops it after the current
    request (the rest is reported as left), and an error of ours becomes a line of the report."""
    client = state.client
    client.run_deadline = None  # cleanup runs past the run's deadline, on a deadline of its own
    own_deadline = (
        time.monotonic() + state.settings.check_timeout,
        f"the cleanup's deadline of {state.settings.check_timeout:g} s (--dicomweb-check-timeout)",
    )
    client.check_deadline = own_deadline
    cleaner = state.cleaner()
    cleaner.abandon = state.stop_cleanup.is_set

    def stop(signum: int, frame: Any) -> None:
        state.stop_cleanup.set()
        deadline.expire_current()  # the request in flight ends now
        # and those in flight on the client's pool (the deletes go out together: Client.each)
        client.check_deadline = (time.monotonic(), "the cleanup was interrupted")

    in_main = threading.current_thread() is threading.main_thread()
    previous = {}
    if in_main:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, stop)
    try:
        return cleaner.run(studies)
    except BaseException as exc:
        left = state.registry.studies if studies is None else studies
        return CleanupReport(
            state.settings.cleanup,
            leftovers={uid: f"cleanup broke off: {type(exc).__name__}: {exc}" for uid in left},
        )
    finally:
        client.check_deadline = own_deadline  # not the interrupted one: the sweep searches after
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def sweep(state: RunState) -> CleanupReport | None:
    """After the workers are gone: whatever still carries this run's marker is this run's (the
    pre-flight refused a run id that had data), left by a worker that was stopped or crashed,
    or by a failed delete. Remove it, or say it is there: cleanup verified by reading back.
    None only for a run that cannot have stored anything."""
    if not state.settings.writes or state.settings.article_uids:
        return None
    client = state.client
    client.run_deadline = None
    try:
        found = marked_studies(client, state.marker)
    except Exception as exc:
        return CleanupReport("sweep", leftovers={"?": f"could not search for what is left: {exc}"})
    if not found:
        # Said even when the workers' own reports were lost with them (an interrupted -n run):
        # the search is the proof that nothing is left.
        return CleanupReport("sweep")
    if state.stop_cleanup.is_set():
        return CleanupReport("sweep", leftovers=dict.fromkeys(found, "cleanup was interrupted"))
    for uid, patient_id in found.items():
        state.registry.add(uid, "left behind", patient_id)
    return clean_up(state, list(found))


def purge_studies(state: RunState) -> int:
    """--dicomweb-purge once the pre-flight has passed: list what earlier runs left (this run
    id's, or every run's), delete it when asked, and return the exit status."""
    settings = state.settings
    marker = state.marker if settings.run_id_given else f"{samples.MARKER_PREFIX}*"
    try:
        found = marked_studies(state.client, marker)
    except Exception as exc:
        why = state.client.redactor.text(str(exc))
        message = f"dicomweb: cannot list studies with PatientID {marker}: {why}"
        raise pytest.UsageError(message) from None
    say = functools.partial(print, flush=True)
    say(f"dicomweb purge: {_studies(len(found))} with PatientID {marker} on {settings.base_url}")
    for uid, patient_id in sorted(found.items(), key=lambda item: item[1]):
        say(f"  {patient_id}  study {uid}")
    if not found and marker.endswith("*"):
        say("  (a server without wildcard matching finds none: give --dicomweb-run-id)")
    if settings.purge == "list" or not found:
        hint = " (--dicomweb-purge=delete removes them)" if found else ""
        say(f"dicomweb purge: nothing deleted{hint}; no checks run (exit 0)")
        return 0
    for uid, patient_id in found.items():
        state.registry.add(uid, "purge", patient_id)
    report = clean_up(state, list(found))
    for uid in found:
        state.registry.forget(uid)
    left = {**report.leftovers, **report.foreign}
    for uid, why in left.items():
        say(f"  left on the server: study {uid}: {state.client.redactor.text(why)}")
    status = 1 if left else 0
    say(
        f"dicomweb purge: removed {len(report.removed)} of {len(found)}"
        + (f", {len(left)} left" if left else "")
        + f"; no checks run (exit {status})"
    )
    return status


def _studies(n: int) -> str:
    return f"{n} stud{'y' if n == 1 else 'ies'}"
