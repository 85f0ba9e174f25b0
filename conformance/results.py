"""The result model: one run's results.json, the source every other view is made from.

Versioned (``format`` and ``format_version``) and described by a JSON Schema shipped with the
package (``results.schema.json``): every reader checks its input against it, as our tests check
every results.json they produce. It carries what a reader needs without the server: who ran
what against which server (suite version and commit, catalog editions, profile, redacted
settings, the server's own ``Server`` header and the name the user gives it), every check's
verdict with its evidence when it is not PASS, and every requirement's verdict with its quoted
rule and the checks that decided it. A requirement nobody wrote a check for is "untested"; one
whose checks did not run (deselected, a module left out) is "not run": they are different
statements. A rule that binds the user agent ("user agent") or that is no rule ("withdrawn") is
listed, and never judged.

Requirements that fail from one observed fault are one breach: a failing requirement whose
``explained_by`` names another that fails in the same run shares its ``breach`` (the IDs of
every requirement of that breach), so a reader counts faults, not symptoms.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .catalog import Catalog, Requirement
from .verdicts import Verdict, worst

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator

FORMAT = "dicomweb-conformance/results"
FORMAT_VERSION = 2
SCHEMA = Path(__file__).with_name("results.schema.json")
PACKAGE = "dicomweb-conformance"


def timestamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@cache
def suite_identity() -> dict[str, str | None]:
    """The suite's version, and its git commit when it runs from a checkout."""
    try:
        version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        version = "unknown"
    root = Path(__file__).resolve().parent.parent
    commit = None
    if (root / ".git").exists():
        try:
            done = subprocess.run(
                ["git", "-C", str(root), "rev-parse", "HEAD"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
            commit = done.stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            commit = None
    return {"name": PACKAGE, "version": version, "commit": commit}


@dataclass
class CheckRecord:
    """One check as every view shows it, built once where its verdict is judged (run/record.py):
    its entry in results.json ``checks``, and what JUnit, the terminal and pytest-html show of it.
    It travels from an xdist worker as ``asdict(record)``, the form every reader takes."""

    check: str  # test_x.py::test_y[p], the same from a checkout or an installed package
    nodeid: str
    requirements: list[str]
    verdict: str
    expected: str | None = None
    expected_by: str | None = None  # "orthanc.toml:<key>": whose expectation, under which key
    expected_reason: str | None = None
    expected_reading: str | None = None
    message: str = ""
    reading: str | None = None
    evidence: list[dict[str, Any]] = field(default_factory=list)  # exchanges, when not PASS
    duration: float = 0.0  # seconds: setup, call and teardown


def _status(requirement: Requirement, decided: bool) -> str:
    if requirement.withdrawn:
        return "withdrawn"
    if requirement.binds != "origin server":
        return "user agent"
    return "tested" if decided else "untested" if requirement.untested else "not run"


def requirement_rows(
    catalog: Catalog, records: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Every requirement of the catalog with its verdict (the worst of its checks'), its status,
    the readings its checks recorded and, when it fails, the breach it belongs to."""
    checks: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        for rid in record["requirements"]:
            checks.setdefault(rid, []).append(record)
    rows = []
    for r in catalog.values():
        decided = checks.get(r.id, [])
        verdict = str(worst([Verdict(c["verdict"]) for c in decided])) if decided else None
        chosen = sorted({c["reading"] for c in decided if c.get("reading")})
        rows.append(
            {
                "id": r.id,
                "title": r.title,
                "level": r.level,
                "binds": r.binds,
                "vendor": r.vendor,
                "capability": r.capability,
                "transaction": r.transaction,
                "part": r.part,
                "section": r.section,
                "edition": r.edition,
                "text": r.text,
                "readings": [asdict(g) for g in r.readings],
                "later": r.later,
                "request_breaks": r.request_breaks,
                "explained_by": list(r.explained_by),
                "status": _status(r, bool(decided)),
                "verdict": verdict,
                "reading": ", ".join(chosen) or None,
                "breach": None,
                "checks": [c["check"] for c in decided],
                "untested": r.untested,
                "withdrawn": r.withdrawn,
            }
        )
    for group in breaches(rows):
        for row in group:
            row["breach"] = [other["id"] for other in group]
    return rows


def breaches(rows: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The failing requirements grouped by observed fault: two are one breach when one names
    the other in ``explained_by`` and both FAIL in this run. Groups in catalog order."""
    failing = {row["id"]: row for row in rows if row["verdict"] == Verdict.FAIL}
    root = {rid: rid for rid in failing}

    def find(rid: str) -> str:
        while root[rid] != rid:
            root[rid] = root[root[rid]]
            rid = root[rid]
        return rid

    for rid, row in failing.items():
        for cause in row["explained_by"]:
            if cause in failing:
                root[find(rid)] = find(cause)
    groups: dict[str, list[dict[str, Any]]] = {}
    for rid, row in failing.items():
        groups.setdefault(find(rid), []).append(row)
    return list(groups.values())


def build(
    *,
    run: Mapping[str, Any],
    catalog: Catalog,
    records: Sequence[Mapping[str, Any]],
    cleanup: Mapping[str, Any] | None,
    unmatched: Sequence[str],
) -> dict[str, Any]:
    """results.json from what the run recorded. ``run``: base_url, server (its Server header),
    server_name (declared), profile, mode, capabilities (the profile's declarations), run_id,
    settings (redacted), started, ended (seconds); reading (what the run read, optional)."""
    editions: dict[str, set[str]] = {}
    for r in catalog.values():
        editions.setdefault(r.part, set()).add(r.edition)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "suite": suite_identity(),
        "catalog": {
            "editions": {part: sorted(found) for part, found in sorted(editions.items())},
            "requirements": len(catalog),
        },
        "base_url": run["base_url"],
        "server": run["server"],
        "server_name": run["server_name"],
        "profile": run["profile"],
        "mode": run["mode"],
        "capabilities": run["capabilities"],
        "run_id": run["run_id"],
        "settings": run["settings"],
        "started": timestamp(run["started"]),
        "ended": timestamp(run["ended"]),
        "duration_s": round(run["ended"] - run["started"], 3),
        "counts": dict(Counter(r["verdict"] for r in records)),
        "cleanup": cleanup,
        "checks": list(records),
        "requirements": requirement_rows(catalog, records),
        "unmatched_expectations": list(unmatched),
        "reading": run.get("reading"),
    }


def write(path: Path, results: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2, ensure_ascii=False, default=str) + "\n"
    path.write_text(text, encoding="utf-8")


class ResultsError(ValueError):
    """A file that is no results.json this suite can read; the message is one line naming it."""


def load(path: Path) -> dict[str, Any]:
    """A results.json, checked against the shipped schema: a reader (report, compare, baseline)
    refuses anything else in one line naming the file, never with a traceback."""
    data = _read_json(path)
    problem = _problem(data)
    if problem:
        raise ResultsError(f"{path}: {problem}")
    valid: dict[str, Any] = data
    return valid


def _read_json(path: Path) -> Any:
    if path.is_dir():
        inside = path / "results.json"
        hint = f" (give {inside})" if inside.is_file() else ""
        raise ResultsError(f"{path}: a folder, not a results.json{hint}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise ResultsError(f"{path}: not a results.json (not text)") from None
    except OSError as exc:
        raise ResultsError(f"{path}: cannot be read ({exc.strerror})") from None
    if not text.strip():
        raise ResultsError(f"{path}: empty, not a results.json")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        what = exc.msg.removesuffix(" at").removesuffix(" starting")  # "… string starting at"
        where = f"line {exc.lineno}, column {exc.colno}: {what[:1].lower()}{what[1:]}"
        if exc.pos == len(text) - len(text.lstrip()):  # the very first character
            begins = text.lstrip()[:20]
            raise ResultsError(
                f"{path}: not a results.json (not JSON: it begins {begins!r})"
            ) from None
        # The text ends inside a value: the file was cut (a run interrupted while writing it?).
        if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
            raise ResultsError(f"{path}: cut short: its JSON stops unfinished ({where})") from None
        raise ResultsError(f"{path}: not valid JSON ({where})") from None


def _problem(data: Any) -> str | None:
    """Why ``data`` is no results.json this suite can read (None: it is one)."""
    refused = "not a results.json this suite can read"
    if not isinstance(data, dict):
        return f"{refused}: a JSON {_JSON_TYPES.get(type(data), 'null')}, not an object"
    if data.get("format") != FORMAT:
        found = f"format {data['format']!r}" if "format" in data else 'no "format"'
        return f"{refused}: {found}, not {FORMAT!r}"
    version = data.get("format_version")
    if type(version) is not int:
        return f"{refused}: format_version {version!r} is no version number"
    if version > FORMAT_VERSION:
        return (
            f"{refused}: format version {version} is newer than this suite's "
            f"({FORMAT_VERSION}): upgrade {PACKAGE}"
        )
    if version < FORMAT_VERSION:
        return (
            f"{refused}: format version {version} is older than this suite's "
            f"({FORMAT_VERSION}): run the checks again"
        )
    from jsonschema.exceptions import best_match

    error = best_match(_validator().iter_errors(data))
    if error is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
        message = " ".join(error.message.split())
        message = message if len(message) <= 160 else message[:159] + "…"
        return f"not a valid results.json ({where.lstrip('.') or 'top level'}: {message})"
    listed, catalog = len(data["requirements"]), data["catalog"]["requirements"]
    if listed != catalog:
        return f"lists {listed} requirements where its catalog has {catalog}: a cut or edited file"
    return None


_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


@cache
def _validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator  # only readers need it: a run starts without

    return Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
