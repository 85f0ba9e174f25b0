"""The run's settings and set-up, once a server is given: the settings resolved (command line,
environment, config file, ini), the profile, expectations and catalog loaded, the process's
``RunState`` made, the judge and (on the controller) the recorder registered; the report header;
and what the mode selects (smoke, certify). ``--dicomweb-purge`` runs from here instead of a
session.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from .. import catalog, expectations, profiles, readmap, samples
from ..items import CHECKS_DIR, arg_path, check_name, is_check, requirement_ids
from ..judge import Judge
from ..preflight import preflight
from ..profiles import Profile
from ..settings import OPTIONS, Settings, SettingsError, resolve
from .lifecycle import XdistHooks, interrupt_on_sigterm, purge_studies
from .recorder import NAME as RECORDER
from .recorder import VerdictRecorder
from .schedule import small_chunks
from .state import (
    RunState,
    cleanup_reports_key,
    deselected_key,
    judge_key,
    settings_key,
    state_key,
    workers_read_key,
)


def configure(config: pytest.Config, base_url: str) -> None:
    """Resolve the settings and set up the run; called once the run's hooks are registered."""
    config.stash[cleanup_reports_key] = []
    config.stash[deselected_key] = []
    config.stash[workers_read_key] = []
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    try:
        settings = settings_of(config, base_url)
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
    state = config.stash[state_key] = RunState(settings, label, profile, run_deadline, shared)
    # The controller and each worker read at once: each holds to its share of the read budget.
    workers = workerinput["workercount"] if workerinput else _workers(config)
    state.processes = workers + 1 if workers else 1
    if workerinput is not None and workerinput.get("dicomweb_held") is not None:
        state.held = tuple(workerinput["dicomweb_held"])
    read_map = os.environ.get(readmap.ENV)  # docs/what-is-read.md's runs only (tests/)
    if read_map:
        readmap.start(read_map, label)
    disabled = {c: "switched off by --dicomweb-disable" for c in settings.disable}
    if settings.auth == "none":
        disabled.setdefault("auth", "the run has no credentials (--dicomweb-auth=none)")
    config.stash[judge_key] = Judge(requirements, profile, expected, settings.strict, disabled)
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(settings, ends), "dicomweb-xdist")
        if workerinput is None:
            small_chunks(config)
    if workerinput is not None:
        interrupt_on_sigterm()  # the controller does it once it knows the run is ours
    if workerinput is None:
        config.pluginmanager.register(VerdictRecorder(settings, requirements, profile), RECORDER)


def _workers(config: pytest.Config) -> int:
    """The xdist workers this controller starts (0: a serial run)."""
    if config.getoption("dist", "no") == "no":
        return 0
    count = config.getoption("numprocesses", None)
    return count if isinstance(count, int) else len(config.getoption("tx", None) or [])


def settings_of(config: pytest.Config, base_url: str) -> Settings:
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
    from hypothesis import HealthCheck, Phase, settings

    common: dict[str, Any] = {
        "deadline": None,
        "database": None,
        "suppress_health_check": [HealthCheck.too_slow],
        "print_blob": False,
        "report_multiple_bugs": False,  # one failure, the smallest: that is the verdict's evidence
        # Not the explain phase: after shrinking it asks variants of the smallest failure (more
        # requests, and a failure of theirs could end the shrinking bound and be reported in
        # its place), and it traces every line the property runs (a second of a run's CPU).
        "phases": (Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
    }
    # From hypothesis's own defaults, never from whatever profile is loaded now.
    parent = settings.get_profile("default")
    settings.register_profile("dicomweb-ci", parent, max_examples=30, derandomize=True, **common)
    settings.register_profile(
        "dicomweb-deep", parent, max_examples=300, derandomize=False, **common
    )
    settings.load_profile(f"dicomweb-{name}")


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


def purge(config: pytest.Config, base_url: str) -> int | None:
    """--dicomweb-purge, in place of a session: list (and delete) what earlier runs left, by
    their marker, and return the exit status; None when the run is not a purge."""
    try:
        settings = settings_of(config, base_url)
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
