"""Running the conformance suite in a subprocess and reading its per-check outcomes."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import jsonschema

from conformance import expectations, results

SCHEMA = json.loads(results.SCHEMA.read_text(encoding="utf-8"))


# The article's walkthrough on a local Orthanc, judged by Orthanc's profile: a run of seconds
# with passes, an expected FAIL, NOT-IMPLEMENTED checks and evidence.
WALKTHROUGH_ON_ORTHANC = ("-k", "walkthrough", "--dicomweb-profile=orthanc")


def valid(document: dict[str, Any]) -> dict[str, Any]:
    """``document``, once it is shown valid against the results.json schema the package ships."""
    jsonschema.validate(document, SCHEMA, cls=jsonschema.Draft202012Validator)
    return document


@dataclass
class SuiteRun:
    """The outcome of one run of the conformance suite in a subprocess."""

    ret: int
    stdout: str
    outcomes: dict[str, str]  # test name (with parameters) -> passed/failed/skipped/error
    junit: str
    results: dict[str, Any] = field(default_factory=dict)  # the run's results.json

    @property
    def verdicts(self) -> dict[str, str]:
        """Check name (test_x.py::test_y[p]) -> verdict."""
        return {c["check"]: c["verdict"] for c in self.results.get("checks", [])}

    def verdicts_outside(self, checks: Iterable[str], wanted: set[str]) -> dict[str, str]:
        """Each of ``checks`` whose verdict is not one of ``wanted``, with it ("not run")."""
        got = self.verdicts
        return {c: got.get(c, "not run") for c in sorted(checks) if got.get(c) not in wanted}

    def outcome(self, name: str) -> str:
        return self.outcomes.get(name, "not run")

    def named(self, outcome: str) -> set[str]:
        return {name for name, got in self.outcomes.items() if got == outcome}


class RunSuite(Protocol):
    def __call__(
        self,
        base_url: str,
        *args: str,
        env: dict[str, str] | None = None,
        checks: Iterable[str] | None = None,
    ) -> SuiteRun: ...


def expected_outside(path: Path, checks: Iterable[str], wanted: set[str]) -> dict[str, str]:
    """Each of ``checks`` whose verdict in the expectations file ``path`` is not in ``wanted``."""
    entries = expectations.load(path).entries
    return {
        c: entries[c].verdict if c in entries else "not in the expectations"
        for c in sorted(checks)
        if c not in entries or entries[c].verdict not in wanted
    }


def parse_junit(path: Path) -> dict[str, str]:
    outcomes: dict[str, str] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        tags = {child.tag for child in case}
        outcome = next((t for t in ("error", "failure", "skipped") if t in tags), "passed")
        outcomes[case.attrib["name"]] = {"failure": "failed"}.get(outcome, outcome)
    return outcomes
