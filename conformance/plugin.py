"""The pytest plugin's entry point: options, markers, and the check of collected checks.

Inert unless a DICOMweb server is given: installed, the package registers its options and
markers in every pytest run of the environment, and that is all it costs. The rest (settings,
client, samples, pydicom, requests: the hooks and fixtures of the ``run`` package) is imported
and registered only when ``--base-url`` is given, as pytest-base-url defers its own work.
"""

from __future__ import annotations

import pytest

from . import catalog
from .items import is_check, requirement_ids, targets_checks
from .settings import OPTIONS

RUN = "dicomweb-session"  # run.NAME, without importing the run to know it


NEEDS_A_SERVER = (
    "dicomweb: the checks need a server: pass --base-url=https://host/dicom-web "
    "(or set PYTEST_BASE_URL); see pytest --help, section 'DICOMweb conformance'"
)
# pytest-base-url declares --base-url (selenium and playwright share it), so it is listed under
# "Custom options"; our group says where the server is given, first.
BASE_URL_NOTE = (
    "--base-url=URL (or PYTEST_BASE_URL, or ini base_url): the server's DICOMweb root, e.g. "
    "http://host:8042/dicom-web for Orthanc. The option is pytest-base-url's, so it is also "
    "listed under 'Custom options'."
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dicomweb", "DICOMweb conformance")
    # An argparse group's description is printed under its title: the one place in this group
    # for an option declared by another plugin. (pytest's getgroup takes a title only.)
    arggroup = getattr(group, "_arggroup", None)
    if arggroup is not None:
        arggroup.description = BASE_URL_NOTE
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
    base_url = _base_url(config)
    if not base_url:
        return
    from . import run  # the heavy part: only for a run that has a server

    run.register(config, base_url)


def _base_url(config: pytest.Config) -> str | None:
    return config.getoption("base_url", None) or config.getini("base_url") or None


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """--dicomweb-purge runs instead of pytest's session: it lists (and deletes) what earlier
    runs left, then ends with its own last line and exit status, and collects no checks."""
    base_url = _base_url(config)
    if not base_url or hasattr(config, "workerinput"):
        return None
    if config.option.help or config.option.version or config.option.collectonly:
        return None
    from .run import session

    return session.purge(config, base_url)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Checks without a server: one message before collection, not after it."""
    config = session.config
    if not _base_url(config) and not hasattr(config, "workerinput") and targets_checks(config):
        raise pytest.UsageError(NEEDS_A_SERVER)


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
    if checks and not config.pluginmanager.has_plugin(RUN):
        raise pytest.UsageError(NEEDS_A_SERVER)  # checks of a user's, elsewhere
    if checks:
        from .run import schedule

        schedule.longest_first(items)
