"""dicomweb-conformance, the console script: each command, as a person types it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from suiterun import valid
from test_compare import run as one_check_run

from conformance import catalog, cli, results
from conformance.local.orthanc import LocalOrthanc

CHECKS_DIR = Path(cli.__file__).parent / "checks"


def test_requirements_lists_and_searches_the_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["requirements", "wildcard", "--transaction", "qido", "--level", "MUST"]) == 0
    out = capsys.readouterr()
    assert "QIDO-MATCH-WILDCARD-ANY" in out.out and "PS3.4 C.2.2.2.4" in out.out
    assert "5 requirement(s)" in out.err  # the three wildcard rules, and two that mention it


def found(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert cli.main(["requirements", *argv]) == 0
    return [line.split()[0] for line in capsys.readouterr().out.splitlines()]


def test_requirements_searches_words_in_any_order_and_any_case(
    capsys: pytest.CaptureFixture[str],
) -> None:
    one = found(capsys, "wildcard", "ANY")
    assert "QIDO-MATCH-WILDCARD-ANY" in one
    assert found(capsys, "any wildcard") == one == found(capsys, "Any", "WildCard")
    assert found(capsys, "wildcard", "any", "--level", "must", "--transaction", "QIDO") == [
        r
        for r in one
        if (catalog.default()[r].level, catalog.default()[r].transaction) == ("MUST", "qido")
    ]
    assert found(capsys, "wildcard", "no-such-word") == []


@pytest.mark.parametrize(
    ("option", "known"),
    [("--level", "known: MUST, SHOULD, MAY"), ("--transaction", "known: stow, wado, qido, ")],
)
def test_requirements_refuses_an_unknown_level_or_transaction_in_one_line(
    option: str, known: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["requirements", option, "often"]) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.startswith(
        f"dicomweb-conformance requirements: error: unknown {option[2:]} 'often'; "
    )
    assert known in out.err and out.err.count("\n") == 1


def test_requirements_prints_one_requirements_whole_rule(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["requirements", "qido-no-match-204"]) == 0
    rule = capsys.readouterr().out
    for part in (
        "### QIDO-NO-MATCH-204",
        "A search matching nothing answers 204 No Content",  # title
        "**MUST**, binds the origin server; PS3.18 8.3.4.4.1, Table 10.6.3-1 (2024c)",
        "> If (results <= 0) then there are no matches",  # the quote
        "- Reading `204` (PS3.18 2024c 8.3.4.4.1)",
        "- Reading `200-empty` (CP-2473",
        "- Later: CP-2473",
        "- Note: Passes 204",
    ):
        assert part in rule
    unjudged = next(r for r in catalog.default().values() if r.withdrawn)
    assert cli.main(["requirements", unjudged.id]) == 0
    assert f"- Withdrawn: {unjudged.withdrawn}" in capsys.readouterr().out
    untested = next(r for r in catalog.default().values() if r.untested)
    assert cli.main(["requirements", untested.id]) == 0
    assert f"- No check: {untested.untested}" in capsys.readouterr().out


# Bad inputs to the readers (report, compare, baseline): each is one line naming the file,
# exit status 2, no traceback. /work/audit/cli-bad-inputs.md shows what each says.
def _without_requirements(good: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in good.items() if k != "requirements"})


def _with(**changes: Any) -> Callable[[dict[str, Any]], str]:
    return lambda good: json.dumps({**good, **changes})


def _verdict_maybe(good: dict[str, Any]) -> str:
    return json.dumps({**good, "checks": [{**good["checks"][0], "verdict": "MAYBE"}]})


BAD_INPUTS: dict[str, tuple[Callable[[dict[str, Any]], str | bytes] | None, str]] = {
    "a JSON list": (lambda good: "[1, 2]", "a JSON array, not an object"),
    "no requirements": (
        _without_requirements,
        "not a valid results.json (top level: 'requirements' is a required property)",
    ),
    "a cut file": (
        lambda good: json.dumps(good, indent=2)[:5000],
        "cut short: its JSON stops unfinished (line ",
    ),
    "junit.xml": (lambda good: '<?xml version="1.0"?><testsuites/>', "not JSON: it begins '<?xml"),
    "another JSON": (lambda good: '{"name": "x"}', 'no "format", not '),
    "a newer format": (
        _with(format_version=3),
        "format version 3 is newer than this suite's (2): upgrade dicomweb-conformance",
    ),
    "an older format": (_with(format_version=1), "format version 1 is older than this suite's"),
    "empty": (lambda good: "", "empty, not a results.json"),
    "a wrong verdict": (_verdict_maybe, "(checks[0].verdict: 'MAYBE' is not one of ['PASS', "),
    "requirements cut": (
        lambda good: json.dumps({**good, "requirements": good["requirements"][:10]}),
        "lists 10 requirements where its catalog has ",
    ),
    "binary": (lambda good: b"\x89PNG\r\n\x1a\n\xff", "not a results.json (not text)"),
    "missing": (None, "no such file"),
}


def bad_input(kind: str, folder: Path) -> tuple[Path, str]:
    """A file of that kind in ``folder``, and what a reader must say of it."""
    make, said = BAD_INPUTS[kind]
    path = folder / "bad.json"
    if make is not None:
        text = make(one_check_run("alpha", "PASS"))
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path, said


def _reader(command: str, path: Path, tmp_path: Path) -> list[str]:
    good = tmp_path / "good" / "results.json"
    results.write(good, one_check_run("alpha", "PASS"))
    out = ["--out", str(tmp_path / "out")]
    return {
        "report": ["report", str(path), *out],
        "compare": ["compare", str(good), str(path), *out],  # the second one is the bad one
        "baseline": ["baseline", str(path)],
    }[command]


@pytest.mark.parametrize("command", ["report", "compare", "baseline"])
@pytest.mark.parametrize("kind", [*BAD_INPUTS, "a folder"])
def test_a_reader_refuses_a_bad_input_in_one_line_naming_it(
    command: str, kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if kind == "a folder":
        path = tmp_path / "run"
        results.write(path / "results.json", one_check_run("alpha", "PASS"))
        said = f"a folder, not a results.json (give {path / 'results.json'})"
    else:
        path, said = bad_input(kind, tmp_path)
    assert cli.main(_reader(command, path, tmp_path)) == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.startswith(f"dicomweb-conformance {command}: error: {path}: ")
    assert said in out.err and out.err.count("\n") == 1, out.err


def test_python_m_still_works_and_speaks_the_commands_name(tmp_path: Path) -> None:
    path, said = bad_input("a JSON list", tmp_path)
    for module, command in (("report", "report"), ("expectations", "baseline")):
        done = subprocess.run(
            [sys.executable, "-m", f"conformance.{module}", str(path)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 2
        assert done.stderr.startswith(f"dicomweb-conformance {command}: error: {path}: ")
        assert done.stderr.endswith(f"{said}\n") and done.stderr.count("\n") == 1
        helped = subprocess.run(
            [sys.executable, "-m", f"conformance.{module}", "--help"],
            capture_output=True,
            text=True,
        )
        assert helped.stdout.startswith(f"usage: dicomweb-conformance {command} ")


def test_baseline_says_in_one_line_when_the_run_was_partial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run of one check: what the new file does not say of the others is said once."""
    path = tmp_path / "results.json"
    results.write(path, one_check_run("alpha", "FAIL"))
    not_run = sum(
        r.judged and not r.untested and r.id != "WADO-NO-ACCEPT-406"
        for r in catalog.default().values()
    )
    assert cli.main(["baseline", str(path)]) == 0
    assert capsys.readouterr().err == (
        f"partial run: {not_run} requirements not run, and their checks have no entry here "
        "(--previous FILE keeps an earlier file's)\n"
    )
    previous = tmp_path / "old.toml"
    kept = '"test_qido_paging.py::test_search_answers_dicom_xml" = '
    kept += '{ verdict = "FAIL", reason = "xml" }'
    previous.write_text(f"[expect]\n{kept}\n")
    assert cli.main(["baseline", str(path), "--previous", str(previous)]) == 0
    out = capsys.readouterr()
    assert kept in out.out
    assert out.err == (
        f"partial run: {not_run} requirements not run; 1 check of old.toml not run: their "
        "previous entries are kept\n"
    )


# run: the words that say what to run, and usage errors before pytest writes anything.
SUITE = ["--pyargs", "conformance.checks"]
QIDO = [f"{CHECKS_DIR}/test_qido{topic}.py" for topic in ("", "_attributes", "_paging")]


@pytest.mark.parametrize(
    ("words", "given"),
    [
        ([], SUITE),
        (["-k", "walkthrough"], [*SUITE, "-k", "walkthrough"]),  # -k's value names no module
        (["--dicomweb-disable", "http", "-n", "2"], [*SUITE, "--dicomweb-disable", "http"]),
        (["qido"], QIDO),  # the transaction: its module and its topics
        (["test_qido"], QIDO),
        (["qido_paging"], [f"{CHECKS_DIR}/test_qido_paging.py"]),
        (["test_qido.py::test_x", "-k", "y"], [f"{CHECKS_DIR}/test_qido.py::test_x", "-k"]),
        (["mine.py", "qido"], ["mine.py", *QIDO]),
        (["--pyargs", "my.checks"], ["--pyargs", "my.checks"]),
    ],
)
def test_run_takes_a_module_by_its_name_its_file_or_its_transaction(
    words: list[str], given: list[str], tmp_path: Path
) -> None:
    (tmp_path / "mine.py").write_text("")
    assert cli.pytest_arguments(words, tmp_path)[: len(given)] == given


def test_a_module_file_names_that_module_alone(tmp_path: Path) -> None:
    """``qido`` is the transaction (its topics too); ``test_qido.py`` is one file."""
    assert cli.pytest_arguments(["test_qido.py"], tmp_path) == [f"{CHECKS_DIR}/test_qido.py"]


def test_run_refuses_a_word_that_names_nothing_before_pytest_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "reports"
    assert cli.main(["run", "--out", str(out), "--base-url=http://x", "qidoo"]) == 4
    said = capsys.readouterr().err
    assert said == (
        "dicomweb-conformance run: error: 'qidoo' names no module of the suite (azure, existing, "
        "http, http_auth, json, json_values, properties, properties_bad_input, "
        "properties_roundtrip, properties_stateful, qido, qido_attributes, qido_paging, "
        "qido_scoped, stow, stow_failures, wado, wado_frames, wado_metadata, walkthrough) and no "
        "path here (an option's value? write --option=value)\n"
    )
    assert not out.exists()


def test_run_without_a_server_says_so_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_BASE_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "conformance.cli", "run", "--out", "reports", "qido"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert done.returncode == 4
    assert [line for line in done.stderr.splitlines() if line] == [
        "ERROR: dicomweb-conformance run: no server given: pass "
        "--base-url=https://host/dicom-web (or set PYTEST_BASE_URL)"
    ]
    assert done.stdout == "" and not (tmp_path / "reports").exists()  # no empty junit.xml


def test_run_writes_every_report_into_one_folder_and_the_rest_works_from_it(
    orthanc: LocalOrthanc, tmp_path: Path
) -> None:
    orthanc.purge()
    out = tmp_path / "reports"
    command = [sys.executable, "-m", "conformance.cli"]
    done = subprocess.run(
        [
            *command,
            "run",
            "--out",
            str(out),
            f"--base-url={orthanc.dicomweb_url}",
            "walkthrough",  # the module, named by its transaction
            "--dicomweb-profile=orthanc",
            "-p",
            "no:cacheprovider",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stdout  # Orthanc fails one walkthrough check
    assert "warning" not in done.stdout.splitlines()[-1], done.stdout
    names = {p.name for p in out.iterdir()}
    assert names == {
        "junit.xml",
        "report.html",
        "results.json",
        "conformance.html",
        "conformance.md",
    }
    document = valid(results.load(out / "results.json"))
    assert {c["check"].split("::")[0] for c in document["checks"]} == {"test_walkthrough.py"}
    assert "<html" in (out / "report.html").read_text()[:200].lower()  # pytest-html, one file
    again = tmp_path / "again"
    assert cli.main(["report", str(out / "results.json"), "--out", str(again)]) == 0
    assert (again / "conformance.html").exists()
    assert (
        cli.main(
            [
                "compare",
                str(out / "results.json"),
                str(out / "results.json"),
                "--out",
                str(tmp_path / "cmp"),
            ]
        )
        == 0
    )
    baseline = subprocess.run(
        [*command, "baseline", str(out / "results.json")], capture_output=True, text=True
    )
    assert baseline.returncode == 0 and "[expect]" in baseline.stdout
    assert "-byte payload" not in baseline.stdout or "N-byte" in baseline.stdout
    assert baseline.stderr.startswith("partial run: ")  # the walkthrough module alone
