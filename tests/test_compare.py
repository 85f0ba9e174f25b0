"""Several runs side by side (python -m conformance.compare), from results.json files alone."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from suiterun import valid

from conformance import catalog, compare, results


def run(name: str, verdict: str, reading: str | None = None) -> dict[str, Any]:
    requirements = catalog.default()
    record = {
        "check": "test_wado.py::test_retrieve_without_accept_answers_406",
        "nodeid": "x",
        "requirements": ["WADO-NO-ACCEPT-406" if reading is None else "QIDO-NO-MATCH-204"],
        "verdict": verdict,
        "expected": None,
        "expected_by": None,
        "expected_reason": None,
        "expected_reading": None,
        "message": "",
        "reading": reading,
        "evidence": [],
    }
    info: dict[str, Any] = {
        "base_url": f"http://{name}/dicom-web",
        "server": "",
        "server_name": name,
        "profile": "standard",
        "mode": None,
        "capabilities": {},
        "run_id": "r",
        "settings": {},
        "started": 0.0,
        "ended": 1.0,
    }
    return valid(
        results.build(run=info, catalog=requirements, records=[record], cleanup=None, unmatched=[])
    )


def write(document: dict[str, Any], folder: Path) -> Path:
    path = folder / "results.json"
    results.write(path, document)
    return path


def test_rows_that_differ_come_first_and_link_to_each_runs_report(tmp_path: Path) -> None:
    a = write(run("alpha", "PASS"), tmp_path / "a")
    b = write(run("beta", "FAIL"), tmp_path / "b")
    out = tmp_path / "out"
    assert compare.main([str(a), str(b), "--out", str(out)]) == 0
    statement = (out / "compare.md").read_text()
    differ = statement.split("## Where they differ (1)")[1].split("## Where they agree")[0]
    assert "WADO-NO-ACCEPT-406" in differ and "| PASS | FAIL |" in differ
    page = (out / "compare.html").read_text()
    assert 'href="../b/conformance.html#req-WADO-NO-ACCEPT-406"' in page


def test_runs_against_different_catalogs_are_refused_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = copy.deepcopy(run("beta", "PASS"))
    other["catalog"]["requirements"] += 1
    a = write(run("alpha", "PASS"), tmp_path / "a")
    b = write(other, tmp_path / "b")
    assert compare.main([str(a), str(b), "--out", str(tmp_path / "out")]) == 2
    assert "another catalog" in capsys.readouterr().err
    assert (
        compare.main([str(a), str(b), "--out", str(tmp_path / "o"), "--allow-different-catalogs"])
        == 0
    )


def test_servers_choosing_different_readings_differ_and_say_which(tmp_path: Path) -> None:
    """INFO on both sides is no agreement when one answers 204 and the other 200 []."""
    a = write(run("a", "INFO", "200-empty"), tmp_path / "a")
    b = write(run("b", "INFO", "204"), tmp_path / "b")
    out = tmp_path / "out"
    assert compare.main([str(a), str(b), "--out", str(out)]) == 0
    statement = (out / "compare.md").read_text()
    differ = statement.split("## Where they agree")[0]
    assert "QIDO-NO-MATCH-204" in differ
    assert "| INFO (200-empty) | INFO (204) |" in differ
    page = (out / "compare.html").read_text()
    assert "<small>200-empty</small>" in page and "<small>204</small>" in page
