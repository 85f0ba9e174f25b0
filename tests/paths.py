"""Where the project's own files are, for the tests."""

from __future__ import annotations

from pathlib import Path

import conformance.checks

REPO = Path(__file__).resolve().parent.parent
EXPECTATIONS_DIR = REPO / "expectations"
# Per server, the verdict of every check: a change in any verdict fails our tests.
ORTHANC_EXPECTATIONS = EXPECTATIONS_DIR / "orthanc.toml"
TINYPACS_EXPECTATIONS = EXPECTATIONS_DIR / "tiny-pacs.toml"
# The installed checks (the same files in an editable install).
CHECKS_DIR = Path(conformance.checks.__file__).parent
