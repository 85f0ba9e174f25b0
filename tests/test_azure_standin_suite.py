"""The suite's Azure checks (test_azure.py and the article's Azure steps in test_walkthrough.py)
run against the Azure stand-in of tests/azurestandin.py, without a fault and with each fault.

These verdicts are of a stand-in, not of Azure: an Orthanc behind a small server that imitates
Azure's documented DELETE, change feed, single-part STOW, duplicate rule and metadata ETags. No
Azure DICOM service was asked anything. What the runs show is that the checks pass on behaviour
that follows Azure's documents (v2 and v1), and that every one of them catches at least one
plausible bug (a stand-in fault) with FAIL, NON-STRICT (a SHOULD, under --dicomweb-strict) or
ERROR. Where the rules allow two answers (a deleted resource: Azure's 404, PS3.18's 410), the
stand-in gives each in turn, and the checks record which.
"""

from __future__ import annotations

import proof
import pytest
from azurestandin import FAULTS, STAND_IN, AzureStandIn
from faultproxy import FaultProxy
from faults.azure import DELETE_404, DELETE_TARGET, FEED_WINDOW, SINGLE_PART_CONFLICT, A, P, W
from suiterun import RunSuite, SuiteRun

from conformance import catalog
from conformance.local.orthanc import LocalOrthanc

CHECKS = [
    "test_azure.py",
    "test_walkthrough.py",
    "test_properties_stateful.py::test_deletes_stores_and_searches_agree_with_the_model",
]
AZURE_CAPABILITIES = {"store-single-part", "delete", "changefeed", "changefeed-time-window", "etag"}
CAUGHT = {"FAIL", "NON-STRICT", "ERROR"}
PASSING = {"PASS", "INFO"}
THIS = "test_azure_standin_suite.py"
# The stand-in's faults (tests/faults/azure.py) -> the checks each must fail.
CATCHES = {name.removeprefix("stand-in: "): p.checks for name, p in proof.faults(THIS).items()}

# The checks that read what a deleted resource answers: INFO naming the reading of the answer.
GONE = [
    f"{DELETE_404}[deleted instance]",
    *(f"{DELETE_TARGET}[{target}]" for target in ("instance", "series", "study")),
]
# The other checks of the deletes' aftermath, which pass on either answer.
AFTER_DELETES = [
    f"{A}test_delete_ignores_accept_content_type_and_body",
    f"{A}test_an_instance_deleted_can_be_stored_again",
    f"{P}test_deletes_stores_and_searches_agree_with_the_model",
]
# A faultless run's verdicts other than PASS, with the reason: the stand-in's departures from
# Azure, and the readings its answers fit.
KNOWN_V2 = {
    f"{W}test_instance_retrieve_returns_red_triangle[accept=application/dicom]": (
        "FAIL",
        "Orthanc answers 400 to Accept: application/dicom; transfer-syntax=*, where PS3.18 allows "
        "the instance single-part, the default media type or 406 (the stand-in forwards "
        "retrieves to Orthanc unchanged)",
    ),
    f"{W}test_instance_retrieve_single_part_is_red_triangle": (
        "FAIL",
        "azure-v2 declares single-part-retrieve (Azure has it); the stand-in forwards the "
        "retrieve to Orthanc, which has not (400)",
    ),
    **dict.fromkeys(GONE, ("INFO", "reading 404-not-found: Azure's documented answer")),
}
KNOWN_V1 = {
    **KNOWN_V2,
    f"{A}test_changefeed_time_window_is_start_inclusive_end_exclusive": (
        "NOT-IMPLEMENTED",
        "the azure-v1 profile declares no changefeed-time-window: v1 pages by sequence number",
    ),
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


def readings(run: SuiteRun, checks: list[str]) -> dict[str, tuple[str, str | None]]:
    """Each check's verdict and the reading it recorded."""
    chosen = {c["check"]: (c["verdict"], c["reading"]) for c in run.results["checks"]}
    return {check: chosen.get(check, ("not run", None)) for check in checks}


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
    assert readings(run, GONE) == dict.fromkeys(GONE, ("INFO", "404-not-found"))
    assert run.results["profile"] == "azure-v2"


def test_v1_every_check_passes_but_the_known_ones_and_no_time_window(
    azure_standin: AzureStandIn, run_suite: RunSuite
) -> None:
    run = faultless_run(azure_standin, run_suite, "v1")
    assert_reports_name_the_standin(run)
    assert_all_pass_but(run, KNOWN_V1, azure_standin.base_url("v1"))
    assert run.verdicts[FEED_WINDOW] == "NOT-IMPLEMENTED"
    assert run.results["profile"] == "azure-v1"


def test_deleted_resources_answering_410_are_the_other_reading(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    """A server answering 410 for what it deleted (PS3.18 Table 8.5-1) passes every check that
    asks after a delete, and those that read the answer record 410-gone."""
    orthanc.purge()
    with AzureStandIn(orthanc, gone=410) as standin:
        run = run_suite(
            standin.base_url("v2"), "--dicomweb-profile=azure-v2", checks=GONE + AFTER_DELETES
        )
    assert readings(run, GONE) == dict.fromkeys(GONE, ("INFO", "410-gone")), run.stdout
    assert not run.verdicts_outside(AFTER_DELETES, {"PASS"}), run.stdout


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
    assert all(run.verdicts[check] in PASSING for check in caught), "a catch on a failing check"


def test_the_deletes_property_reads_every_level_after_a_change(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    """The deletes property looks at every level after its stores and deletes, counts and
    modalities included: a gateway in front of the stand-in that serves a study's counts as it
    first computed them (tests/faults/state.py) makes it fail, where it passes without."""
    deletes = f"{P}test_deletes_stores_and_searches_agree_with_the_model"
    verdicts = {}
    for fault in (None, "study-counts-computed-once"):
        orthanc.purge()
        with AzureStandIn(orthanc) as standin:
            root = standin.base_url("v2").removesuffix("/v2")
            with FaultProxy(root, fault, forwarded=True) as proxy:
                run = run_suite(f"{proxy.url}/v2", "--dicomweb-profile=azure-v2", checks=[deletes])
        verdicts[fault] = run.verdicts.get(deletes)
    assert verdicts == {None: "PASS", "study-counts-computed-once": "FAIL"}, run.stdout
