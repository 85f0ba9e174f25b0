"""The suite's Azure checks (test_azure.py and the article's Azure steps in test_walkthrough.py)
run against the Azure stand-in of tests/azurestandin.py, without a fault and with each fault.

These verdicts are of a stand-in, not of Azure: an Orthanc behind a small server that imitates
Azure's documented DELETE, change feed, single-part STOW, duplicate rule and metadata ETags. No
Azure DICOM service was asked anything. What the runs show is that the checks pass on behaviour
that follows Azure's documents (v2 and v1), and that every one of them catches at least one
plausible bug (a stand-in fault) with FAIL or ERROR.
"""

from __future__ import annotations

import pytest
from azurestandin import FAULTS, STAND_IN, AzureStandIn
from suiterun import RunSuite, SuiteRun

from conformance import catalog
from conformance.orthanc import LocalOrthanc

CHECKS = ["test_azure.py", "test_walkthrough.py"]
AZURE_CAPABILITIES = {"store-single-part", "delete", "changefeed", "changefeed-time-window", "etag"}
CAUGHT = {"FAIL", "ERROR"}
A, W = "test_azure.py::", "test_walkthrough.py::"

# A faultless run's verdicts other than PASS, with the reason: the stand-in's departures from Azure.
KNOWN_V2 = {
    f"{W}test_instance_retrieve_returns_red_triangle[accept=application/dicom]": (
        "FAIL",
        "Orthanc answers 400 to Accept: application/dicom; transfer-syntax=*, where PS3.18 8.7.8 "
        "asks for 406 (the stand-in forwards retrieves to Orthanc unchanged)",
    ),
}
KNOWN_V1 = {
    **KNOWN_V2,
    f"{A}test_changefeed_time_window_is_start_inclusive_end_exclusive": (
        "NOT-IMPLEMENTED",
        "the azure-v1 profile declares no changefeed-time-window: v1 pages by sequence number",
    ),
}

DELETE_404 = f"{A}test_delete_of_what_is_not_there_is_404"
NOT_THERE = ("unknown study", "unknown series", "unknown instance", "deleted instance")
DELETE_TARGET = f"{W}test_delete_removes_exactly_its_target"
DUPLICATE = f"{A}test_duplicate_store_conflicts_with_reason_45070"
SINGLE_PART_CONFLICT = f"{W}test_single_part_store_of_stored_instance_conflicts"
FEED_DELETES = f"{A}test_changefeed_records_deletes_and_marks_earlier_entries_deleted"
FEED_CREATES = f"{A}test_changefeed_has_a_create_entry_for_each_stored_instance"
FEED_LATEST = f"{A}test_changefeed_latest_is_one_complete_entry"
FEED_METADATA = f"{A}test_changefeed_metadata_only_when_asked"
FEED_PAGING = f"{A}test_changefeed_pages_neither_skip_nor_repeat"
FEED_WINDOW = f"{A}test_changefeed_time_window_is_start_inclusive_end_exclusive"
# The checks each fault must catch (FAIL or ERROR, under --dicomweb-strict, profile azure-v2).
CATCHES: dict[str, set[str]] = {
    "delete-keeps-data": {
        f"{DELETE_404}[deleted instance]",
        f"{A}test_delete_ignores_accept_content_type_and_body",
        f"{A}test_an_instance_deleted_can_be_stored_again",
        FEED_DELETES,  # the study's delete also names the instance "deleted" before it
        *(f"{DELETE_TARGET}[{target}]" for target in ("instance", "series", "study")),
    },
    "changefeed-misses-delete": {FEED_DELETES},
    "changefeed-paging-skips": {FEED_PAGING},
    "duplicate-accepted": {DUPLICATE, SINGLE_PART_CONFLICT},
    "single-part-ignored": {
        f"{A}test_single_part_store_stores_the_instance",
        DUPLICATE,  # a single-part duplicate is "stored" too: 200, not 409
        SINGLE_PART_CONFLICT,
    },
    "changefeed-wrong-uids": {FEED_CREATES},
    "changefeed-latest-stale": {FEED_LATEST},
    "changefeed-metadata-always": {FEED_METADATA},
    "changefeed-no-range-check": {
        f"{A}test_changefeed_rejects_out_of_range_paging[{param}]"
        for param in ("limit=0", "limit=max+1", "offset=-1")
    },
    "changefeed-window-end-inclusive": {FEED_WINDOW},
    "changefeed-object-not-array": {
        f"{W}test_changefeed_answers_200",
        FEED_CREATES,
        FEED_DELETES,
        FEED_LATEST,
        FEED_METADATA,
        FEED_PAGING,
        FEED_WINDOW,
    },
    "delete-unknown-204": {
        *(f"{DELETE_404}[{target}]" for target in NOT_THERE),
        # the target deleted, its second DELETE answers 204 where 404 is due
        *(f"{DELETE_TARGET}[{target}]" for target in ("instance", "series", "study")),
    },
    "delete-malformed-uid-404": {f"{A}test_delete_with_a_malformed_uid_is_400"},
    "etag-ignored": {f"{A}test_metadata_etag_answers_304_when_unchanged"},
}

_FAULTLESS: dict[str, SuiteRun] = {}  # version -> its run: tests a and d read the same v2 run


def faultless_run(standin: AzureStandIn, run_suite: RunSuite, version: str) -> SuiteRun:
    """Both check files on the faultless stand-in with the version's profile, once per session."""
    if version not in _FAULTLESS:
        standin.orthanc.purge()
        standin.reset()
        run = run_suite(
            standin.base_url(version), f"--dicomweb-profile=azure-{version}", checks=CHECKS
        )
        assert run.verdicts, run.stdout
        _FAULTLESS[version] = run
    return _FAULTLESS[version]


def azure_related(run: SuiteRun) -> set[str]:
    """The run's checks that test Azure's extensions: those of test_azure.py, and the others
    whose requirements belong to an Azure capability."""
    requirements = catalog.default()
    return {
        check["check"]
        for check in run.results["checks"]
        if check["check"].startswith(A)
        or requirements.capabilities(check["requirements"]) & AZURE_CAPABILITIES
    }


def assert_all_pass_but(run: SuiteRun, known: dict[str, tuple[str, str]], base: str) -> None:
    assert run.results["base_url"] == base
    not_as_known = {
        check: verdict
        for check, verdict in run.verdicts.items()
        if verdict != known.get(check, ("PASS", ""))[0]
    }
    assert not not_as_known, f"{not_as_known}\n{run.stdout}"
    assert set(known) <= set(run.verdicts), "a known verdict's check no longer exists"
    failing = any(verdict in CAUGHT for verdict, _ in known.values())
    assert run.ret == (pytest.ExitCode.TESTS_FAILED if failing else pytest.ExitCode.OK)


def assert_reports_name_the_standin(run: SuiteRun) -> None:
    """The run's reports say plainly that the server was the stand-in, not Azure."""
    assert run.results["server"] == STAND_IN
    assert f"server: {STAND_IN}" in run.stdout
    assert "not Azure" in STAND_IN


def test_v2_every_check_passes_but_the_known_ones(
    azure_standin: AzureStandIn, run_suite: RunSuite
) -> None:
    run = faultless_run(azure_standin, run_suite, "v2")
    assert_reports_name_the_standin(run)
    assert_all_pass_but(run, KNOWN_V2, azure_standin.base_url("v2"))
    assert run.results["profile"] == "azure-v2"


def test_v1_every_check_passes_but_the_known_ones_and_no_time_window(
    azure_standin: AzureStandIn, run_suite: RunSuite
) -> None:
    run = faultless_run(azure_standin, run_suite, "v1")
    assert_reports_name_the_standin(run)
    assert_all_pass_but(run, KNOWN_V1, azure_standin.base_url("v1"))
    assert run.verdicts[FEED_WINDOW] == "NOT-IMPLEMENTED"
    assert run.results["profile"] == "azure-v1"


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_is_caught_by_its_checks(
    orthanc: LocalOrthanc, run_suite: RunSuite, fault: str
) -> None:
    orthanc.purge()
    with AzureStandIn(orthanc, fault) as standin:
        run = run_suite(
            standin.base_url("v2"),
            "--dicomweb-profile=azure-v2",
            "--dicomweb-strict",
            checks=sorted(CATCHES[fault]),
        )
    missed = run.verdicts_outside(CATCHES[fault], CAUGHT)
    assert not missed, f"{fault} not caught by: {missed}\n{run.stdout}"


def test_every_azure_check_catches_some_fault(
    azure_standin: AzureStandIn, run_suite: RunSuite
) -> None:
    assert set(CATCHES) == set(FAULTS)
    run = faultless_run(azure_standin, run_suite, "v2")
    related = azure_related(run)
    assert {name for name in related if name.startswith(W)} == {
        "test_walkthrough.py::test_changefeed_answers_200",
        SINGLE_PART_CONFLICT,
        *(f"{DELETE_TARGET}[{target}]" for target in ("instance", "series", "study")),
    }
    caught = set().union(*CATCHES.values())
    assert caught <= related, f"not Azure checks, or no checks at all: {caught - related}"
    assert not related - caught, f"no fault catches {sorted(related - caught)}"
    assert all(run.verdicts[check] == "PASS" for check in caught), "a catch on a failing check"
