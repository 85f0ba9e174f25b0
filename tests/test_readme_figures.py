"""The README's figures are the project's own: its catalog table and its servers table are made
from the catalog, the collected checks and the recorded verdicts (tests/readmefigures.py), and a
change to any of them that leaves the README behind fails here, naming the command that mends it."""

from __future__ import annotations

import pytest
import readmefigures
from paths import REPO


@pytest.mark.parametrize("name", sorted(readmefigures.GENERATED))
def test_the_readme_figure_is_made_from_the_project(
    name: str, checks: dict[str, list[str]]
) -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    shown = readmefigures.current(text, name)
    assert shown is not None, f"README.md has no <!-- generated: {name} --> block"
    assert shown == readmefigures.GENERATED[name](checks), (
        f"README.md's {name} is out of date: run .venv/bin/python tests/readmefigures.py"
    )
