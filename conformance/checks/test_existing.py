"""Checks that only read: a study already on the server, answered the same way by every resource.

These run in every mode. In a read-only run (``--dicomweb-read-only``) they read the studies the
user names with ``--dicomweb-studies``, which the suite knows nothing else about; otherwise they
read the study the run stored. So they compare answers with each other, never with stored bytes:
a study retrieve sends every instance searches list, each part carries the study's UIDs, and
each series retrieve sends exactly the instances of its series. They judge the retrieves only
(WADO-RS): where a retrieve and a search disagree, the instance's own retrieve says which is
wrong, and a search that lists too little is for the search checks to find.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

import pytest
from pydicom.dataset import Dataset

from conformance import expect
from conformance.client import Client
from conformance.dicomweb import (
    SERIES_UID,
    SOP_UID,
    ProtocolError,
    retrieve,
    search,
    search_results,
    uids,
)
from conformance.verdicts import disabled

# A study or series listing more instances than this is not retrieved whole: a production study
# can hold thousands of instances and gigabytes (the read budget stops the run well before; this
# keeps one large study from spending it). The checks then judge what is small enough, and say
# what they left.
WHOLE_BOUND = 100


def _small(listed: dict[str, list[str]]) -> bool:
    return sum(len(sops) for sops in listed.values()) <= WHOLE_BOUND


def _judged_some(judged: int, left: list[str]) -> None:
    """After the loop: nothing small enough to read whole leaves the check unjudged."""
    if left and not judged:
        disabled(f"not retrieved whole, each lists more than {WHOLE_BOUND} instances: {left}")


def _searched(dicomweb: Client, path: str, tag: str) -> list[str]:
    """What a search lists: the oracle these checks compare retrieves with. A search that
    fails leaves them unjudged (ERROR); the search checks judge it."""
    response = search(dicomweb, path)
    expect.answered(response, 200, 204)
    try:
        found = uids(search_results(response), tag)
    except ProtocolError as exc:
        raise expect.PreconditionFailed(f"GET {path}: {exc}") from None
    expect.precondition(None not in found, f"GET {path}: a result has no {tag}")
    return found


def _tried(dicomweb: Client, path: str) -> tuple[list[str], Exception | None]:
    """An instance search's SOP Instance UIDs, or the error it raised, for the caller to raise in
    the order the searches were asked."""
    try:
        return _searched(dicomweb, path, SOP_UID), None
    except Exception as exc:
        return [], exc


def _status(dicomweb: Client, path: str) -> int:
    """The status of a retrieve, its body left unread."""
    response = retrieve(dicomweb, path)
    response.close()
    return response.status_code


def _sent(parts: Iterable[Dataset]) -> list[tuple[str, str, str]]:
    """(StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID) of each part of a retrieve."""
    return [
        (str(ds.get("StudyInstanceUID")), str(ds.get("SeriesInstanceUID")), str(ds.SOPInstanceUID))
        for ds in parts
    ]


def _listed(dicomweb: Client, study_uid: str) -> dict[str, list[str]]:
    """Series UID -> the SOP Instance UIDs searches list in it (hierarchical resources only,
    which every server has). A study lists no more series than it has instances. The searches
    stop once the study is too large to read whole."""
    series = _searched(dicomweb, f"studies/{study_uid}/series", SERIES_UID)
    found: dict[str, list[str]] = {}
    # The series' searches depend on no other answer: asked at once (Client.each), a pool's
    # worth at a time, so that a large study is not searched whole. Their answers are taken in
    # order, as one after another: the same series kept, the same error raised, whatever the
    # concurrency (a search past the stop is asked, never judged).
    step = dicomweb.concurrency
    for start in range(0, len(series), step):
        chunk = series[start : start + step]
        answers = dicomweb.each(
            partial(_tried, dicomweb, f"studies/{study_uid}/series/{uid}/instances")
            for uid in chunk
        )
        for uid, (sops, error) in zip(chunk, answers, strict=True):
            if error is not None:
                raise error
            found[uid] = sops
            if not _small(found):
                return found  # too large to read whole: the series so far, for the series check
    count = sum(len(sops) for sops in found.values())
    expect.precondition(
        len(series) <= max(count, 1),
        f"study {study_uid}: searches list {len(series)} series for {count} instances",
    )
    # Nothing listed leaves nothing to compare: never a vacuous pass. (The run stored the study,
    # or the user named it as one the server has.)
    expect.precondition(count > 0, f"searches list no instance of study {study_uid}")
    return found


def _left_out(
    dicomweb: Client, study_uid: str, listed: dict[str, list[str]], sent: set[str]
) -> list[str]:
    """The instances searches list that a retrieve did not send and that the server retrieves
    on their own: those the retrieve left out. A search and a retrieve that disagree could each
    be wrong; the instance's own retrieve decides. One the server does not retrieve on its own
    either leaves the retrieve unjudged (the search may list what is not there)."""
    left_out: list[str] = []
    unknown: list[str] = []
    asked = [(series, sop) for series, sops in listed.items() for sop in sorted(set(sops) - sent)]
    # Each instance's own retrieve depends on no other answer: asked at once (Client.each).
    statuses = dicomweb.each(
        partial(_status, dicomweb, f"studies/{study_uid}/series/{series}/instances/{sop}")
        for series, sop in asked
    )
    for (_, sop), status in zip(asked, statuses, strict=True):
        (left_out if status == 200 else unknown).append(sop)
    expect.precondition(
        not unknown,
        f"searches list instances {unknown} that no retrieve sends, not even their own: the "
        f"searches and the retrieves disagree on what study {study_uid} holds",
    )
    return left_out


def _sent_once(sent: list[tuple[str, str, str]], what: str) -> set[str]:
    sops = [sop for _, _, sop in sent]
    twice = sorted({sop for sop in sops if sops.count(sop) > 1})
    assert not twice, f"{what}: the retrieve sends instances {twice} more than once"
    return set(sops)


@pytest.mark.requirement("WADO-STUDY-ALL-INSTANCES")
def test_a_study_retrieve_sends_the_instances_searches_list(
    dicomweb: Client, readable_studies: list[str]
) -> None:
    """The retrieve is judged, the searches are the oracle: an instance they list that the
    study retrieve leaves out fails only if the server retrieves it on its own. Instances sent
    but not listed are the searches' fault (judged by the QIDO checks), not the retrieve's."""
    judged, left = 0, []
    for study_uid in readable_studies:
        listed = _listed(dicomweb, study_uid)
        if not _small(listed):
            left.append(f"study {study_uid}")
            continue
        judged += 1
        sent = _sent(expect.retrieved(dicomweb, f"studies/{study_uid}"))
        others = {study for study, _, _ in sent} - {study_uid}
        assert not others, f"study {study_uid}: the retrieve sends parts of studies {others}"
        left_out = _left_out(dicomweb, study_uid, listed, _sent_once(sent, f"study {study_uid}"))
        assert not left_out, (
            f"study {study_uid}: the retrieve leaves out instances {left_out}, which searches "
            "list and the server retrieves on their own"
        )
    _judged_some(judged, left)


@pytest.mark.requirement("WADO-SERIES-ONLY-ITS-INSTANCES")
def test_each_series_retrieve_sends_the_instances_searches_list_in_it(
    dicomweb: Client, readable_studies: list[str]
) -> None:
    """As for the study: only the retrieve is judged (the searches are QIDO's checks')."""
    judged, left = 0, []
    for study_uid in readable_studies:
        listed = _listed(dicomweb, study_uid)
        for series_uid, sops in listed.items():
            if not _small({series_uid: sops}):
                left.append(f"series {series_uid}")
                continue
            judged += 1
            sent = _sent(expect.retrieved(dicomweb, f"studies/{study_uid}/series/{series_uid}"))
            wrong = sorted({s for _, s, _ in sent} - {series_uid})
            assert not wrong, f"series {series_uid}: the retrieve sends parts of series {wrong}"
            others = sorted({study for study, _, _ in sent} - {study_uid})
            assert not others, f"series {series_uid}: the retrieve sends parts of studies {others}"
            once = _sent_once(sent, f"series {series_uid}")
            left_out = _left_out(dicomweb, study_uid, {series_uid: sops}, once)
            assert not left_out, (
                f"series {series_uid}: the retrieve leaves out instances {left_out}, which a "
                "search lists in it and the server retrieves on their own"
            )
    _judged_some(judged, left)
