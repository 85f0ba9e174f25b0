"""What one process of a run (the only one, or one xdist worker) shares between the plugin's
hooks and fixtures: its ``RunState`` (settings, client, samples, the registry of the studies it
stored) and the keys under which the config and each check keep the rest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from .. import samples, synthetic
from ..auth import build_auth
from ..budget import Meter
from ..cleanup import Cleaner, CleanupReport, orthanc_root
from ..client import Client
from ..dicomweb import stow
from ..evidence import Exchange, Redactor
from ..guard import Guard, Registry
from ..judge import Judge
from ..profiles import Profile
from ..results import CheckRecord
from ..samples import Instance, SampleStudy, derive_uid, run_patient_id
from ..settings import Settings
from ..synthetic import CatalogStudy
from ..verdicts import disabled
from .identity import Identity

settings_key = pytest.StashKey[Settings | None]()
state_key = pytest.StashKey["RunState"]()
cleanup_reports_key = pytest.StashKey[list[CleanupReport]]()
exchange_mark_key = pytest.StashKey[int]()
judge_key = pytest.StashKey[Judge]()
record_key = pytest.StashKey[CheckRecord]()  # a check's, once its verdict is judged
duration_key = pytest.StashKey[float]()  # a check's seconds so far (setup, call, teardown)
server_key = pytest.StashKey[str]()  # the Server header, as results.json "server" holds it
identity_key = pytest.StashKey[Identity]()
# Checks deselected (-k, -m): their expectations are not stale, only unexercised.
deselected_key = pytest.StashKey[list[dict[str, Any]]]()
# What each worker read ({"requests", "bytes", "sampled"}), handed to the controller at its end.
workers_read_key = pytest.StashKey[list[dict[str, int]]]()
StudyT = TypeVar("StudyT", bound=samples.Study)

try:
    import fcntl  # a file lock for the workers of one machine (POSIX)
except ImportError:  # Windows: each worker stores its own shared studies
    fcntl = None  # type: ignore[assignment]


class RunState:
    """What one process (the only one, or one xdist worker) shares between fixtures and hooks."""

    def __init__(
        self,
        settings: Settings,
        label: str,
        profile: Profile,
        run_deadline: float,
        shared_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.profile = profile
        self.label = label  # "main" or the xdist worker id: keeps workers' UIDs apart
        self.marker = run_patient_id(settings.run_id)  # the PatientID of everything stored
        self.registry = Registry()
        self.run_deadline = (
            run_deadline,
            f"the run's deadline of {settings.run_timeout:g} s (--dicomweb-run-timeout)",
        )
        self._client: Client | None = None
        self._templates: SampleStudy | None = None
        # Set by a Ctrl-C or SIGTERM during cleanup: stop deleting, say what is left.
        self.stop_cleanup = threading.Event()
        # Exchanges (index ranges) made by fixtures shared between checks: the session's stored
        # study is no check's evidence.
        self.shared: list[range] = []
        # Under pytest-xdist on one machine: the folder where workers agree on which of them
        # stores the studies the read-only checks share (stored_once); None: each its own.
        self.shared_dir = shared_dir
        # The studies a run given --dicomweb-studies reads, found on the server before any check
        # (lifecycle.read_held; a worker gets them from the controller); None: none named.
        self.held: tuple[str, ...] | None = None
        # The processes that read the server at once (the controller and its xdist workers):
        # each holds to its share of the read budget.
        self.processes = 1
        # Instances of the held study this process sampled (fixture study_data; 0: none), and
        # whether they are the whole study.
        self.sampled = 0
        self.sampled_whole = True
        # Studies stored for every worker, which the controller deletes after the last one.
        self.handed_over: list[tuple[str, str]] = []  # (Study Instance UID, Patient ID)

    def read(self) -> dict[str, int]:
        """What this process read of the server: requests sent, bytes of answers, instances of
        the held study sampled."""
        meter = self._client.meter if self._client is not None else None
        return {
            "requests": meter.requests if meter else 0,
            "bytes": meter.bytes if meter else 0,
            "sampled": self.sampled,
            "partial": int(not self.sampled_whole),
        }

    @property
    def client_made(self) -> bool:
        """Has this process made its client yet? (Nothing to scrub, end or clean up if not.)"""
        return self._client is not None

    @property
    def client(self) -> Client:
        if self._client is None:
            s = self.settings
            redactor = Redactor(s.secrets)
            orthanc = (
                (s.orthanc_url or orthanc_root(s.base_url))
                if s.cleanup in ("auto", "orthanc")
                else None
            )
            self._client = Client(
                s.base_url,
                auth=build_auth(s, on_token=redactor.add),
                timeout=s.timeout,
                retries=s.retries,
                verify=not s.insecure,
                redactor=redactor,
                max_retry_wait=s.max_retry_wait,
                guard=Guard(s.base_url, self.registry, read_only=not s.writes, orthanc_url=orthanc),
                meter=Meter(
                    s.budget.share(self.processes) if s.budget else None,
                    f"--dicomweb-read-budget {s.budget.described()}" if s.budget else "",
                ),
                concurrency=s.concurrency,
            )
            self._client.run_deadline = self.run_deadline
        return self._client

    @property
    def templates(self) -> SampleStudy:
        if self._templates is None:
            self._templates = samples.load(self.settings.samples)
        return self._templates

    def _may_store(self) -> None:
        if not self.settings.writes:
            disabled("a read-only run: the check needs to store a study of its own")

    def new_study(self, label: str, light: bool = False, space: str | None = None) -> SampleStudy:
        """A copy of the samples with fresh UIDs, registered as created by this run; ``light``:
        with images of 8 x 8 pixels (but under --dicomweb-article-uids, the article's own).
        ``space`` keeps UIDs apart (default: this process's label; "shared": every worker's)."""
        self._may_store()
        s = self.settings
        study = (
            self.templates
            if s.article_uids
            else samples.fresh_copy(
                self.templates, s.run_id, f"{space or self.label}/{label}", light
            )
        )
        if s.article_uids and study.study_uid in self.registry:
            # The article's UIDs are reused by every step: remove the earlier step's copy first.
            report = self.cleaner().run([study.study_uid])
            if report.leftovers or report.foreign:
                pytest.skip(
                    "--dicomweb-article-uids needs a cleanup method to store the study again: "
                    + "; ".join([*report.leftovers.values(), *report.foreign.values()])
                )
        self.registry.add(study.study_uid, label, str(study.blue.dataset.PatientID))
        return study

    def new_synthetic(self, label: str, space: str | None = None) -> CatalogStudy:
        """The suite's synthetic study (multi-frame, compressed, no pixels, character sets,
        a sequence) with fresh UIDs, registered as created by this run."""
        self._may_store()
        study = synthetic.catalog_study(self.settings.run_id, f"{space or self.label}/{label}")
        self.registry.add(study.study_uid, label, self.marker)
        return study

    def new_archive(self, label: str, space: str | None = None) -> synthetic.SearchArchive:
        """The search archive (one-instance studies for the property checks) with fresh UIDs,
        every study registered as created by this run."""
        self._may_store()
        archive = synthetic.search_archive(self.settings.run_id, f"{space or self.label}/{label}")
        for uid in archive.study_uids:
            self.registry.add(uid, label, self.marker)
        return archive

    def stored_once(self, make: Callable[[str | None], StudyT], what: str) -> StudyT:
        """A study the read-only checks share, stored once per run. ``make(space)`` builds it.
        Under pytest-xdist on one machine every worker builds the same one (space "shared"):
        the first to need it stores it while the others wait on a file lock, then all read it,
        and the controller deletes it once every worker has finished (a worker must not delete
        what others still read). Serially, with workers on other machines, or with
        --dicomweb-article-uids, each process stores its own."""
        shared = self.shared_dir
        if shared is None or fcntl is None or self.settings.article_uids:
            study = make(None)
            _store_for_checks(self.client, study, what)
            return study
        study = make("shared")
        uids = sorted({i.study_uid for i in study})
        name = what.replace(" ", "-")
        with open(shared / f"{name}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                done = shared / f"{name}.done"
                if not done.exists():
                    failure = _store_failure(self.client, study, what)
                    done.write_text(failure or "")
                    if failure is None:
                        self.handed_over += [(uid, self.marker) for uid in uids]
                failure = done.read_text() or None
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        for uid in uids:
            self.registry.forget(uid)  # the controller's to delete, after every worker
        if failure:
            pytest.fail(failure)
        return study

    def new_study_uid(self, label: str) -> str:
        """A fresh study UID registered as this run's, for a check that builds its own
        instances (PatientID must be the run's marker)."""
        self._may_store()
        uid = derive_uid(self.settings.run_id, f"{self.label}/{label}", "study")
        self.registry.add(uid, label, self.marker)
        return uid

    def absent_uid(self, label: str) -> str:
        """A study UID this run minted and never stores: for checks of what is not there. The
        guard lets a DELETE of it through (it is this run's), and it can hit no one's data."""
        uid = derive_uid(self.settings.run_id, f"{self.label}/absent/{label}", "none")
        self.registry.add(uid, label, self.marker, stored=False)
        return uid

    def cleaner(self) -> Cleaner:
        s = self.settings
        return Cleaner(self.client, self.registry, s.cleanup, s.orthanc_url)


def reading_of(config: pytest.Config) -> dict[str, Any]:
    """What the run read of the server, every process together (on the controller), as
    results.json "reading" holds it: requests, bytes of answers, the studies a read-only run read,
    the instances it sampled of the first (every process samples the same) and whether that is
    not the whole study, and the read budget."""
    state = config.stash.get(state_key, None)
    workers: list[dict[str, int]] = config.stash.get(workers_read_key, [])
    parts = [state.read(), *workers] if state is not None else workers
    settings = state.settings if state is not None else None
    budget = settings.budget if settings is not None else None
    return {
        "read_only": bool(settings and not settings.writes),
        "studies": list(state.held or ()) if state is not None else [],
        "instances_sampled": max((p.get("sampled", 0) for p in parts), default=0),
        "partial": bool(max((p.get("partial", 0) for p in parts), default=0)),
        "requests": sum(p.get("requests", 0) for p in parts),
        "bytes": sum(p.get("bytes", 0) for p in parts),
        "budget": budget.described() if budget else None,
    }


def own_exchanges(item: pytest.Item) -> list[Exchange]:
    """The exchanges of this check and its own fixtures, not those of fixtures it shares."""
    state = item.config.stash.get(state_key, None)
    if state is None or not state.client_made:
        return []
    start = item.stash.get(exchange_mark_key, 0)
    exchanges = state.client.exchanges
    return [
        exchanges[i]
        for i in range(start, len(exchanges))
        if not any(i in shared for shared in state.shared)
    ]


def _store_for_checks(client: Client, instances: Iterable[Instance], what: str) -> None:
    failure = _store_failure(client, instances, what)
    if failure:
        pytest.fail(failure)


def _store_failure(client: Client, instances: Iterable[Instance], what: str) -> str | None:
    response = stow(client, instances)
    if response.status_code != 200:
        return (
            f"could not store {what}: POST studies answered {response.status_code}; "
            "the retrieve and search checks need it"
        )
    return None
