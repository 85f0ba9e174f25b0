"""Where the project's own files are, for the tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import conformance.checks
from conformance.local import orthancbuilds

REPO = Path(__file__).resolve().parent.parent
EXPECTATIONS_DIR = REPO / "expectations"
# Per server, the verdict of every check: a change in any verdict fails our tests.
ORTHANC_EXPECTATIONS = EXPECTATIONS_DIR / "orthanc.toml"  # Orthanc 1.10, command 1's server
TINYPACS_EXPECTATIONS = EXPECTATIONS_DIR / "tiny-pacs.toml"
# Each Orthanc version our tests run (conformance/local/orthancbuilds.py) -> its expectations file.
ORTHANC_VERSIONS = {
    "1.10": ORTHANC_EXPECTATIONS,
    "1.12": EXPECTATIONS_DIR / "orthanc-1.12.toml",
    "1.13": EXPECTATIONS_DIR / "orthanc-1.13.toml",
}
# Every real server whose verdicts are recorded, by the name the docs give it.
SERVERS = {
    **{f"Orthanc {version}": path for version, path in ORTHANC_VERSIONS.items()},
    "tiny-pacs": TINYPACS_EXPECTATIONS,
}
# The installed checks (the same files in an editable install).
CHECKS_DIR = Path(conformance.checks.__file__).parent


def newer_orthanc_root(version: str) -> Path:
    """The unpacked Orthanc ``version`` (1.12, 1.13) that scripts/bootstrap fetched.

    A pinned version Debian no longer serves skips, loudly (see pytest_terminal_summary): a moved
    Debian testing must neither break unrelated work nor pass silently. Not fetched at all is a
    broken build on CI, and a skip elsewhere.
    """
    build = orthancbuilds.BUILDS[version]
    root = orthancbuilds.root_of(build)
    problem = orthancbuilds.problem(root)
    if problem is None:
        return root
    note = orthancbuilds.note_of(build)
    if note.exists():
        pytest.skip(f"ORTHANC {version} UNAVAILABLE: {note.read_text().strip()}")
    message = f"Orthanc {version} is not ready ({problem}): run scripts/bootstrap"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
