"""The fault matrix: every fault caught by at least one check, and docs/fault-matrix.md current."""

from __future__ import annotations

import faultmatrix


def test_every_fault_is_caught_by_at_least_one_check() -> None:
    uncaught = [fault for fault, (_, checks) in faultmatrix.matrix().items() if not checks]
    assert not uncaught, f"faults no check is proven to catch: {uncaught}"


def test_the_documented_matrix_is_current() -> None:
    regenerate = ".venv/bin/python tests/faultmatrix.py > docs/fault-matrix.md"
    assert faultmatrix.DOC.read_text(encoding="utf-8") == faultmatrix.render(), (
        f"docs/fault-matrix.md is stale: {regenerate}"
    )
