"""Never delete what is not ours: studies of someone else, seeded where the suite could reach them,
are intact after runs that delete, whatever UIDs they carry.

- A DELETE-capable server (the Azure stand-in) holds a study at a UID a check of "what is not
  there" once deleted: the checks now delete only UIDs this run minted.
- Orthanc holds another patient's study under the very StudyInstanceUID the suite derives for a
  run id: the cleanup deletes the run's own study of that UID, leaves the other one, and says so.
- A run id that already has data on the server is refused before any check; --dicomweb-purge lists
  and removes, by the run's marker, what an earlier run left, and nothing else.
"""

from __future__ import annotations

import io

import pydicom
import requests
from azurestandin import AzureStandIn
from suiterun import RunSuite

from conformance import samples
from conformance.client import Client
from conformance.dicomweb import stow
from conformance.local.orthanc import LocalOrthanc
from conformance.samples import Instance, SampleStudy

SOMEONE = "SOMEONE-ELSE"


def belonging_to(study: SampleStudy, patient_id: str, study_uid: str | None = None) -> SampleStudy:
    """The study as another patient's: its PatientID (and, if given, its StudyInstanceUID)."""
    instances = []
    for instance in study:
        ds = pydicom.dcmread(io.BytesIO(instance.data))
        ds.PatientID = patient_id
        if study_uid:
            ds.StudyInstanceUID = study_uid
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        instances.append(Instance(instance.name, buffer.getvalue()))
    return SampleStudy(tuple(instances))


def studies_of(orthanc: LocalOrthanc, patient_id: str) -> list[str]:
    studies = requests.get(f"{orthanc.url}/studies?expand", timeout=10).json()
    return sorted(
        s["MainDicomTags"]["StudyInstanceUID"]
        for s in studies
        if s["PatientMainDicomTags"].get("PatientID") == patient_id
    )


def test_checks_of_what_is_not_there_delete_nothing_of_anyone(
    azure_standin: AzureStandIn, run_suite: RunSuite
) -> None:
    orthanc = azure_standin.orthanc
    orthanc.purge()
    azure_standin.reset()
    theirs = belonging_to(samples.fresh_copy(samples.load(), "x", "theirs"), SOMEONE, "2.25.1")
    assert stow(Client(orthanc.dicomweb_url), theirs).status_code == 200
    run = run_suite(
        azure_standin.base_url("v2"),
        "-k",
        "delete_of_what_is_not_there",
        "--dicomweb-profile=azure-v2",
    )
    # PASS, or INFO naming the reading of a deleted instance's answer (404 or 410).
    assert set(run.verdicts.values()) <= {"PASS", "INFO"} and len(run.verdicts) == 4, run.stdout
    assert studies_of(orthanc, SOMEONE) == ["2.25.1"]


def test_cleanup_leaves_another_patients_study_with_the_runs_uid_and_says_so(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    orthanc.purge()
    ours = samples.fresh_copy(samples.load(), "collide01", "main/stored")  # what the run derives
    theirs = belonging_to(ours, SOMEONE)
    assert stow(Client(orthanc.dicomweb_url), theirs).status_code == 200
    run = run_suite(orthanc.dicomweb_url, "-k", "walkthrough", "--dicomweb-run-id=collide01")
    assert studies_of(orthanc, SOMEONE) == [ours.study_uid], run.stdout
    assert studies_of(orthanc, "DWC-collide01") == [], run.stdout
    assert ours.study_uid in run.results["cleanup"]["foreign"], run.results["cleanup"]
    assert f"not this run's, left alone: study {ours.study_uid}" in run.stdout
    orthanc.purge()


def test_a_reused_run_id_is_refused_and_purge_removes_only_its_leftovers(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    orthanc.purge()
    theirs = belonging_to(samples.fresh_copy(samples.load(), "x", "theirs"), SOMEONE)
    assert stow(Client(orthanc.dicomweb_url), theirs).status_code == 200
    first = run_suite(
        orthanc.dicomweb_url,
        "-k",
        "walkthrough",
        "--dicomweb-run-id=reused01",
        "--dicomweb-cleanup=none",
    )
    left = studies_of(orthanc, "DWC-reused01")
    assert left, first.stdout

    again = run_suite(orthanc.dicomweb_url, "-k", "walkthrough", "--dicomweb-run-id=reused01")
    assert again.ret == 4 and again.verdicts == {}, again.stdout
    assert "run id reused01 already has" in again.stdout

    listed = run_suite(orthanc.dicomweb_url, "--dicomweb-purge=list", "--dicomweb-run-id=reused01")
    assert listed.ret == 0, listed.stdout
    assert all(uid in listed.stdout for uid in left) and theirs.study_uid not in listed.stdout
    assert studies_of(orthanc, "DWC-reused01") == left

    purged = run_suite(
        orthanc.dicomweb_url, "--dicomweb-purge=delete", "--dicomweb-run-id=reused01"
    )
    assert purged.ret == 0, purged.stdout
    assert f"removed {len(left)}" in purged.stdout
    assert studies_of(orthanc, "DWC-reused01") == []
    assert studies_of(orthanc, SOMEONE) == [theirs.study_uid]
    orthanc.purge()
