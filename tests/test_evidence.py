"""Evidence and the gate's summary, as a person reads them (no server)."""

from __future__ import annotations

from typing import Any

from conformance import evidence, report

# As Orthanc writes it: one value per line.
PRETTY = (
    '[\n  {\n    "0020000D" : {\n      "vr" : "UI",\n      "Value" : [ "1.2" ]\n    }\n  },'
    "\n  {}\n]"
)


def test_json_one_value_per_line_becomes_one_result_per_line() -> None:
    assert evidence.compact_json(PRETTY) == '[\n{"0020000D":{"vr":"UI","Value":["1.2"]}},\n{}\n]'
    assert evidence.compact_json('{"a" : 1}') == '{"a":1}'
    assert evidence.compact_json("not json") is None
    assert evidence.compact_json('{"cut": [1, 2') is None  # an excerpt cut short stays as is


def test_a_long_body_is_cut_to_a_few_lines_saying_where_the_rest_is() -> None:
    body = "\n".join(f"line {n}" for n in range(20))
    shown = evidence.shown(body, lines=3)
    assert shown == "line 0\nline 1\nline 2\n… (17 more lines in results.json)"
    assert evidence.shown("short", lines=3) == "short"


def check(verdict: str, expected: str | None, **extra: Any) -> dict[str, Any]:
    by = "orthanc-1.13.toml:x" if expected else None
    return {"verdict": verdict, "expected": expected, "expected_by": by, **extra}


def test_the_gate_sums_up_what_changed_by_direction() -> None:
    checks = [
        check("FAIL", "PASS"),
        check("FAIL", "PASS"),
        check("PASS", "FAIL"),
        check("PASS", "PASS"),
        check("INFO", "INFO", reading="204", expected_reading="200-empty"),
        check("FAIL", None),  # a new check failing: no entry names it
    ]
    assert report.gate_summary(checks) == (
        "5 verdicts differ from orthanc-1.13.toml: 2 now FAIL, 1 now PASS, 1 reading changed, "
        "1 FAIL no entry names"
    )
    same = [check("PASS", "PASS"), check("FAIL", "FAIL")]
    assert (
        report.gate_summary(same) == "every verdict is the one orthanc-1.13.toml expects (2 checks)"
    )
    assert report.gate_summary([check("FAIL", None)]) is None  # no expectations: no gate
