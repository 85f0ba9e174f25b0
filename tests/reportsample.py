"""A results.json made up from the catalog, for the reports' tests that need no server: every
requirement a check can judge has one check, with verdicts of every kind, evidence shaped like
Orthanc's (JSON one value per line) and, when asked, a gate with changed verdicts."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from conformance import catalog, results

# As Orthanc writes a search: one value per line, 12 results (110 lines, under the 5,000
# characters of an excerpt).
PRETTY = json.dumps(
    [{"0020000D": {"vr": "UI", "Value": [f"2.25.{n}"]}} for n in range(12)], indent=2
)
EXPECTATIONS = "expectations/sample.toml"


def exchange(body: str = PRETTY) -> dict[str, Any]:
    return {
        "method": "GET",
        "url": "http://127.0.0.1:8042/dicom-web/studies?limit=2",
        "request_headers": {"Accept": "application/dicom+json"},
        "request_body": "",
        "status": 200,
        "reason": "OK",
        "response_headers": {"Content-Type": "application/dicom+json"},
        "response_body": body,
        "error": None,
        "elapsed": 0.01,
    }


def check_name(rid: str, transaction: str) -> str:
    return f"test_{transaction}.py::test_{rid.lower().replace('-', '_')}"


def _verdict(r: catalog.Requirement, n: int) -> tuple[str, str | None]:
    """A verdict for the n-th judged requirement, and the reading chosen, if any."""
    if r.vendor:
        return "NOT-IMPLEMENTED", None
    if r.readings:
        return "INFO", r.readings[0].id
    if r.level == "MUST":
        return ("FAIL" if n % 6 == 0 else "PASS"), None
    if r.level == "SHOULD":
        return ("NON-STRICT" if n % 3 == 0 else "PASS"), None
    return ("NOT-IMPLEMENTED" if n % 2 else "PASS"), None


def records(leave_out: Iterable[str] = (), gate: bool = False) -> list[dict[str, Any]]:
    """A check per requirement a check can judge, but those of the transactions left out. In a
    gate, a FAIL is expected, but for the first (now FAIL), the first PASS (now PASS, expected
    FAIL), the first INFO (its reading changed) and the last FAIL (a new check, no entry)."""
    left_out = set(leave_out)
    made: list[dict[str, Any]] = []
    judged = [r for r in catalog.default().values() if r.judged and not r.untested]
    for n, r in enumerate(judged):
        if r.transaction in left_out:
            continue
        verdict, reading = _verdict(r, n)
        failing = verdict not in ("PASS", "INFO")
        message = f"answered 404 with a {300 + n}-byte payload" if failing else ""
        if verdict == "INFO":
            message = f"reading {reading}: {r.readings[0].source}"
        made.append(
            {
                "check": check_name(r.id, r.transaction),
                "nodeid": "conformance/checks/" + check_name(r.id, r.transaction),
                "requirements": [r.id],
                "verdict": verdict,
                "expected": None,
                "expected_by": None,
                "expected_reason": None,
                "expected_reading": None,
                "message": message,
                "reading": reading,
                "evidence": [exchange()] if failing or verdict == "INFO" else [],
            }
        )
    if gate:
        _expect(made)
    return made


def _expect(made: list[dict[str, Any]]) -> None:
    """Entries of an expectations file written from an earlier run of the same server."""
    fails = [c for c in made if c["verdict"] == "FAIL"]
    for c in made:
        if c["verdict"] in ("FAIL", "NOT-IMPLEMENTED", "NON-STRICT"):
            # As conformance.expectations writes a reason from a message: sizes as "N-byte".
            reason = "answered 404 with a N-byte payload"
            c.update(expected=c["verdict"], expected_reason=reason)
    fails[0].update(expected="PASS", expected_reason=None)  # a regression
    fails[-1].update(expected=None, expected_reason=None)  # a new check no entry names
    passing = next(c for c in made if c["verdict"] == "PASS")
    passing.update(expected="FAIL", expected_reason="no Warning header is ever sent")  # fixed
    info = next(c for c in made if c["verdict"] == "INFO")
    info.update(expected="INFO", expected_reading="another-reading")
    for c in made:
        if c["expected"]:
            c["expected_by"] = f"sample.toml:{c['check']}"


def whole_run(
    *,
    leave_out: Iterable[str] = (),
    gate: bool = False,
    mode: str | None = None,
    server_name: str | None = "Orthanc 1.10.1 + DICOMweb plugin 1.7",
) -> dict[str, Any]:
    """A results.json of a run of every check (but the transactions left out)."""
    settings = {"expectations": EXPECTATIONS if gate else None, "mode": mode}
    run = {
        "base_url": "http://127.0.0.1:8042/dicom-web",
        "server": "(no Server header)",
        "server_name": server_name,
        "profile": "orthanc",
        "mode": mode,
        "capabilities": {},
        "run_id": "f9f7c3ea1006",
        "settings": settings,
        "started": 1_800_000_000.0,
        "ended": 1_800_000_016.0,
    }
    return results.build(
        run=run,
        catalog=catalog.default(),
        records=records(leave_out, gate),
        cleanup=None,
        unmatched=[],
    )
