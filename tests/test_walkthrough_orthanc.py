"""The walkthrough against a real Orthanc: the outcome of every step, serial and in parallel, and
the faults it must catch when a proxy breaks one rule at a time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import proof
import pytest
import requests
from faultproxy import FaultProxy
from faults.walkthrough import (
    INSTANCE_MULTIPART,
    INSTANCE_SINGLE_PART,
    SEARCHES,
    STORES,
    WALKTHROUGH,
)
from suiterun import RunSuite

from conformance import samples
from conformance.client import Client
from conformance.dicomweb import stow
from conformance.local.orthanc import LocalOrthanc

THIS = "test_walkthrough_orthanc.py"
WALKTHROUGH_FAULTS = proof.faults(THIS)

# What Orthanc 1.10 with DICOMweb plugin 1.7 does with each step of the article.
ORTHANC_OUTCOMES = {
    "test_changefeed_answers_200": "skipped",  # Azure's rule, outside an Azure profile
    **dict.fromkeys(STORES, "passed"),
    # Azure's rule: NOT-IMPLEMENTED outside an Azure profile (and Orthanc answers 415).
    "test_single_part_store_of_stored_instance_conflicts": "skipped",
    "test_study_retrieve_returns_the_three_instances": "passed",
    "test_series_retrieve_returns_only_that_series": "passed",
    # Orthanc answers 400 to Accept: application/dicom, where the standard's answers are the
    # default media type or 406; and it has no single-part retrieve (NOT-IMPLEMENTED).
    "test_instance_retrieve_returns_red_triangle[accept=application/dicom]": "failed",
    INSTANCE_SINGLE_PART: "skipped",
    INSTANCE_MULTIPART: "passed",
    **{
        f"test_metadata_describes_each_instance[{level}]": "passed"
        for level in ("study", "series", "instance")
    },
    "test_frame_1_of_red_triangle_is_its_pixel_data": "passed",
    **{f"test_search_finds_exactly_the_one_by_uid[{s}]": "passed" for s in SEARCHES},
    **{  # Azure's rule: NOT-IMPLEMENTED outside an Azure profile (and Orthanc answers 405)
        f"test_delete_removes_exactly_its_target[{target}]": "skipped"
        for target in ("instance", "series", "study")
    },
}


def orthanc_study_uids(orthanc: LocalOrthanc) -> set[str]:
    studies = requests.get(f"{orthanc.url}/studies?expand", timeout=10).json()
    return {s["MainDicomTags"]["StudyInstanceUID"] for s in studies}


@pytest.fixture
def other_users_study(orthanc: LocalOrthanc) -> Iterator[str]:
    """A study someone else stored: searches must not find it, cleanup must not touch it."""
    orthanc.purge()
    study = samples.fresh_copy(samples.load(), "someone-else", "theirs")
    assert stow(Client(orthanc.dicomweb_url), study).status_code == 200
    yield study.study_uid
    orthanc.purge()


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist-2"])
def test_walkthrough_outcome_of_every_step_on_orthanc(
    orthanc: LocalOrthanc, other_users_study: str, run_suite: RunSuite, workers: list[str]
) -> None:
    run = run_suite(orthanc.dicomweb_url, "-k", "walkthrough", *workers)
    assert run.outcomes == ORTHANC_OUTCOMES, run.stdout
    assert run.ret == pytest.ExitCode.TESTS_FAILED  # the one real deviation above
    # Azure's extensions are judged under an Azure profile only, and say so.
    assert "NOT-IMPLEMENTED: AZ-CHANGEFEED-LIST is azure's documented extension" in run.stdout
    # Cleanup removed everything this run stored, and nothing else.
    assert orthanc_study_uids(orthanc) == {other_users_study}
    assert "dicomweb cleanup" in run.stdout and "left on the server" not in run.stdout


def test_workers_share_the_studies_the_read_only_checks_read(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    """Under -n 2 the sample and synthetic studies the retrieve checks read are stored once,
    by whichever worker needs them first, and read by both (left in place here, they are two);
    the controller deletes them after both workers have finished (none is left)."""
    for cleanup, left in (("none", 2), ("auto", 0)):
        orthanc.purge()
        run = run_suite(
            orthanc.dicomweb_url,
            "-n",
            "2",
            "-v",  # every check's line names its worker, not only a failure's section
            f"--dicomweb-cleanup={cleanup}",
            checks=["test_wado.py"],
        )
        # xdist's load scheduling hands each worker a first batch of the retrieve checks.
        workers = {line[:4] for line in run.stdout.splitlines() if line.startswith("[gw")}
        assert workers == {"[gw0", "[gw1"}, run.stdout  # both workers ran retrieve checks
        # test_wado.py stores nothing but through stored_study and stored_synthetic.
        assert len(orthanc_study_uids(orthanc)) == left, run.stdout
    assert "left on the server" not in run.stdout


def test_failed_check_shows_the_request_and_the_response(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    run = run_suite(orthanc.dicomweb_url, "-k", "instance_retrieve and application/dicom]")
    assert run.outcomes == {
        "test_instance_retrieve_returns_red_triangle[accept=application/dicom]": "failed"
    }
    assert "> Accept: application/dicom; transfer-syntax=*" in run.stdout
    assert "< 400 Bad Request" in run.stdout
    assert "cannot generate the following content type" in run.stdout  # Orthanc's own words
    assert "dicomweb exchanges" in run.junit  # the evidence reaches JUnit XML too


def test_cleanup_none_reports_what_it_left(orthanc: LocalOrthanc, run_suite: RunSuite) -> None:
    orthanc.purge()
    run = run_suite(
        orthanc.dicomweb_url,
        "-k",
        "store_one_instance",
        "--dicomweb-cleanup=none",
        checks=[WALKTHROUGH],
    )
    assert run.outcomes == {"test_store_one_instance_multipart": "passed"}
    left = orthanc_study_uids(orthanc)
    assert len(left) == 1
    assert f"left on the server: study {left.pop()} — cleanup is off" in run.stdout
    orthanc.purge()


def test_article_uids_run_stores_the_articles_own_study(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    orthanc.purge()
    run = run_suite(
        orthanc.dicomweb_url,
        "-k",
        "store or retrieve or search",
        "--dicomweb-article-uids",
        checks=[WALKTHROUGH],
    )
    assert run.named("failed") == {
        "test_instance_retrieve_returns_red_triangle[accept=application/dicom]"
    }, run.stdout
    assert run.named("skipped") == {
        "test_single_part_store_of_stored_instance_conflicts",
        INSTANCE_SINGLE_PART,
    }
    assert len(run.named("passed")) == 12, run.stdout
    assert orthanc_study_uids(orthanc) == set()  # the article's study was removed again


# --- faults: every one must make the walkthrough fail -------------------------------------------


@pytest.mark.parametrize("fault", sorted(WALKTHROUGH_FAULTS))
def test_walkthrough_catches_fault(
    orthanc: LocalOrthanc, other_users_study: str, run_suite: RunSuite, fault: str
) -> None:
    with FaultProxy(orthanc.url, fault) as proxy:
        run = run_suite(f"{proxy.url}/dicom-web", "-k", "walkthrough")
    baseline_failures = {n for n, o in ORTHANC_OUTCOMES.items() if o == "failed"}
    caught = run.named("failed") - baseline_failures
    must = {c.removeprefix(f"{WALKTHROUGH}::") for c in WALKTHROUGH_FAULTS[fault].checks}
    assert must <= caught, run.stdout
    assert run.ret == pytest.ExitCode.TESTS_FAILED


def test_fault_proxy_without_fault_changes_nothing(
    orthanc: LocalOrthanc, other_users_study: str, run_suite: RunSuite
) -> None:
    """The proxy itself is transparent: the same outcomes as a direct run."""
    with FaultProxy(orthanc.url) as proxy:
        run = run_suite(f"{proxy.url}/dicom-web", "-k", "walkthrough")
    assert run.outcomes == ORTHANC_OUTCOMES, run.stdout


def test_users_own_copies_of_the_samples_are_used(
    orthanc: LocalOrthanc, run_suite: RunSuite, tmp_path: Path
) -> None:
    """--dicomweb-samples DIR: the run stores copies of the user's files, not ours."""
    orthanc.purge()
    mine = tmp_path / "mine"
    mine.mkdir()
    for instance in samples.load():
        ds = instance.dataset
        ds.ImageComments = f"{ds.ImageComments} (user copy)"
        ds.save_as(mine / f"{instance.name}.dcm", enforce_file_format=True)
    run = run_suite(
        orthanc.dicomweb_url,
        "-k",
        "store_one_instance",
        f"--dicomweb-samples={mine}",
        "--dicomweb-cleanup=none",
        checks=[WALKTHROUGH],
    )
    assert run.outcomes == {"test_store_one_instance_multipart": "passed"}, run.stdout
    stored = requests.get(f"{orthanc.url}/instances?expand", timeout=10).json()
    comments = requests.get(
        f"{orthanc.url}/instances/{stored[0]['ID']}/content/0020-4000", timeout=10
    ).text
    assert comments.strip("\0 ") == "Fake DICOM - Blue Circle (user copy)"
    orthanc.purge()
