"""A read-only run (--dicomweb-read-only) sends no POST, PUT, PATCH or DELETE: shown by a proxy
that records every method on the wire, over the whole catalog. It reads the studies the user
names (those the server has; with auto:N the most recent), and says which checks it could not
run. The DICOM JSON shape checks judge the held study's documents as they judge the run's own
in a writing run: the same verdicts on Orthanc, and the same FAIL through a faulty proxy. So do
the search and retrieve checks that ask their questions of "the data" (study_data): a sample of
the held study in place of the run's stored one."""

from __future__ import annotations

import proof
import pytest
from faultproxy import FaultProxy
from hostileproxy import HostileProxy
from paths import ORTHANC_EXPECTATIONS
from suiterun import RunSuite, SuiteRun

from conformance import expectations, samples
from conformance.checks.test_existing import WHOLE_BOUND
from conformance.client import Client
from conformance.dicomweb import stow
from conformance.local.orthanc import LocalOrthanc
from conformance.synthetic import generated_instance

READING = [
    "test_existing.py::test_a_study_retrieve_sends_the_instances_searches_list",
    "test_existing.py::test_each_series_retrieve_sends_the_instances_searches_list_in_it",
]
# The DICOM JSON documents a read-only run reads from the held study; the synthetic study's
# metadata and a store response are the run's own, so their checks stay DISABLED.
HELD_DOCUMENTS = ("study-metadata", "studies-search", "instances-search")
KEYS_IN_ORDER = "test_json.py::test_attributes_are_in_ascending_tag_order"
# The checks that read "the data" (fixture study_data), and their cases that need the run's
# synthetic study all the same (DISABLED in a read-only run).
STUDY_DATA_CHECKS = (
    "test_qido_attributes.py::test_includefield_list_adds_every_attribute",
    "test_qido_attributes.py::test_study_result_has_required_attributes",
    "test_qido_attributes.py::test_result_has_retrieve_url",
    "test_qido_attributes.py::test_series_result_has_required_attributes",
    "test_qido_attributes.py::test_series_counts_its_instances",
    "test_qido_attributes.py::test_instance_result_has_required_attributes",
    "test_qido_attributes.py::test_relational_result_has_upper_level_attributes",
    "test_wado.py::test_unsupported_transfer_syntax_answers_406_or_the_default",
    "test_wado.py::test_multipart_type_wildcard_gets_the_default_or_406",
    "test_wado.py::test_multipart_without_type_gets_default_or_406",
    "test_wado.py::test_retrieve_without_accept_answers_406",
    "test_wado.py::test_unacceptable_media_type_answers_406_or_the_default",
    "test_wado.py::test_single_part_instance_retrieve",
    "test_wado.py::test_what_is_not_there_is_never_a_success",
    "test_wado.py::test_retrieve_of_what_is_not_there_answers_404",
    "test_wado.py::test_metadata_of_what_is_not_there_answers_404",
    "test_wado.py::test_malformed_uid_answers_a_client_error",
    "test_wado.py::test_instance_retrieve_returns_that_instance_intact[red-triangle]",
)
NEEDS_THE_SYNTHETIC = ("[series-under-another-study]",)


def json_checks(run: SuiteRun) -> tuple[dict[str, str], dict[str, str]]:
    """The verdicts of test_json.py's checks: of the held documents, and of the others."""
    ours = {c: v for c, v in run.verdicts.items() if c.startswith("test_json.py::")}
    held = {c: v for c, v in ours.items() if any(f"[{k}]" in c for k in HELD_DOCUMENTS)}
    return held, {c: v for c, v in ours.items() if c not in held}


def study_data_checks(run: SuiteRun) -> tuple[dict[str, str], dict[str, str]]:
    """The verdicts of the checks that read "the data": the cases a held study answers, and
    those that need the run's synthetic study."""
    ours = {
        c: v
        for c, v in run.verdicts.items()
        if c in STUDY_DATA_CHECKS or c.split("[")[0] in STUDY_DATA_CHECKS
    }
    held = {c: v for c, v in ours.items() if not c.endswith(NEEDS_THE_SYNTHETIC)}
    return held, {c: v for c, v in ours.items() if c not in held}


def read_only_disabled(run: SuiteRun) -> list[str]:
    """The checks a read-only run did not run because they need to write."""
    return [
        c["check"]
        for c in run.results["checks"]
        if c["verdict"] == "DISABLED" and "read-only" in c["message"]
    ]


def stored_directly(orthanc: LocalOrthanc) -> str:
    """The article's study of "somebody", stored straight into Orthanc: data no run stored."""
    orthanc.purge()
    existing = samples.fresh_copy(samples.load(), "somebody", "existing")
    assert stow(Client(orthanc.dicomweb_url), existing).status_code == 200
    return existing.study_uid


def test_a_read_only_run_only_reads_and_lists_what_it_could_not_run(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    existing = stored_directly(orthanc)
    with HostileProxy(orthanc.url) as proxy:
        run = run_suite(
            f"{proxy.url}/dicom-web",
            "--dicomweb-read-only",
            f"--dicomweb-studies={existing}",
            "--dicomweb-profile=orthanc",
        )
    assert proxy.methods <= {"GET", "HEAD", "OPTIONS"}, proxy.methods
    assert {check: run.verdicts.get(check) for check in READING} == dict.fromkeys(READING, "PASS")
    assert "ERROR" not in run.verdicts.values(), run.stdout
    entries = expectations.load(ORTHANC_EXPECTATIONS).entries
    # Every FAIL is one Orthanc's writing run has too (406 for a request without Accept, 400
    # for an Accept an instance has no representation for): known, not the read-only run's.
    failed = {c for c, v in run.verdicts.items() if v == "FAIL"}
    assert failed and all(entries[c].verdict == "FAIL" for c in failed), failed
    assert run.ret == pytest.ExitCode.TESTS_FAILED, run.stdout
    # The JSON shape checks of the held study's documents are judged, each as Orthanc's writing
    # run judges the same document of the run's own study; the others need the run's own.
    held, others = json_checks(run)
    assert len(held) == 36, sorted(held)
    assert held == {c: entries[c].verdict for c in held}, run.stdout
    # So are the search and retrieve checks of "the data", on a sample of the held study.
    data, needs_synthetic = study_data_checks(run)
    assert len(data) == 37, sorted(data)
    assert data == {c: entries[c].verdict for c in data}, run.stdout
    unrun = read_only_disabled(run)
    # The other JSON documents are the run's own (a store response) or a second study's: not
    # run, as needing a write or as what the held data lacks.
    assert others and set(others.values()) == {"DISABLED"}, others
    assert needs_synthetic and set(needs_synthetic) <= set(unrun), needs_synthetic
    # 249 need to write (of 481 check items): 398 before the JSON shape checks read the held
    # study, 362 before the search and retrieve checks of "the data" did, 326 before the rest.
    assert 0 < len(unrun) <= 249, len(unrun)
    judged = [v for v in run.verdicts.values() if v not in ("DISABLED", "NOT-IMPLEMENTED")]
    reading = run.results["reading"]
    assert reading["read_only"] and reading["studies"] == [existing]
    assert reading["instances_sampled"] == 3 and not reading["partial"]
    # Every request through the proxy is counted; the BulkDataURIs Orthanc writes lead around
    # it, straight to Orthanc (counted, not seen).
    assert 0 < len(proxy.seen) <= reading["requests"], (reading, len(proxy.seen))
    assert (
        f"read-only run on 1 study (3 instances sampled): {len(judged)} checks judged; "
        f"{len(unrun)} checks need to write and were not run"
    ) in run.stdout
    assert f"read {reading['requests']:,} requests and " in run.stdout
    assert run.results["cleanup"] is None
    # What was there is there, and nothing else.
    stored = Client(orthanc.dicomweb_url).get(f"studies/{existing}/metadata")
    assert stored.status_code == 200 and len(stored.json()) == 3
    orthanc.purge()


def dated_study(client: Client, label: str, date: str) -> str:
    """A one-instance study of "somebody" with its Study Date: data the run never stored."""
    uid = samples.derive_uid("somebody", label, "study")
    instance = generated_instance(
        "somebody", uid, f"{uid}.1.1", None, [(0x00080020, "DA", date), (0x00080030, "TM", "1200")]
    )
    assert stow(client, [instance]).status_code == 200
    return uid


def test_a_named_study_the_server_lacks_is_one_line_and_the_run_goes_on(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    orthanc.purge()
    there = dated_study(Client(orthanc.dicomweb_url), "there", "20240101")
    absent = samples.derive_uid("somebody", "never stored", "study")
    run = run_suite(
        orthanc.dicomweb_url,
        "--dicomweb-read-only",
        f"--dicomweb-studies={there},{absent}",
        checks=READING,
    )
    orthanc.purge()
    assert run.stdout.count(f"dicomweb: study {absent} is not on the server: not read") == 1
    assert f"dicomweb: reading 1 study: {there}" in run.stdout
    assert {check: run.verdicts.get(check) for check in READING} == dict.fromkeys(READING, "PASS")


def test_none_of_the_named_studies_on_the_server_stops_the_run_before_any_check(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    orthanc.purge()
    absent = [samples.derive_uid("somebody", f"never stored {n}", "study") for n in (1, 2)]
    run = run_suite(
        orthanc.dicomweb_url, "--dicomweb-read-only", f"--dicomweb-studies={','.join(absent)}"
    )
    assert run.ret == pytest.ExitCode.USAGE_ERROR, run.stdout
    assert "none of the 2 studies named by --dicomweb-studies is on the server" in run.stdout
    assert run.verdicts == {} and run.outcomes == {}


def test_auto_reads_the_most_recent_studies_and_stops_on_an_empty_server(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    orthanc.purge()
    empty = run_suite(orthanc.dicomweb_url, "--dicomweb-read-only", "--dicomweb-studies=auto:2")
    assert empty.ret == pytest.ExitCode.USAGE_ERROR, empty.stdout
    assert "nothing to read: a search of studies lists none" in empty.stdout
    client = Client(orthanc.dicomweb_url)
    old, newest, newer = (
        dated_study(client, label, date)
        for label, date in (("old", "20190101"), ("newest", "20250101"), ("newer", "20240101"))
    )
    run = run_suite(
        orthanc.dicomweb_url, "--dicomweb-read-only", "--dicomweb-studies=auto:2", checks=READING
    )
    orthanc.purge()
    assert f"reading the 2 most recent studies a search lists: {newest}, {newer}" in run.stdout
    assert old not in run.stdout
    assert {check: run.verdicts.get(check) for check in READING} == dict.fromkeys(READING, "PASS")


def test_a_faulty_json_writer_is_caught_reading_what_the_server_holds(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    """A serializer that loses the tag order fails the order check in a read-only run, on the
    held study's documents, as it does on the run's own in a writing run."""
    fault = proof.faults()["json-keys-out-of-order"]
    checks = sorted(c for c in fault.checks if c.startswith(KEYS_IN_ORDER))
    existing = stored_directly(orthanc)
    with FaultProxy(orthanc.url, fault.name) as proxy:
        run = run_suite(
            f"{proxy.url}/dicom-web",
            "--dicomweb-read-only",
            f"--dicomweb-studies={existing}",
            checks=checks,
        )
    orthanc.purge()
    held = {f"{KEYS_IN_ORDER}[{kind}]" for kind in HELD_DOCUMENTS}
    assert held < set(checks), checks
    assert run.verdicts == {c: "FAIL" if c in held else "DISABLED" for c in checks}, run.stdout
    failed = {c["check"]: c["message"] for c in run.results["checks"] if c["check"] in held}
    assert all("out of ascending order" in m for m in failed.values()), failed
    assert "{held study}/metadata: " in failed[f"{KEYS_IN_ORDER}[study-metadata]"], failed


def test_a_search_that_drops_attributes_is_caught_on_a_sample_of_what_the_server_holds(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    """Series results without Series Number and Number of Series Related Instances fail the
    checks of "the data" in a read-only run, on the held study's sample (its two series, whole,
    so their counts are judged), as they fail on the run's own study in a writing run."""
    fault = proof.faults()["search-drops-series-attributes"]
    checks = sorted(c for c in fault.checks if c.split("[")[0] in STUDY_DATA_CHECKS)
    assert len(checks) == 2, fault.checks
    existing = stored_directly(orthanc)
    with FaultProxy(orthanc.url, fault.name) as proxy:
        run = run_suite(
            f"{proxy.url}/dicom-web",
            "--dicomweb-read-only",
            f"--dicomweb-studies={existing}",
            checks=checks,
        )
    orthanc.purge()
    assert run.verdicts == dict.fromkeys(checks, "FAIL"), run.stdout
    assert run.results["cleanup"] is None


def test_the_run_reads_no_more_than_its_budget_and_says_what_it_left(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    """Past --dicomweb-read-budget no request is sent: the checks left are DISABLED (never
    FAIL or ERROR), the summary says how many, and under -n 2 the controller and both workers
    together stay within the budget."""
    existing = stored_directly(orthanc)
    with HostileProxy(orthanc.url) as proxy:
        run = run_suite(
            f"{proxy.url}/dicom-web",
            "--dicomweb-read-only",
            f"--dicomweb-studies={existing}",
            "--dicomweb-read-budget=45,50MB",
            "-n",
            "2",
        )
    orthanc.purge()
    assert len(proxy.seen) <= 45, len(proxy.seen)
    assert len(proxy.seen) <= run.results["reading"]["requests"] <= 45
    assert run.results["reading"]["budget"] == "45 requests and 50.0 MB"
    spent = [c for c in run.results["checks"] if "read budget is spent" in c["message"]]
    assert spent and {c["verdict"] for c in spent} == {"DISABLED"}, spent
    assert f"{len(spent)} checks not run: the read budget was spent" in run.stdout
    # What was judged before the budget ran out was judged as without a budget.
    assert "ERROR" not in run.verdicts.values(), run.stdout


def test_a_study_too_large_to_read_whole_is_left_and_its_series_are_judged(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    """A held study listing more instances than test_existing.WHOLE_BOUND is not retrieved
    whole (DISABLED, saying so); its series, each small enough, are."""
    orthanc.purge()
    uid = samples.derive_uid("somebody", "large", "study")
    each = WHOLE_BOUND // 2 + 10
    instances = [
        generated_instance("somebody", uid, f"{uid}.{series}.{n}", None, [], series=series)
        for series in (1, 2)
        for n in range(1, each + 1)
    ]
    assert stow(Client(orthanc.dicomweb_url), instances).status_code == 200
    run = run_suite(
        orthanc.dicomweb_url, "--dicomweb-read-only", f"--dicomweb-studies={uid}", checks=READING
    )
    orthanc.purge()
    study, series = READING
    assert run.verdicts == {study: "DISABLED", series: "PASS"}, run.stdout
    message = next(c["message"] for c in run.results["checks"] if c["check"] == study)
    assert f"not retrieved whole, each lists more than {WHOLE_BOUND} instances" in message
