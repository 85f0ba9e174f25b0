"""The pytest plugin's entry point: options, markers, and the check of collected checks.

Inert unless a DICOMweb server is given: installed, the package registers its options and
markers in every pytest run of the environment, and that is all it costs. The rest (settings,
client, samples, pydicom, requests, hooks and fixtures: ``runtime.py``) is imported and
registered only when ``--base-url`` is given, as pytest-base-url defers its own work.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from . import catalog
from .settings import OPTIONS

CHECKS_DIR = Path(__file__).parent / "checks"
RUNTIME = "dicomweb-runtime"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(
        "dicomweb", "DICOMweb conformance (the server is given with --base-url)"
    )
    for option in OPTIONS:
        help_text = f"{option.help} [env {option.env}, ini {option.ini}]"
        parser.addini(option.ini, help=help_text, default=None)
        if option.secret:
            continue
        if option.flag:
            group.addoption(option.cli, action="store_true", default=False, help=help_text)
        else:
            group.addoption(
                option.cli,
                default=None,
                help=help_text,
                metavar=option.metavar,
                choices=option.choices or None,
            )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "dicomweb: a DICOMweb conformance check (added to every check automatically)"
    )
    config.addinivalue_line(
        "markers",
        "requirement(*ids): the catalog requirement IDs the check covers "
        "(conformance/requirements/*.toml); their level and capability decide the verdict",
    )
    base_url = config.getoption("base_url", None) or config.getini("base_url")
    if not base_url:
        return
    from . import runtime  # the heavy part: only for a run that has a server

    config.pluginmanager.register(runtime, RUNTIME)
    runtime.configure(config, base_url)


def is_check(item: pytest.Item) -> bool:
    """One of the suite's checks, or a user's own check naming catalog requirements."""
    return (
        CHECKS_DIR in Path(item.path).parents or item.get_closest_marker("requirement") is not None
    )


def requirement_ids(item: pytest.Item) -> list[str]:
    return [i for mark in item.iter_markers("requirement") for i in mark.args]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    checks = [item for item in items if is_check(item)]
    known = catalog.default()
    for item in checks:
        item.add_marker("dicomweb")
        unknown = [i for i in requirement_ids(item) if i not in known]
        if unknown:
            raise pytest.UsageError(
                f"dicomweb: {item.nodeid} names unknown requirement(s) {', '.join(unknown)}"
            )
        # A rule for the user agent is never judged on a server; a withdrawn one is no rule.
        unjudged = [i for i in requirement_ids(item) if not known[i].judged]
        if unjudged:
            raise pytest.UsageError(
                f"dicomweb: {item.nodeid} names {', '.join(unjudged)}, which "
                + ("is" if len(unjudged) == 1 else "are")
                + " no rule a server can be judged by (binds the user agent, or withdrawn)"
            )
    if checks and not config.pluginmanager.has_plugin(RUNTIME):
        raise pytest.UsageError(
            "dicomweb: the checks need a server: pass --base-url=https://host/dicom-web "
            "(or set PYTEST_BASE_URL); see pytest --help, section dicomweb"
        )
