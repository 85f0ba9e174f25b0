"""Checks that only read: a study already on the server, answered the same way by every resource.

These run in every mode. In a read-only run (``--dicomweb-read-only``) they read the studies the
user names with ``--dicomweb-studies``, which the suite knows nothing else about; otherwise they
read the study the run stored. So they compare answers with each other, never with stored bytes:
the instances a study retrieve sends are the ones a search lists, each part carries the study's
UIDs, and each series retrieve sends exactly the instances of its series.
"""

from __future__ import annotations

import pytest

from conformance import expect
from conformance.client import Client
from conformance.dicomweb import (
    ACCEPT_DICOM_ANY_TS,
    SERIES_UID,
    SOP_UID,
    json_array,
    search,
    uids,
)


def _searched(dicomweb: Client, path: str, tag: str) -> list[str]:
    response = search(dicomweb, path)
    expect.status(response, 200, 204)
    found = uids(json_array(response), tag)
    assert None not in found, f"GET {path}: a result has no {tag}"
    return found


def _retrieved(dicomweb: Client, path: str) -> list[tuple[str, str, str]]:
    """(StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID) of each part of a retrieve."""
    response = dicomweb.get(path, headers={"Accept": ACCEPT_DICOM_ANY_TS}, stream=True)
    expect.status(response, 200)
    return [
        (str(ds.get("StudyInstanceUID")), str(ds.get("SeriesInstanceUID")), str(ds.SOPInstanceUID))
        for ds in expect.iter_dicom_parts(dicomweb, response)
    ]


def _listed(dicomweb: Client, study_uid: str) -> dict[str, list[str]]:
    """Series UID -> the SOP Instance UIDs searches list in it (hierarchical resources only,
    which every server has). A study lists no more series than it has instances."""
    series = _searched(dicomweb, f"studies/{study_uid}/series", SERIES_UID)
    found = {
        uid: _searched(dicomweb, f"studies/{study_uid}/series/{uid}/instances", SOP_UID)
        for uid in series[:1000]
    }
    count = sum(len(sops) for sops in found.values())
    assert len(series) <= max(count, 1), (
        f"study {study_uid}: {len(series)} series listed for {count} instances"
    )
    # Nothing listed leaves nothing to compare: never a vacuous pass. (The run stored the study,
    # or the user named it as one the server has.)
    expect.precondition(count > 0, f"searches list no instance of study {study_uid}")
    return found


@pytest.mark.requirement("WADO-STUDY-ALL-INSTANCES", "QIDO-RESOURCE-STUDY-SERIES-INSTANCES")
def test_a_study_retrieve_sends_the_instances_searches_list(
    dicomweb: Client, readable_studies: list[str]
) -> None:
    for study_uid in readable_studies:
        listed = sorted(sop for sops in _listed(dicomweb, study_uid).values() for sop in sops)
        sent = _retrieved(dicomweb, f"studies/{study_uid}")
        assert sorted(sop for _, _, sop in sent) == listed, (
            f"study {study_uid}: the retrieve sends instances {sorted(s for *_, s in sent)}, "
            f"searches list {listed}"
        )
        others = {study for study, _, _ in sent} - {study_uid}
        assert not others, f"study {study_uid}: the retrieve sends parts of studies {others}"


@pytest.mark.requirement("WADO-SERIES-ONLY-ITS-INSTANCES", "QIDO-RESOURCE-STUDY-SERIES")
def test_each_series_retrieve_sends_the_instances_searches_list_in_it(
    dicomweb: Client, readable_studies: list[str]
) -> None:
    for study_uid in readable_studies:
        for series_uid, listed in _listed(dicomweb, study_uid).items():
            sent = _retrieved(dicomweb, f"studies/{study_uid}/series/{series_uid}")
            wrong = sorted({s for _, s, _ in sent} - {series_uid})
            assert not wrong, f"series {series_uid}: the retrieve sends parts of series {wrong}"
            assert sorted(sop for _, _, sop in sent) == sorted(listed), (
                f"series {series_uid}: the retrieve sends {sorted(s for *_, s in sent)}, a "
                f"search lists {sorted(listed)}"
            )
