"""Verdicts, profiles and expectations as a user meets them (pytester, no server needed).

Each test writes a few checks naming real catalog requirements, runs pytest on them and reads the
outcome, the JUnit properties and results.json. The base URL points nowhere: the pre-flight probe
only runs when the suite's own checks are targeted.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from paths import ORTHANC_EXPECTATIONS
from suiterun import WALKTHROUGH_ON_ORTHANC, RunSuite, valid

from conformance import catalog, expectations
from conformance.local.orthanc import LocalOrthanc

BASE = "--base-url=http://127.0.0.1:9/dicom-web"
CATALOG = catalog.default()
MUST = next(r.id for r in CATALOG.values() if r.level == "MUST" and not r.optional and r.judged)
SHOULD = next(r.id for r in CATALOG.values() if r.level == "SHOULD" and r.judged and not r.vendor)
# A rule of an optional capability, the standard's own (a vendor's is judged under its profile).
OPTIONAL = next(
    r for r in CATALOG.values() if r.optional and r.judged and r.level == "MUST" and not r.vendor
)
CAPABILITY = OPTIONAL.capability
MAY = next(r.id for r in CATALOG.values() if r.level == "MAY" and r.judged)
WITH_READINGS = next(r for r in CATALOG.values() if r.readings and r.judged and not r.vendor)
VENDORS = next(r for r in CATALOG.values() if r.vendor and r.judged and r.level == "MUST")
WITHDRAWN = next(r.id for r in CATALOG.values() if r.withdrawn)
DELETE = OPTIONAL.id  # the capability-absent check below

CHECKS = f'''
import pytest
from conformance import expect

@pytest.mark.requirement("{MUST}")
def test_passes():
    assert 1 + 1 == 2

@pytest.mark.requirement("{MUST}")
def test_must_broken():
    assert 1 + 1 == 3, "the server broke a MUST"

@pytest.mark.requirement("{SHOULD}")
def test_should_broken():
    assert False, "the server broke a SHOULD"

@pytest.mark.requirement("{MUST}")
def test_informational():
    expect.info("the server answered 200 with an empty array")

@pytest.mark.requirement("{MUST}")
def test_suite_bug():
    raise ValueError("a bug in the suite, not in the server")

@pytest.mark.requirement("{DELETE}")
def test_capability_absent():
    expect.not_implemented("no DELETE: it answered 405")
'''


def run(pytester: pytest.Pytester, *args: str, checks: str = CHECKS) -> tuple[Any, dict[str, Any]]:
    pytester.makepyfile(test_checks=checks)
    results = pytester.path / "results.json"
    outcome = pytester.runpytest_subprocess(
        BASE, f"--dicomweb-results={results}", "-p", "no:cacheprovider", "-rA", *args
    )
    data = valid(json.loads(results.read_text())) if results.exists() else {}
    return outcome, data


def verdicts(data: dict[str, Any]) -> dict[str, str]:
    return {c["check"].split("::")[1]: c["verdict"] for c in data["checks"]}


TYPED = f'''
import pytest
from conformance import expect

@pytest.mark.requirement("{MUST}")
def test_precondition_missed():
    expect.precondition(False, "the study could not be stored")

@pytest.mark.requirement("{MUST}")
def test_failure_quoting_a_precondition():
    assert False, "precondition failed: the words of a FAIL"

@pytest.mark.requirement("{MUST}")
def test_skip_saying_not_implemented():
    pytest.skip("NOT-IMPLEMENTED: a plain skip, whatever it says")
'''


def test_verdicts_are_decided_by_type_never_by_message_text(pytester: pytest.Pytester) -> None:
    _, data = run(pytester, checks=TYPED)
    assert verdicts(data) == {
        "test_precondition_missed": "ERROR",
        "test_failure_quoting_a_precondition": "FAIL",
        "test_skip_saying_not_implemented": "DISABLED",
    }


def test_each_outcome_gets_its_verdict_and_pytest_outcome(pytester: pytest.Pytester) -> None:
    result, data = run(pytester)
    assert verdicts(data) == {
        "test_passes": "PASS",
        "test_must_broken": "FAIL",
        "test_should_broken": "NON-STRICT",
        "test_informational": "INFO",
        "test_suite_bug": "ERROR",
        "test_capability_absent": "NOT-IMPLEMENTED",
    }
    result.assert_outcomes(passed=2, failed=2, xfailed=1, skipped=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    text = result.stdout.str()
    assert "NON-STRICT: the server broke a SHOULD" in text
    assert "1 PASS, 1 FAIL, 1 NON-STRICT, 1 NOT-IMPLEMENTED, 1 INFO, 1 ERROR" in text
    info = next(c for c in data["checks"] if c["check"].endswith("test_informational"))
    assert info["message"] == "the server answered 200 with an empty array"


def test_strict_makes_a_broken_should_a_failure(pytester: pytest.Pytester) -> None:
    result, data = run(pytester, "--dicomweb-strict", "-k", "should")
    assert verdicts(data) == {"test_should_broken": "NON-STRICT"}
    result.assert_outcomes(failed=1)


def test_verdicts_and_requirements_are_junit_properties(pytester: pytest.Pytester) -> None:
    junit = pytester.path / "junit.xml"
    run(pytester, f"--junitxml={junit}")
    props = {
        case.attrib["name"]: {p.attrib["name"]: p.attrib["value"] for p in case.iter("property")}
        for case in ET.parse(junit).getroot().iter("testcase")
    }
    assert props["test_must_broken"]["verdict"] == "FAIL"
    assert props["test_must_broken"]["requirements"] == MUST
    assert props["test_should_broken"]["verdict"] == "NON-STRICT"
    assert props["test_capability_absent"]["verdict"] == "NOT-IMPLEMENTED"


def test_results_json_gives_each_requirement_the_worst_verdict(pytester: pytest.Pytester) -> None:
    _, data = run(pytester)
    by_id = {r["id"]: r for r in data["requirements"]}
    assert by_id[MUST]["verdict"] == "ERROR"  # worst of PASS, FAIL, INFO, ERROR
    assert by_id[SHOULD]["verdict"] == "NON-STRICT"
    assert by_id[DELETE]["verdict"] == "NOT-IMPLEMENTED"
    assert len(by_id) == len(CATALOG)  # every requirement is listed, run or not
    assert data["profile"] == "standard"
    assert data["settings"]["base_url"] == "http://127.0.0.1:9/dicom-web"


def _profile(tmp: Path, supported: bool) -> Path:
    path = tmp / "vendor.toml"
    path.write_text(
        'name = "vendor"\nextends = "standard"\n[capabilities]\n'
        f'{CAPABILITY} = {{ supported = {str(supported).lower()}, source = "vendor manual 4.2" }}\n'
    )
    return path


def test_a_capability_the_profile_promises_but_lacks_is_a_fail(pytester: pytest.Pytester) -> None:
    profile = _profile(pytester.path, supported=True)
    result, data = run(pytester, f"--dicomweb-profile={profile}", "-k", "capability")
    assert verdicts(data) == {"test_capability_absent": "FAIL"}
    result.assert_outcomes(failed=1)
    assert f"profile vendor declares {CAPABILITY} (vendor manual 4.2)" in result.stdout.str()


def test_an_absent_capability_a_check_only_uses_is_never_its_fail(
    pytester: pytest.Pytester,
) -> None:
    """A check of a MUST without a capability of its own, judged on a service that is one (an
    authentication check on frames): its absence is NOT-IMPLEMENTED, and where the profile
    promises that capability ERROR (the check cannot judge its rule), never a FAIL of a rule
    that is not about the capability."""
    checks = f"""
import pytest
from conformance import expect

@pytest.mark.requirement("{MUST}")
def test_on_a_service_absent():
    expect.not_implemented("no such service: it answered 404", capability="{CAPABILITY}")
"""
    _, plain = run(pytester, checks=checks)
    assert verdicts(plain) == {"test_on_a_service_absent": "NOT-IMPLEMENTED"}
    profile = _profile(pytester.path, supported=True)
    result, promised = run(pytester, f"--dicomweb-profile={profile}", checks=checks)
    assert verdicts(promised) == {"test_on_a_service_absent": "ERROR"}
    assert f"profile vendor declares {CAPABILITY} (vendor manual 4.2), so the check cannot" in (
        result.stdout.str()
    )


def test_a_capability_the_profile_denies_is_not_asked_for(pytester: pytest.Pytester) -> None:
    checks = f"""
import pytest

@pytest.mark.requirement("{DELETE}")
def test_would_ask():
    raise RuntimeError("must not run: the profile says there is no such capability")
"""
    profile = _profile(pytester.path, supported=False)
    result, data = run(pytester, f"--dicomweb-profile={profile}", checks=checks)
    assert verdicts(data) == {"test_would_ask": "NOT-IMPLEMENTED"}
    result.assert_outcomes(skipped=1)
    assert f"profile vendor declares no {CAPABILITY} (vendor manual 4.2)" in result.stdout.str()


JUDGING = f'''
import pytest
from conformance import expect

@pytest.mark.requirement("{MAY}")
def test_may_not_done():
    assert False, "the server does not do what it may"

@pytest.mark.requirement("{WITH_READINGS.id}")
def test_chose_a_reading():
    expect.chose("{WITH_READINGS.readings[-1].id}")

@pytest.mark.requirement("{WITH_READINGS.id}")
def test_chose_a_reading_and_broke_the_rule():
    expect.chose("{WITH_READINGS.readings[0].id}")
    assert False, "the answer fits that reading's status, but carries a payload"

@pytest.mark.requirement("{MUST}")
def test_chose_an_unlisted_reading():
    expect.chose("nowhere")

@pytest.mark.requirement("{VENDORS.id}")
def test_vendor_rule_broken():
    assert False, "not as the vendor documents"
'''


def test_a_may_never_fails_and_readings_are_info_naming_them(pytester: pytest.Pytester) -> None:
    _, data = run(pytester, checks=JUDGING)
    assert verdicts(data) == {
        "test_may_not_done": "NOT-IMPLEMENTED",
        "test_chose_a_reading": "INFO",
        "test_chose_a_reading_and_broke_the_rule": "FAIL",
        "test_chose_an_unlisted_reading": "ERROR",
        "test_vendor_rule_broken": "NOT-IMPLEMENTED",  # the standard profile is no vendor's
    }
    checks = {c["check"].split("::")[1]: c for c in data["checks"]}
    assert checks["test_may_not_done"]["message"].startswith("not done, which the rule allows")
    chosen = WITH_READINGS.readings[-1]
    assert checks["test_chose_a_reading"]["reading"] == chosen.id
    assert checks["test_chose_a_reading"]["message"] == f"reading {chosen.id}: {chosen.source}"
    assert (
        "recorded reading nowhere, which none"
        in checks["test_chose_an_unlisted_reading"]["message"]
    )
    assert (
        f"is {VENDORS.vendor}'s documented extension"
        in checks["test_vendor_rule_broken"]["message"]
    )
    row = next(r for r in data["requirements"] if r["id"] == WITH_READINGS.id)
    assert row["readings"] and row["reading"] is not None


def test_a_vendors_rule_is_judged_under_its_vendors_profile(pytester: pytest.Pytester) -> None:
    profile = {"azure": "azure-v2"}[str(VENDORS.vendor)]
    _, data = run(pytester, f"--dicomweb-profile={profile}", "-k", "vendor", checks=JUDGING)
    assert verdicts(data) == {"test_vendor_rule_broken": "FAIL"}


def test_the_gate_fails_when_the_server_chooses_another_reading(
    pytester: pytest.Pytester,
) -> None:
    first, last = WITH_READINGS.readings[0].id, WITH_READINGS.readings[-1].id
    (pytester.path / "expect.toml").write_text(
        f'[expect]\n"test_checks.py::test_chose_a_reading" = {{ verdict = "INFO", '
        f'reading = "{first}" }}\n'
    )
    result, _ = run(
        pytester, f"--dicomweb-expectations={pytester.path / 'expect.toml'}", "-k",
        "test_chose_a_reading and not broke", checks=JUDGING,
    )  # fmt: skip
    result.assert_outcomes(failed=1)
    assert f"reading {last}, but expect.toml expects reading {first}" in result.stdout.str()


def test_a_check_naming_a_withdrawn_requirement_is_a_usage_error(
    pytester: pytest.Pytester,
) -> None:
    checks = f"""
import pytest

@pytest.mark.requirement("{WITHDRAWN}")
def test_x():
    assert True
"""
    result, _ = run(pytester, checks=checks)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"names {WITHDRAWN}, which is no rule a server can be judged by" in result.stderr.str()


def test_disabled_capability_skips_its_checks(pytester: pytest.Pytester) -> None:
    result, data = run(pytester, f"--dicomweb-disable={CAPABILITY}", "-k", "capability")
    assert verdicts(data) == {"test_capability_absent": "DISABLED"}
    result.assert_outcomes(skipped=1)


def test_unknown_disabled_capability_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result, _ = run(pytester, "--dicomweb-disable=teleport")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown capability teleport" in result.stderr.str()


def test_unknown_profile_names_the_shipped_ones(pytester: pytest.Pytester) -> None:
    result, _ = run(pytester, "--dicomweb-profile=nonesuch")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "unknown profile 'nonesuch': shipped profiles are" in result.stderr.str()
    assert "azure-v2" in result.stderr.str()


def test_a_check_naming_an_unknown_requirement_is_a_usage_error(
    pytester: pytest.Pytester,
) -> None:
    checks = """
import pytest

@pytest.mark.requirement("NO-SUCH-RULE")
def test_x():
    assert True
"""
    result, _ = run(pytester, checks=checks)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "names unknown requirement(s) NO-SUCH-RULE" in result.stderr.str()


def test_expected_verdicts_keep_the_gate_green(pytester: pytest.Pytester) -> None:
    """Every deviation listed with its verdict: exit 0, and the verdicts themselves unchanged."""
    (pytester.path / "expect.toml").write_text(
        f"""
[expect]
"test_checks.py::test_must_broken" = {{ verdict = "FAIL", reason = "known: ticket 12" }}
"test_checks.py::test_suite_bug" = "ERROR"
"test_checks.py::test_should_broken" = "NON-STRICT"
"test_checks.py::test_informational" = "INFO"
"{MUST}" = "PASS"
"""
    )
    result, data = run(pytester, f"--dicomweb-expectations={pytester.path / 'expect.toml'}")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert verdicts(data)["test_must_broken"] == "FAIL"
    assert "expected FAIL (expect.toml): known: ticket 12" in result.stdout.str()
    assert data["unmatched_expectations"] == []


def test_a_verdict_that_differs_from_its_expectation_fails_both_ways(
    pytester: pytest.Pytester,
) -> None:
    (pytester.path / "expect.toml").write_text(
        """
[expect]
"test_checks.py::test_passes" = { verdict = "FAIL", reason = "was broken until 4.2" }
"test_checks.py::test_capability_absent" = "PASS"
"test_checks.py::test_nothing_here" = "FAIL"
"""
    )
    result, data = run(
        pytester,
        f"--dicomweb-expectations={pytester.path / 'expect.toml'}",
        "-k",
        "passes or capability",
    )
    result.assert_outcomes(failed=2)
    text = result.stdout.str()
    assert "verdict PASS, but expect.toml expects FAIL for test_checks.py::test_passes" in text
    assert "verdict NOT-IMPLEMENTED, but expect.toml expects PASS" in text
    assert "expectation test_checks.py::test_nothing_here matched no check" in text
    assert data["unmatched_expectations"] == ["test_checks.py::test_nothing_here"]


def test_expectations_written_from_results_reproduce_the_run(pytester: pytest.Pytester) -> None:
    _, data = run(pytester)
    results = pytester.path / "results.json"
    text = expectations.render(data)
    (pytester.path / "baseline.toml").write_text(text)
    loaded = expectations.load(pytester.path / "baseline.toml")
    assert {k.split("::")[1]: e.verdict for k, e in loaded.entries.items()} == verdicts(data)
    result, _ = run(pytester, f"--dicomweb-expectations={pytester.path / 'baseline.toml'}")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    assert results.exists()


def test_an_entry_for_a_check_split_off_its_module_follows_it() -> None:
    """test_qido.py's paging checks moved to test_qido_paging.py: a gate's expectations file
    written before still applies to them, under their new name; a name nowhere is refused."""
    table = {
        "test_qido.py::test_limit_caps_results": {"verdict": "FAIL", "reason": "known"},
        "test_qido.py::test_study_date_range[range]": "PASS",  # did not move
        "test_wado.py::test_bulkdata_part_has_content_location": "FAIL",
    }
    entries = expectations.parse_table(table, "gate.toml").entries
    assert sorted(entries) == [
        "test_qido.py::test_study_date_range[range]",
        "test_qido_paging.py::test_limit_caps_results",
        "test_wado_frames.py::test_bulkdata_part_has_content_location",
    ]
    assert entries["test_qido_paging.py::test_limit_caps_results"].reason == "known"
    with pytest.raises(expectations.ExpectationsError, match=r"test_qido\.py has no check"):
        expectations.parse_table({"test_qido.py::test_nowhere": "PASS"}, "gate.toml")


def test_rewriting_from_a_partial_run_keeps_the_checks_that_did_not_run_in_place() -> None:
    """scripts/record-expectations -k qido must not drop every other check's entry."""
    previous = expectations.parse_table(
        {
            "test_a.py::test_1": "PASS",
            "test_a.py::test_2": {"verdict": "FAIL", "reason": "known, ticket 7"},
            "test_a.py::test_3": "PASS",
        },
        "old.toml",
    )
    results = {
        "checks": [
            {"check": "test_a.py::test_1", "verdict": "FAIL", "message": "now broken"},
            {"check": "test_a.py::test_3", "verdict": "PASS", "message": ""},
            {"check": "test_a.py::test_4", "verdict": "PASS", "message": ""},
        ]
    }
    body = expectations.render(results, previous, "s").split("[expect]\n")[1].splitlines()
    assert body == [
        '"test_a.py::test_1" = { verdict = "FAIL", reason = "now broken" }',
        '"test_a.py::test_2" = { verdict = "FAIL", reason = "known, ticket 7" }',
        '"test_a.py::test_3" = "PASS"',
        '"test_a.py::test_4" = "PASS"',
    ]


def test_a_kept_reason_whose_answer_changed_is_listed_for_a_recheck() -> None:
    """On Orthanc 1.13 a 409 kept the verdict of 1.10 and its reason ("no Content-Type"), while
    1.13 sends two Content-Type lines: the reason had become a false claim."""
    previous = expectations.parse_table(
        {
            "test_a.py::test_1": {"verdict": "FAIL", "reason": "the 409 has no Content-Type"},
            "test_a.py::test_2": {"verdict": "FAIL", "reason": "answers 400"},
            "test_a.py::test_3": {"verdict": "FAIL", "reason": "answers 400"},
        },
        "old.toml",
    )
    results = {
        "checks": [
            {"check": "test_a.py::test_1", "verdict": "FAIL", "message": "two Content-Type lines"},
            {"check": "test_a.py::test_2", "verdict": "FAIL", "message": "answers 400"},
            {"check": "test_a.py::test_3", "verdict": "PASS", "message": ""},
        ]
    }
    assert expectations.reasons_to_recheck(results, previous) == [
        ("test_a.py::test_1", "the 409 has no Content-Type", "two Content-Type lines")
    ]


def test_verdicts_are_collected_from_xdist_workers(pytester: pytest.Pytester) -> None:
    result, data = run(pytester, "-n", "2")
    assert len(data["checks"]) == 6
    assert verdicts(data)["test_should_broken"] == "NON-STRICT"
    result.assert_outcomes(passed=2, failed=2, xfailed=1, skipped=1)


def test_the_html_report_has_verdict_and_requirement_columns(pytester: pytest.Pytester) -> None:
    report = pytester.path / "report.html"
    run(pytester, f"--html={report}", "--self-contained-html")
    text = report.read_text()
    assert "<th>Verdict</th>" in text and "<th>Requirements</th>" in text
    for verdict in ("PASS", "FAIL", "NON-STRICT", "NOT-IMPLEMENTED", "INFO", "ERROR"):
        assert f"&lt;td&gt;{verdict}&lt;/td&gt;" in text, verdict
    assert f"&lt;td&gt;{MUST}&lt;/td&gt;" in text


def test_a_failure_shows_the_rule_and_what_broke_not_the_checks_source(
    pytester: pytest.Pytester,
) -> None:
    result, _ = run(pytester, "-k", "must_broken")
    text = result.stdout.str()
    title = CATALOG[MUST].title
    assert f"{MUST} {title} ({CATALOG[MUST].reference})" in text
    assert "AssertionError: the server broke a MUST" in text
    assert "def test_must_broken" not in text  # no source, no fixture reprs
    long, _ = run(pytester, "-k", "must_broken", "--tb=long")
    assert "def test_must_broken" in long.stdout.str()  # for whoever asks


def test_junit_keeps_an_expected_fails_evidence_and_the_requirements_verdicts(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    """Under an expectations file an expected FAIL is a skip in JUnit: its message and its
    exchanges stay there as properties, and the suite carries each requirement's verdict."""
    orthanc.purge()
    run = run_suite(
        orthanc.dicomweb_url,
        *WALKTHROUGH_ON_ORTHANC,
        f"--dicomweb-expectations={ORTHANC_EXPECTATIONS}",
    )
    assert run.ret == pytest.ExitCode.OK, run.stdout
    suite = ET.fromstring(run.junit).find("testsuite")
    assert suite is not None
    props = {str(p.get("name")): str(p.get("value")) for p in suite.iter("property")}
    assert props["conformance"] == (  # -k walkthrough: a partial run, and its line says so
        "PARTIAL (209 requirements not run): "
        "1 of 11 tested MUST requirements fail, from 1 distinct fault"
    )
    assert props["requirement ARTICLE-STORE-ONE"] == "PASS"
    # Orthanc's 400 to Accept: application/dicom is neither 406 nor the default media type.
    assert props["requirement ARTICLE-RETRIEVE-INSTANCE-UNSUPPORTED-MEDIA-TYPE"] == "FAIL"
    assert props["requirement ARTICLE-RETRIEVE-INSTANCE-SINGLE-PART"] == "NOT-IMPLEMENTED"
    case = next(
        c for c in suite.iter("testcase") if "accept=application/dicom]" in str(c.get("name"))
    )
    mine = {str(p.get("name")): str(p.get("value")) for p in case.iter("property")}
    assert mine["verdict"] == "FAIL" and mine["expected"] == "FAIL"
    assert "expected HTTP 200 or 406, got 400" in mine["message"]
    assert "> GET " in mine["evidence"] and "< 400 " in mine["evidence"]
