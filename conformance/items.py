"""What a check is, told from a pytest item or the command line: below both the plugin's entry
point (``plugin.py``) and the run (``run/``), which both ask, so neither imports the other for it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

CHECKS_DIR = Path(__file__).parent / "checks"


def is_check(item: pytest.Item) -> bool:
    """One of the suite's checks, or a user's own check naming catalog requirements."""
    return (
        CHECKS_DIR in Path(item.path).parents or item.get_closest_marker("requirement") is not None
    )


def requirement_ids(item: pytest.Item) -> list[str]:
    return [i for mark in item.iter_markers("requirement") for i in mark.args]


def check_name(nodeid: str) -> str:
    """``conformance/checks/test_x.py::test_y[p]`` → ``test_x.py::test_y[p]``: the same name
    whether the checks run from the repository or from an installed package."""
    path, _, rest = nodeid.partition("::")
    return f"{path.rsplit('/', 1)[-1]}::{rest}"


def arg_path(config: pytest.Config, arg: str) -> Path | None:
    arg = arg.split("::")[0]
    if config.option.pyargs and not Path(arg).exists():
        try:
            spec = importlib.util.find_spec(arg) if arg.isidentifier() or "." in arg else None
        except (ImportError, ValueError):  # a parent package that does not exist
            spec = None
        origin = spec.origin if spec else None
        if not origin:
            return None
        # A package is its folder; a module (conformance.checks.test_qido) is its file.
        return Path(origin).parent if Path(origin).name == "__init__.py" else Path(origin)
    return Path(config.invocation_params.dir, arg).resolve()


def targets_checks(config: pytest.Config) -> bool:
    """Will this run collect the DICOMweb checks? Decided from the arguments, before collection,
    so that a doomed run stops before it collects, or xdist starts its workers."""
    for arg in config.args:
        path = arg_path(config, arg)
        if path is not None and (
            path == CHECKS_DIR or CHECKS_DIR in path.parents or path in CHECKS_DIR.parents
        ):
            return True
    return False
