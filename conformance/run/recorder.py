"""The controller's record of a run: every check's record (results.CheckRecord, made where its
verdict is judged; the workers' arrive here with their reports), results.json and the reports
written from it, and why the run exits as it does. Only the controller writes files.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from _pytest.junitxml import xml_key

from .. import catalog, results
from ..cleanup import merged
from ..profiles import Profile
from ..report import conformance_line
from ..reports import write_all
from ..settings import Settings
from ..verdicts import Verdict
from .state import (
    cleanup_reports_key,
    deselected_key,
    identity_key,
    judge_key,
    reading_of,
    server_key,
)

NAME = "dicomweb-verdicts"  # the recorder's name as a plugin: the controller's only


def recorder_of(config: pytest.Config) -> VerdictRecorder | None:
    """The run's recorder: on the controller (or a serial run) only."""
    recorder = config.pluginmanager.get_plugin(NAME)
    return recorder if isinstance(recorder, VerdictRecorder) else None


class VerdictRecorder:
    """Collects every check's verdict on the controller (workers' reports arrive here too),
    writes results.json and the verdict summary. Only the controller writes files."""

    def __init__(self, settings: Settings, requirements: catalog.Catalog, profile: Profile):
        self.settings = settings
        self.catalog = requirements
        self.profile = profile
        self.records: list[dict[str, Any]] = []
        self.reports: list[Path] = []
        self.report_error = ""
        self.started = time.time()
        self.failed: set[str] = set()  # node ids of tests with a failed report (the exit status)
        self.stale_failed = False  # a stale expectation failed a nightly run
        self.exit_status: int | None = None  # the session's, once it has finished

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.failed.add(report.nodeid)
        record = getattr(report, "dicomweb_record", None)
        if report.when == "teardown" and record is not None:
            self.records.append(record)  # the final one: teardown can still make it an ERROR

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

    def junit_properties(self, session: pytest.Session) -> None:
        """Before JUnit XML is written: the requirements' verdicts as its suite properties."""
        xml = session.config.stash.get(xml_key, None)
        if xml is None or not self.records:
            return
        rows = results.requirement_rows(self.catalog, self.records)
        headline = conformance_line(
            {
                "requirements": rows,
                "mode": self.settings.mode,
                "reading": reading_of(session.config),
            }
        )
        xml.add_global_property("conformance", headline)
        for row in rows:
            if row["verdict"] is not None:
                xml.add_global_property(f"requirement {row['id']}", row["verdict"])

    def finish(self, session: pytest.Session) -> None:
        """Once xdist has stopped the workers (also when interrupted) and the sweep is done: the
        exit status, then results.json (which says what cleanup achieved) and the reports."""
        config = session.config
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
            "reading": reading_of(config),
        }
        document = results.build(
            run=run,
            catalog=self.catalog,
            records=self.records,
            cleanup=asdict(merged(reports)) if reports else None,
            unmatched=stale,
        )
        results.write(path, document)
        try:
            self.reports = write_all(document, path.parent)
        except Exception as exc:  # a view of ours must never mask the run's result
            self.report_error = f"{type(exc).__name__}: {exc}"

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
