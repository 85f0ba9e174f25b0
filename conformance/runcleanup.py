"""Cleanup of a run, whatever happens: after its checks (a second Ctrl-C or a SIGTERM stops it
after the current request), the sweep for what stopped or crashed workers left, one report of it
all, and --dicomweb-purge of what earlier runs left. What is deleted, and how safely, is
``cleanup.py``'s.
"""

from __future__ import annotations

import functools
import signal
import threading
import time
from typing import Any

import pytest

from . import deadline, samples
from .cleanup import CleanupReport, marked_studies
from .runstate import RunState


def clean_up(state: RunState, studies: list[str] | None = None) -> CleanupReport:
    """Run the cleanup, whatever happens: a second Ctrl-C or a SIGTERM stops it after the current
    request (the rest is reported as left), and an error of ours becomes a line of the report."""
    client = state.client
    client.run_deadline = None  # cleanup runs past the run's deadline, on a deadline of its own
    client.check_deadline = (
        time.monotonic() + state.settings.check_timeout,
        f"the cleanup's deadline of {state.settings.check_timeout:g} s (--dicomweb-check-timeout)",
    )
    cleaner = state.cleaner()
    cleaner.abandon = state.stop_cleanup.is_set

    def stop(signum: int, frame: Any) -> None:
        state.stop_cleanup.set()
        deadline.expire_current()  # the request in flight ends now

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


def merged(reports: list[CleanupReport]) -> CleanupReport:
    # The methods that did something (a sweep that found nothing is named only when alone).
    acted = {r.method for r in reports if r.removed or r.leftovers or r.foreign}
    methods = sorted(acted or {r.method for r in reports})
    total = CleanupReport(", ".join(methods))
    for report in reports:
        total.merge(report)
    return total


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
