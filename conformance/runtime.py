"""What the plugin does once a server is given: settings, the pre-flight check, fixtures,
verdicts, evidence and cleanup. ``plugin.py`` imports and registers this module only then.

It stays out of the way of other test suites that also use pytest-base-url's ``--base-url``
(selenium, playwright): the pre-flight runs only when the DICOMweb checks are targeted.
"""

from __future__ import annotations

import functools
import html
import re
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from _pytest._code.code import (
    ExceptionChainRepr,
    ExceptionRepr,
    ReprFileLocation,
    ReprTracebackNative,
)
from _pytest.junitxml import xml_key
from pytest_metadata.plugin import metadata_key

from . import catalog, deadline, expectations, profiles, results, samples, synthetic
from .auth import build_auth
from .cleanup import Cleaner, CleanupReport, marked_studies, orthanc_root
from .client import Client, Exchange, Redactor
from .dicomweb import stow
from .errors import DeadlineExceeded, NoAnswer, Throttled
from .guard import Guard, Registry
from .judge import Judge, Judgement, check_name
from .plugin import CHECKS_DIR, arg_path, is_check, requirement_ids, targets_checks
from .preflight import Probe, preflight
from .profiles import Profile
from .report import conformance_line, gate_summary, write_all
from .samples import Instance, SampleStudy, derive_uid, run_patient_id
from .scrub import scrub_report
from .settings import OPTIONS, Settings, SettingsError, resolve
from .synthetic import CatalogStudy
from .verdicts import (
    PreconditionFailed,
    Verdict,
    VerdictSkip,
    chosen_readings,
    disabled,
    forget_readings,
)

EVIDENCE_EXCHANGES = 6
SHORT_CHARS = 300  # what broke, as the short summary (and JUnit's message attribute) says it

settings_key = pytest.StashKey[Settings | None]()
state_key = pytest.StashKey["RunState"]()
cleanup_reports_key = pytest.StashKey[list[CleanupReport]]()
exchange_mark_key = pytest.StashKey[int]()
judge_key = pytest.StashKey[Judge]()
judgement_key = pytest.StashKey[Judgement]()
evidence_key = pytest.StashKey[str]()  # a non-PASS check's exchanges, for its JUnit properties
server_key = pytest.StashKey[str]()  # the Server header, as results.json "server" holds it
identity_key = pytest.StashKey["Identity"]()
# Checks deselected (-k, -m): their expectations are not stale, only unexercised.
deselected_key = pytest.StashKey[list[dict[str, Any]]]()
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
        # Studies stored for every worker, which the controller deletes after the last one.
        self.handed_over: list[tuple[str, str]] = []  # (Study Instance UID, Patient ID)

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


def configure(config: pytest.Config, base_url: str) -> None:
    """Resolve the settings and set up the run; called by the plugin when a base URL is given,
    after it has registered this module's hooks and fixtures."""
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


class VerdictRecorder:
    """Collects every check's verdict on the controller (workers' reports arrive here too),
    writes results.json and the verdict summary. Only the controller writes files."""

    def __init__(self, settings: Settings, requirements: catalog.Catalog, profile: Profile):
        self.settings = settings
        self.catalog = requirements
        self.profile = profile
        self.records: list[dict[str, Any]] = []
        self.evidence: dict[str, list[dict[str, Any]]] = {}  # nodeid -> exchanges, until teardown
        self.reports: list[Path] = []
        self.report_error = ""
        self.started = time.time()
        self.failed: set[str] = set()  # node ids of tests with a failed report (the exit status)
        self.stale_failed = False  # a stale expectation failed a nightly run
        self.exit_status: int | None = None  # the session's, once it has finished

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.failed.add(report.nodeid)
        evidence = getattr(report, "dicomweb_evidence", None)
        if evidence is not None:
            self.evidence[report.nodeid] = evidence
        props = dict(report.user_properties)
        if report.when != "teardown" or "verdict" not in props:
            return
        self.records.append(
            {
                "check": check_name(report.nodeid),
                "nodeid": report.nodeid,
                "requirements": str(props["requirements"]).split(),
                "verdict": props["verdict"],
                "expected": props.get("expected"),
                "expected_by": props.get("expected_by"),
                "expected_reason": props.get("expected_reason"),
                "expected_reading": props.get("expected_reading"),
                "message": props.get("message", ""),
                "reading": props.get("reading"),
                "evidence": self.evidence.pop(report.nodeid, [])
                if props["verdict"] != Verdict.PASS
                else [],
            }
        )

    def unmatched_expectations(self, config: pytest.Config) -> list[str]:
        """Entries of the expectations file that can be stale: they name a check of a module
        this run collected, and no check that ran or was deselected has that name (or, for a
        requirement ID, no check covers it and none can: the catalog says it is untested)."""
        judge = config.stash.get(judge_key, None)
        if judge is None or not self.records:
            return []
        deselected = config.stash.get(deselected_key, [])
        seen = [(r["check"], r["requirements"]) for r in self.records] + [
            (d["check"], d["requirements"]) for d in deselected
        ]
        names = {name for name, _ in seen}
        ids = {rid for _, requirements in seen for rid in requirements}
        modules = {name.split("::")[0] for name in names}
        stale = []
        for key, entry in judge.expectations.entries.items():
            if entry.origin.startswith("profile") or key in names or key in ids:
                continue
            if "::" in key:
                if key.split("::")[0] in modules:
                    stale.append(key)
            elif key in self.catalog and self.catalog[key].untested:
                stale.append(key)
        return sorted(stale)

    @pytest.hookimpl(tryfirst=True, specname="pytest_sessionfinish")
    def pytest_sessionfinish_junit(self, session: pytest.Session) -> None:
        """Before JUnit XML is written: the requirements' verdicts as its suite properties."""
        xml = session.config.stash.get(xml_key, None)
        if xml is None or not self.records:
            return
        rows = results.requirement_rows(self.catalog, self.records)
        headline = conformance_line({"requirements": rows, "mode": self.settings.mode})
        xml.add_global_property("conformance", headline)
        for row in rows:
            if row["verdict"] is not None:
                xml.add_global_property(f"requirement {row['id']}", row["verdict"])

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # trylast: after xdist has stopped the workers (also when interrupted), so the sweep
        # sees what they left, and results.json says what cleanup achieved.
        config = session.config
        state = config.stash.get(state_key, None)
        if state is not None and state._client is not None:
            swept = sweep(state)
            if swept is not None:
                config.stash[cleanup_reports_key].append(swept)
        stale = self.unmatched_expectations(config)
        if self.settings.mode == "nightly" and stale and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED  # a stale entry is a lie in the gate
            self.stale_failed = True
        self.exit_status = int(session.exitstatus)
        path = self.settings.results
        if path is None:
            return
        reports = config.stash.get(cleanup_reports_key, [])
        identity = config.stash.get(identity_key, None)
        run = {
            "base_url": self.settings.base_url,
            "server": config.stash.get(server_key, ""),
            "server_name": identity.name if identity else self.settings.server_name,
            "profile": self.profile.name,
            "mode": self.settings.mode,
            "capabilities": {
                name: {"supported": d.supported, "source": d.source}
                for name, d in sorted(self.profile.capabilities.items())
            },
            "run_id": self.settings.run_id,
            "settings": self.settings.redacted(),
            "started": self.started,
            "ended": time.time(),
        }
        document = results.build(
            run=run,
            catalog=self.catalog,
            records=self.records,
            cleanup=asdict(_merged(reports)) if reports else None,
            unmatched=stale,
        )
        results.write(path, document)
        try:
            self.reports = write_all(document, path.parent)
        except Exception as exc:  # a view of ours must never mask the run's result
            self.report_error = f"{type(exc).__name__}: {exc}"

    def _failing_requirements(self, rows: list[dict[str, Any]]) -> list[str]:
        """The requirements that FAIL or ERROR, each marked expected or not, a few per line."""
        checks = {r["check"]: r for r in self.records}
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

    def pytest_terminal_summary(self, terminalreporter: Any, config: pytest.Config) -> None:
        if not self.records:
            return
        tr = terminalreporter
        counts = Counter(r["verdict"] for r in self.records)
        tr.section("dicomweb verdicts")
        tr.line(
            ", ".join(f"{counts[v]} {v}" for v in Verdict if counts[v])
            + f" (profile {self.profile.name})"
        )
        identity = config.stash.get(identity_key, None)
        if identity is not None:
            tr.line(f"server: {identity.line()}")
        rows = results.requirement_rows(self.catalog, self.records)
        by_status = Counter(r["status"] for r in rows)
        tested = Counter(r["verdict"] for r in rows if r["verdict"])
        tr.line(
            f"requirements: {', '.join(f'{tested[v]} {v}' for v in Verdict if tested[v])}; "
            f"{by_status['not run']} not run, {by_status['untested']} untested "
            f"(of {len(rows)})"
        )
        for line in self._failing_requirements(rows):
            tr.line(line)
        tr.line(conformance_line({"requirements": rows, "mode": self.settings.mode}), bold=True)
        why = self.exit_reason(rows)
        if why:
            tr.line(why, bold=True)
        if not self.settings.writes:
            unrun = [
                r
                for r in self.records
                if r["verdict"] == "DISABLED" and "read-only" in r["message"]
            ]
            tr.line(
                f"read-only run: {len(unrun)} checks need to write and were not run "
                "(DISABLED; each is listed in results.json)"
            )
        for key in self.unmatched_expectations(config):
            tr.line(f"expectation {key} matched no check in this run", yellow=True)
        if self.settings.results:
            tr.line(f"results: {self.settings.results}")
            for path in self.reports:
                tr.line(f"report: {path}")
            if self.report_error:
                tr.line(f"the reports could not be written: {self.report_error}", red=True)
        gate = gate_summary(self.records) if self.settings.expectations else None
        if gate:
            tr.line(gate, bold=True)

    def exit_reason(self, rows: list[dict[str, Any]]) -> str | None:
        """Why the run exits as it does, when its headline suggests otherwise: requirements that
        fail and exit 0 (all expected), or none that fail and exit 1 ("exit 1: 2 verdicts differ
        from orthanc.toml"). None when they agree."""
        status = self.exit_status
        failing = any(r["verdict"] in (Verdict.FAIL, Verdict.ERROR) for r in rows)
        if status is None or (status != 0) == failing:
            return None
        if status == 0:
            bad = [r for r in self.records if r["verdict"] in (Verdict.FAIL, Verdict.ERROR)]
            whose = " and ".join(sorted({_origin(r) for r in bad} - {""})) or "the expectations"
            return f"exit 0: every FAIL and ERROR is expected by {whose}"
        if status == pytest.ExitCode.INTERRUPTED:
            return f"exit {status}: the run was interrupted"
        failed = [r for r in self.records if r["nodeid"] in self.failed]
        reasons = []
        differ = [r for r in failed if r["expected"]]
        if differ:
            whose = " and ".join(sorted({_origin(r) for r in differ}))
            noun = "verdict differs" if len(differ) == 1 else "verdicts differ"
            reasons.append(f"{len(differ)} {noun} from {whose}")
        unexpected = [r for r in failed if not r["expected"]]
        strict = sum(r["verdict"] == Verdict.NON_STRICT for r in unexpected)
        if strict:
            broken = "a SHOULD is" if strict == 1 else f"{strict} SHOULDs are"
            reasons.append(f"{broken} broken and --dicomweb-strict is set")
        for verdict in (Verdict.FAIL, Verdict.ERROR):
            found = [r for r in unexpected if r["verdict"] == verdict]
            if found:
                ids = sorted({rid for r in found for rid in r["requirements"]})
                named = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
                checks = "1 check" if len(found) == 1 else f"{len(found)} checks"
                reasons.append(f"{verdict} in {checks} ({named})")
        others = len(self.failed - {r["nodeid"] for r in self.records})
        if others:
            reasons.append(f"{others} test{'s' if others > 1 else ''} that are not checks failed")
        if self.stale_failed:
            reasons.append("an expectation matched no check (--dicomweb-mode=nightly)")
        return f"exit {status}: " + "; ".join(reasons) if reasons else None


def _origin(record: dict[str, Any]) -> str:
    """Whose expectation a check's record was held to ("orthanc.toml", "profile orthanc.toml")."""
    return str(record.get("expected_by") or "").split(":", 1)[0]


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


@dataclass(frozen=True)
class Identity:
    """What the server is, as the reports name it, and where that name comes from."""

    name: str | None  # None: no one named it, and it says nothing of itself
    source: str  # "given", "api" (Orthanc's /system), "header" (its Server header) or ""
    header: str  # its Server header, "" when it sends none

    def line(self) -> str:
        """The terminal's ``server:`` line (without the label)."""
        said = f"Server header: {self.header}" if self.header else "no Server header"
        if self.name is None:
            return f"not named (pass --dicomweb-server-name); {said}"
        if self.source == "header":
            return f"{self.name} (its Server header)"
        if self.source == "api":
            return f"{self.name} (as its REST API says); {said}"
        return f"{self.name}; {said}"


def identify(settings: Settings, probe: Probe) -> Identity:
    """The name given, else what the server says of itself (its product API, then its Server
    header), else none: never a profile's description, which says what was expected."""
    if settings.server_name:
        return Identity(settings.server_name, "given", probe.server)
    if probe.product:
        return Identity(probe.product, "api", probe.server)
    if probe.server:
        return Identity(probe.server, "header", probe.server)
    return Identity(None, "", "")


_VERSION = re.compile(r"\d+(?:\.\d+)+")


def profile_mismatch(profile: Profile, server: str) -> str | None:
    """One line when the profile describes other versions than the server's ("Orthanc 1.13 with
    the DICOMweb plugin 1.24" against Orthanc 1.10.1 with 1.7); None when they agree, or when
    either names no version."""
    described, found = _VERSION.findall(profile.description), _VERSION.findall(server)
    if not described or not found:
        return None

    def covers(short: str, full: str) -> bool:  # "1.13" covers "1.13.0"
        return full.split(".")[: short.count(".") + 1] == short.split(".")

    if all(any(covers(d, f) for f in found) for d in described):
        return None
    return (
        f"profile {profile.name} describes {profile.description}, but the server is {server}: "
        "the verdicts the profile expects may not be this server's"
    )


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
        return _purge(state)
    except KeyboardInterrupt:
        print("dicomweb purge: interrupted; no checks run (exit 2)", flush=True)
        return int(pytest.ExitCode.INTERRUPTED)


def _purge(state: RunState) -> int:
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
    report = _clean_up(state, list(found))
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


def _clean_up(state: RunState, studies: list[str] | None = None) -> CleanupReport:
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
    report = _clean_up(state)
    if workeroutput is not None:
        workeroutput["dicomweb_cleanup"] = asdict(report)
    else:
        config.stash[cleanup_reports_key].append(report)


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
    return _clean_up(state, list(found))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    reports = config.stash.get(cleanup_reports_key, [])
    if not reports:
        return
    state = config.stash[state_key]
    text = state.client.redactor.text if state._client else str
    total = _merged(reports)
    tr = terminalreporter
    removed = len(total.removed)
    tr.section("dicomweb cleanup")
    tr.line(f"removed {removed} stud{'y' if removed == 1 else 'ies'} ({total.method})")
    for uid, why in total.leftovers.items():
        tr.line(f"left on the server: study {uid} — {text(why)}", yellow=True)
    for uid, why in total.foreign.items():
        tr.line(f"not this run's, left alone: study {uid} — {text(why)}", yellow=True)


def _merged(reports: list[CleanupReport]) -> CleanupReport:
    # The methods that did something (a sweep that found nothing is named only when alone).
    acted = {r.method for r in reports if r.removed or r.leftovers or r.foreign}
    methods = sorted(acted or {r.method for r in reports})
    total = CleanupReport(", ".join(methods))
    for report in reports:
        total.merge(report)
    return total


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """The report of a check the server failed, made here so that pytest never renders the
    traceback the compact failure replaces: rendering it parsed the check's module again for
    every traceback entry, and cost more than the check (issue 13). What an operator reads
    first: the rule, what broke, the exchanges; no check source, no fixture reprs (--tb=long
    still gives them). None: pytest makes the report."""
    if not (is_check(item) and _compact(item, call)):
        return None
    sections = [(f"Captured {key} {when}", content) for when, key, content in item._report_sections]
    return pytest.TestReport(
        item.nodeid,
        item.location,
        dict.fromkeys(item.keywords, 1),
        "failed",
        _compact_failure(item, call),
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
    if report.failed and not _compact(item, call):
        _attach_evidence(item, report)
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


# Failures that say what the server did; anything else (a bug of ours) keeps its traceback.
SERVER_FAILURES = (AssertionError, pytest.fail.Exception, NoAnswer, Throttled, PreconditionFailed)


def _compact(item: pytest.Item, call: pytest.CallInfo[None]) -> bool:
    return (
        item.config.option.tbstyle == "auto"
        and call.excinfo is not None
        and call.excinfo.errisinstance(SERVER_FAILURES)
    )


def _compact_failure(item: pytest.Item, call: pytest.CallInfo[None]) -> ExceptionChainRepr:
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


def _attach_evidence(item: pytest.Item, report: pytest.TestReport) -> None:
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


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dicomweb_state(pytestconfig: pytest.Config) -> RunState:
    """The run's settings, client, samples and registry of created studies."""
    state = pytestconfig.stash.get(state_key, None)
    if state is None:
        raise pytest.UsageError("dicomweb: no --base-url given")
    return state


@pytest.fixture(scope="session")
def dicomweb_settings(dicomweb_state: RunState) -> Settings:
    """The validated settings (shown redacted)."""
    return dicomweb_state.settings


@pytest.fixture(scope="session")
def dicomweb_profile(dicomweb_state: RunState) -> Profile:
    """The server profile (declared capabilities, vendor parameters, departures)."""
    return dicomweb_state.profile


@pytest.fixture(scope="session")
def dicomweb(dicomweb_state: RunState) -> Client:
    """The HTTP client bound to the server's DICOMweb base URL."""
    return dicomweb_state.client


def _study_maker(
    state: RunState, request: pytest.FixtureRequest, light: bool
) -> Callable[[], SampleStudy]:
    counter = iter(range(1_000_000))

    def make() -> SampleStudy:
        return state.new_study(f"{request.node.nodeid}#{next(counter)}", light)

    return make


@pytest.fixture
def new_study(
    dicomweb_state: RunState, request: pytest.FixtureRequest
) -> Callable[[], SampleStudy]:
    """Make copies of the article's study with fresh UIDs (registered for cleanup), each image
    cropped to 8 x 8 pixels: a check of how a server stores sends kilobytes, not 8.7 MB."""
    return _study_maker(dicomweb_state, request, light=True)


@pytest.fixture
def new_article_study(
    dicomweb_state: RunState, request: pytest.FixtureRequest
) -> Callable[[], SampleStudy]:
    """Make copies of the article's study with fresh UIDs and its own images (the
    walkthrough stores what the article stores)."""
    return _study_maker(dicomweb_state, request, light=False)


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


@pytest.fixture(scope="session")
def readable_studies(dicomweb_state: RunState, request: pytest.FixtureRequest) -> list[str]:
    """Studies the read-only checks read: those named by --dicomweb-studies, or else the study
    this run stored."""
    if dicomweb_state.settings.studies:
        return list(dicomweb_state.settings.studies)
    return [request.getfixturevalue("stored_study").study_uid]


@pytest.fixture
def absent_uid(dicomweb_state: RunState, request: pytest.FixtureRequest) -> str:
    """A study UID this run minted and never stores, for checks of what is not there."""
    return dicomweb_state.absent_uid(request.node.nodeid)


@pytest.fixture(scope="session")
def stored_study(dicomweb_state: RunState) -> SampleStudy:
    """The article's study, stored once per run for the retrieve and search checks."""
    return dicomweb_state.stored_once(
        lambda space: dicomweb_state.new_study("stored", space=space), "the sample study"
    )


@pytest.fixture
def new_synthetic(
    dicomweb_state: RunState, request: pytest.FixtureRequest
) -> Callable[[], CatalogStudy]:
    """Make copies of the synthetic study with fresh UIDs (registered for cleanup)."""
    counter = iter(range(1_000_000))

    def make() -> CatalogStudy:
        return dicomweb_state.new_synthetic(f"{request.node.nodeid}#{next(counter)}")

    return make


@pytest.fixture(scope="session")
def stored_synthetic(dicomweb_state: RunState) -> CatalogStudy:
    """The synthetic study, stored once per run (read only: checks must not change it)."""
    return dicomweb_state.stored_once(
        lambda space: dicomweb_state.new_synthetic("stored", space), "the synthetic study"
    )


@pytest.fixture(scope="session")
def stored_archive(dicomweb_state: RunState) -> synthetic.SearchArchive:
    """The search archive, stored once per run, for the property checks (read only)."""
    return dicomweb_state.stored_once(
        lambda space: dicomweb_state.new_archive("archive", space), "the search archive"
    )


@dataclass(frozen=True)
class NewStudy:
    """A study UID of this run's, and the Patient ID every instance of the run carries."""

    study_uid: str
    patient_id: str


@pytest.fixture
def empty_study(dicomweb_state: RunState, request: pytest.FixtureRequest) -> NewStudy:
    """A fresh, registered (and so cleaned up) study for a check that stores its own
    instances into it."""
    uid = dicomweb_state.new_study_uid(request.node.nodeid)
    return NewStudy(uid, dicomweb_state.marker)
