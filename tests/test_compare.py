"""Several runs side by side (dicomweb-conformance compare), from results.json files alone."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from suiterun import valid

from conformance import catalog, compare, results

CHECK = "test_wado.py::test_retrieve_without_accept_answers_406"


def run(name: str, verdict: str, reading: str | None = None, check: str = CHECK) -> dict[str, Any]:
    """A results.json of one check: its requirement judged, every other one not run."""
    requirements = catalog.default()
    record = {
        "check": check,
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
    assert compare.main([str(a), str(b), "--out", str(out)]) == 1
    statement = (out / "compare.md").read_text()
    differ = statement.split("## Where they differ (1)")[1].split("## Not run in every run")[0]
    assert "WADO-NO-ACCEPT-406" in differ and "| PASS | FAIL |" in differ
    page = (out / "compare.html").read_text()
    assert 'href="../b/conformance.html#req-WADO-NO-ACCEPT-406"' in page


def test_the_terminal_shows_the_differences_and_the_exit_status_whether_there_are_any(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write(run("alpha", "PASS"), tmp_path / "a")
    b = write(run("beta", "FAIL"), tmp_path / "b")
    out = str(tmp_path / "out")
    assert compare.main([str(a), str(b), "--out", out]) == 1
    shown = capsys.readouterr().out.splitlines()
    assert shown[0].split() == ["requirement", "alpha", "(1970-01-01)", "beta", "(1970-01-01)"]
    assert shown[1].split() == ["WADO-NO-ACCEPT-406", "PASS", "FAIL"]
    assert shown[2].startswith("1 requirement differs, ") and "not run in every run" in shown[2]
    assert shown[3:] == [f"{out}/compare.html", f"{out}/compare.md"]
    # For a report that only shows them, differences need not fail the command.
    assert compare.main([str(a), str(b), "--out", out, "--exit-zero"]) == 0
    capsys.readouterr()
    # Options may stand between the files.
    assert compare.main([str(a), "--out", out, str(a)]) == 0
    assert capsys.readouterr().out.startswith("no differences: ")


def test_a_requirement_some_run_did_not_run_is_no_agreement(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The two runs ran one check each: everything else is NOT RUN on both sides, and the
    requirement the second run did not run is NOT RUN there: neither agrees, neither differs."""
    a = write(run("alpha", "PASS"), tmp_path / "a")
    b = write(run("beta", "INFO", "204", check="test_qido.py::test_x"), tmp_path / "b")
    out = tmp_path / "out"
    assert compare.main([str(a), str(b), "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith("no differences: ")
    statement = (out / "compare.md").read_text()
    not_run = statement.split("## Not run in every run")[1].split("## Where they agree")[0]
    agree = statement.split("## Where they agree")[1]
    assert "| PASS | NOT RUN |" in not_run and "| NOT RUN | INFO (204) |" in not_run
    assert "| NOT RUN | NOT RUN |" in not_run and "NOT RUN" not in agree
    assert "<h2>Not run in every run (" in (out / "compare.html").read_text()


def test_runs_that_selected_different_checks_are_warned_of_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = write(run("alpha", "PASS"), tmp_path / "a")
    b = write(run("beta", "PASS", check="test_wado.py::test_other"), tmp_path / "b")
    assert compare.main([str(a), str(b), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().err == (
        "dicomweb-conformance compare: warning: the runs selected different checks: 2 of 2 ran "
        "in some runs only (other -k, -m or modules?)\n"
    )
    assert compare.main([str(a), str(a), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().err == ""


def test_runs_against_different_catalogs_are_refused_unless_allowed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = copy.deepcopy(run("beta", "PASS"))
    other["catalog"]["editions"]["PS3.18"] = ["2025a"]
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
    assert compare.main([str(a), str(b), "--out", str(out)]) == 1
    statement = (out / "compare.md").read_text()
    differ = statement.split("## Not run in every run")[0]
    assert "QIDO-NO-MATCH-204" in differ
    assert "| INFO (200-empty) | INFO (204) |" in differ
    page = (out / "compare.html").read_text()
    assert "<small>200-empty</small>" in page and "<small>204</small>" in page
