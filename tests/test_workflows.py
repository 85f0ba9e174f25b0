"""The GitHub Actions workflows in docs/workflows are valid workflows (check-jsonschema's
built-in GitHub workflow schema, vendored: no network) and use only options the suite has."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from paths import REPO

from conformance.settings import OPTIONS

WORKFLOWS = sorted((REPO / "docs" / "workflows").glob("*.yml"))


def validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_workflows_are_valid_github_workflows() -> None:
    assert len(WORKFLOWS) == 2
    done = validate(*WORKFLOWS)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_broken_workflow_is_caught(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOWS[0].read_text().replace("runs-on:", "run-on:"))
    assert validate(broken).returncode != 0


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_the_workflows_use_only_options_the_suite_has(workflow: Path) -> None:
    known = {o.cli for o in OPTIONS}
    used = set(re.findall(r"--dicomweb-[a-z-]+", workflow.read_text()))
    assert used and used <= known, used - known
