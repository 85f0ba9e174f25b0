"""Expected verdicts: known deviations of a server, and the baseline a CI gate compares against.

One mechanism serves two uses. A profile's documented departures (``conformance/profiles``) and a
deployment's expectations file (``--dicomweb-expectations``) are both tables of expected
verdicts, keyed by requirement ID or by check name (``test_wado.py::test_x[param]``)::

    server = "Orthanc 1.10.1, DICOMweb plugin 1.7"

    [expect]
    "test_wado.py::test_retrieve_without_accept_answers_406" = { verdict = "FAIL", reason = "400" }
    "QIDO-PAGING-WARNING" = { verdict = "NON-STRICT", reason = "no Warning header" }
    "QIDO-NO-MATCH-204" = { verdict = "INFO", reading = "200-empty" }

(``docs/examples/expectations.toml``; our tests load it.) Every key must name a requirement of
the catalog or a check: a check of the suite's own modules must exist there (its parameters are
checked against the collected checks by our tests); a user's own check module is taken as given.
An entry may name the reading the server is expected to choose, where the requirement lists
several: one the requirement does not list is refused, and a server that chooses another reading
has changed, which the gate reports like any other change.

A check whose verdict equals its expectation is reported as expected (an expected FAIL becomes an
xfail, so the gate stays green); a check whose verdict differs fails the run, in both directions:
a regression, or a fixed deviation whose entry is now stale. Entries that match no check are
listed at the end of the run.

``dicomweb-conformance baseline RESULTS.json`` (``python -m conformance.expectations``) writes the
verdicts of a run as a new file.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .catalog import default as default_catalog
from .verdicts import Verdict

CHECKS_DIR = Path(__file__).parent / "checks"
REQUIREMENT_ID = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")
CHECK_NAME = re.compile(r"^(?P<module>test_\w+\.py)::(?P<function>test_\w+)(\[.*\])?$")


class ExpectationsError(ValueError):
    """An expectations file (or a profile's departures) cannot be used; the message says why."""


@dataclass(frozen=True)
class Expectation:
    verdict: Verdict
    reason: str
    source: str  # where the deviation is documented, or "observed"
    origin: str  # the file the entry came from
    reading: str | None = None  # the reading of its rule the server is expected to choose


class Expectations:
    """Expected verdicts by key (a check name or a requirement ID); later sources win."""

    def __init__(self, entries: Mapping[str, Expectation] | None = None) -> None:
        self.entries: dict[str, Expectation] = dict(entries or {})

    def merged(self, other: Expectations) -> Expectations:
        return Expectations({**self.entries, **other.entries})

    def lookup(self, check: str, requirement_ids: Iterable[str]) -> tuple[str, Expectation] | None:
        """The entry for the check itself, else for the first of its requirements that has one."""
        for key in (check, *requirement_ids):
            if key in self.entries:
                return key, self.entries[key]
        return None

    def __len__(self) -> int:
        return len(self.entries)


@cache
def suite_checks() -> dict[str, frozenset[str]]:
    """The check functions of each of the suite's own modules, read without importing them."""
    found = {}
    for path in sorted(CHECKS_DIR.glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found[path.name] = frozenset(
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
        )
    return found


def moved(key: str) -> str:
    """The name a check has now, when it was split off its module into one of the module's
    topics (``test_qido.py`` into ``test_qido_paging.py``): an expectations file written
    before keeps working, and the next ``baseline`` writes the new name."""
    match = CHECK_NAME.match(key)
    if match is None:
        return key
    module, function = match["module"], match["function"]
    checks = suite_checks()
    if module not in checks or function in checks[module]:
        return key
    stem = module.removesuffix(".py")
    homes = [
        m for m, functions in checks.items() if m.startswith(f"{stem}_") and function in functions
    ]
    return f"{homes[0]}{key[len(module) :]}" if len(homes) == 1 else key


def key_problem(key: str) -> str | None:
    """Why ``key`` can name nothing (None: it can): an entry that never applies is a silent lie."""
    if REQUIREMENT_ID.match(key):
        if key in default_catalog():
            return None
        return f"{key!r} is not a requirement of the catalog (conformance/requirements)"
    match = CHECK_NAME.match(key)
    if match is None:
        return (
            f"{key!r} is neither a requirement ID (QIDO-PAGING-WARNING) nor a check name "
            "(test_qido.py::test_x[param])"
        )
    module, function = match["module"], match["function"]
    checks = suite_checks()
    if module in checks and function not in checks[module]:
        return f"{key!r}: {module} has no check {function}"
    return None


def reading_problem(key: str, reading: str) -> str | None:
    """Why an entry may not expect ``reading`` (None: it may): the reading must be one its
    requirement lists; a check's entry, one that some requirement of the catalog lists (which
    of the check's own requirements is known only when it runs)."""
    catalog = default_catalog()
    if key in catalog:
        listed = [g.id for g in catalog[key].readings]
    else:
        listed = sorted({g.id for r in catalog.values() for g in r.readings})
    if reading in listed:
        return None
    if key in catalog:
        return f"entry {key!r} expects reading {reading!r}, but {key} lists " + (
            f"only {', '.join(listed)}" if listed else "no readings"
        )
    return f"entry {key!r} expects reading {reading!r}, which no requirement of the catalog lists"


def parse_table(table: Mapping[str, Any], origin: str) -> Expectations:
    """The ``[expect]`` table of an expectations file or a profile."""
    entries = {}
    for written, value in table.items():
        key = moved(written)
        problem = key_problem(key)
        if problem:
            raise ExpectationsError(f"{origin}: {problem}")
        if isinstance(value, str):
            value = {"verdict": value}
        if not isinstance(value, dict) or "verdict" not in value:
            raise ExpectationsError(f"{origin}: entry {key!r} needs a verdict")
        unknown = set(value) - {"verdict", "reason", "source", "reading"}
        if unknown:
            raise ExpectationsError(f"{origin}: entry {key!r} has unknown keys {sorted(unknown)}")
        try:
            verdict = Verdict(value["verdict"])
        except ValueError:
            raise ExpectationsError(
                f"{origin}: entry {key!r}: {value['verdict']!r} is not a verdict "
                f"({', '.join(Verdict)})"
            ) from None
        reading = value.get("reading")
        if reading is not None:  # one reading, or several a check recorded, joined by ", "
            for one in str(reading).split(", "):
                problem = reading_problem(key, one)
                if problem:
                    raise ExpectationsError(f"{origin}: {problem}")
        entries[key] = Expectation(
            verdict,
            str(value.get("reason", "")),
            str(value.get("source", "")),
            origin,
            None if reading is None else str(reading),
        )
    return Expectations(entries)


def _table(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExpectationsError(f"expectations file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not text"
        raise ExpectationsError(f"expectations file {path} cannot be read ({why})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ExpectationsError(f"expectations file {path} is not valid TOML: {exc}") from None
    unknown = set(data) - {"server", "expect"}
    if unknown:
        raise ExpectationsError(f"{path}: unknown top-level keys {sorted(unknown)}")
    table: dict[str, Any] = data.get("expect", {})
    return table


def load(path: Path) -> Expectations:
    return parse_table(_table(path), path.name)


def load_previous(path: Path) -> tuple[Expectations, list[str]]:
    """An earlier file whose reasons a rewrite keeps, less its entries that name no requirement
    or check any more (a check renamed or removed since): those are returned to be listed."""
    table = _table(path)
    gone = [key for key in table if key_problem(key)]
    return parse_table({k: v for k, v in table.items() if k not in gone}, path.name), gone


# A run's own UIDs and marker in a message would make the file change on every run.
_RUN_SPECIFIC = (
    (re.compile(r"\b2\.25\.\d+"), "2.25.…"),
    (re.compile(r"\bDWC-[0-9A-Za-z-]+", re.IGNORECASE), "DWC-<run>"),
    (re.compile(r"\b(SPS|RP|ACC)-[0-9A-F]{10}\b"), r"\1-<run>"),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
    # Sizes of answers that carry run-specific values: no churn between baselines.
    (re.compile(r"\b\d+(-byte| bytes\b)"), r"N\1"),
)


def _stable(reason: str) -> str:
    for pattern, replacement in _RUN_SPECIFIC:
        reason = pattern.sub(replacement, reason)
    return reason


def _toml_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def _line(name: str, verdict: str, reason: str, reading: str | None = None) -> str:
    if verdict in (Verdict.PASS, Verdict.DISABLED) and not reason:
        return f"{_toml_string(name)} = {_toml_string(verdict)}"
    chosen = f"reading = {_toml_string(reading)}, " if reading else ""
    reason = _stable(" ".join(reason.split()))[:300]
    return (
        f"{_toml_string(name)} = {{ verdict = {_toml_string(verdict)}, {chosen}"
        f"reason = {_toml_string(reason)} }}"
    )


def render(
    results: Mapping[str, Any], previous: Expectations | None = None, server: str | None = None
) -> str:
    """An expectations file holding every check's verdict in a results.json, keeping the reasons
    of a previous file where the verdict did not change, and its entries for checks that did
    not run (deselected with -k, say) where they were."""
    server = server or results.get("base_url", "")
    lines = {}
    for check in results.get("checks", []):
        name, verdict = check["check"], check["verdict"]
        reading = check.get("reading")
        old = previous.entries.get(name) if previous else None
        kept = old is not None and old.verdict == verdict and old.reading == reading
        reason = old.reason if old is not None and kept else check.get("message", "")
        if verdict in (Verdict.PASS, Verdict.DISABLED) and not (kept and reason):
            reason = ""
        lines[name] = _line(name, verdict, reason, reading)
    order = list(lines)
    if previous is not None:
        earlier = list(previous.entries)
        for index, name in enumerate(earlier):
            if name in lines:
                continue
            entry = previous.entries[name]
            lines[name] = _line(name, entry.verdict, entry.reason, entry.reading)
            anchor = next((k for k in reversed(earlier[:index]) if k in order), None)
            order.insert(order.index(anchor) + 1 if anchor else 0, name)
    head = [
        "# Expected verdicts, written by `dicomweb-conformance baseline`.",
        f"server = {_toml_string(str(server))}",
        "",
        "[expect]",
    ]
    return "\n".join([*head, *(lines[name] for name in order)]) + "\n"


def reasons_to_recheck(
    results: Mapping[str, Any], previous: Expectations
) -> list[tuple[str, str, str]]:
    """(check, kept reason, what the check says now) for every reason a rewrite keeps because
    the verdict did not change, where the server's answer did: a reason is a claim, and a
    claim about an answer the server no longer gives is stale even when the verdict stands."""
    stale = []
    for check in results.get("checks", []):
        old = previous.entries.get(check["check"])
        message = " ".join(str(check.get("message", "")).split())
        if old is None or not old.reason or old.verdict != check["verdict"]:
            continue
        if message and _stable(message)[:300] != old.reason:
            stale.append((check["check"], old.reason, _stable(message)))
    return stale


def read_results(path: Path) -> dict[str, Any]:
    from .results import load  # results.py reads the catalog; only this command needs it

    return load(path)


def partial_run(
    results: Mapping[str, Any], previous: Expectations | None, origin: str
) -> str | None:
    """One line when the run left requirements out (-k, -m, a module): the file it makes
    says nothing of the checks that did not run, unless an earlier file's entries are kept."""
    not_run = sum(r["status"] == "not run" for r in results["requirements"])
    if not not_run:
        return None
    said = f"partial run: {not_run} requirements not run"
    if previous is None:
        return (
            f"{said}, and their checks have no entry here (--previous FILE keeps an earlier file's)"
        )
    ran = {check["check"] for check in results["checks"]}
    kept = [key for key in previous.entries if CHECK_NAME.match(key) and key not in ran]
    checks = "1 check" if len(kept) == 1 else f"{len(kept)} checks"
    return f"{said}; {checks} of {origin} not run: their previous entries are kept"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dicomweb-conformance baseline",
        description="Write the verdicts of a run (its results.json, from --dicomweb-results) as "
        "an expectations file for --dicomweb-expectations.",
    )
    parser.add_argument("results", type=Path, help="results.json written by a run")
    parser.add_argument(
        "--previous", type=Path, help="an existing expectations file whose reasons to keep"
    )
    parser.add_argument("--server", help="what the file describes (default: the base URL)")
    args = parser.parse_args(argv)
    try:
        results = read_results(args.results)
        previous, gone = load_previous(args.previous) if args.previous else (None, [])
    except (OSError, ValueError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    for key in gone:
        print(f"dropped {key}: it names no check or requirement any more", file=sys.stderr)
    partial = partial_run(results, previous, args.previous.name if args.previous else "")
    if partial:
        print(partial, file=sys.stderr)
    sys.stdout.write(render(results, previous, args.server))
    if previous is not None:
        stale = reasons_to_recheck(results, previous)
        for check, reason, now in stale:
            print(f"re-check {check}:\n  kept: {reason}\n  now:  {now}", file=sys.stderr)
        if stale:
            print(
                f"{len(stale)} kept reason(s) whose check now says something else: re-check "
                "each (a reason is a claim about the server's answer)",
                file=sys.stderr,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
