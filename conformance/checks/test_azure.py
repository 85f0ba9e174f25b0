"""The Azure DICOM service's extensions: single-part STOW, duplicates, DELETE, the change feed and
metadata ETags (conformance/requirements/azure.toml).

None of this is DICOM PS3.18: a server without an extension gets NOT-IMPLEMENTED, detected from the
answer HTTP gives for a missing resource or method, unless its profile promises the extension.
Microsoft's documents bind Microsoft's service: these checks are judged under an Azure profile only.
Vendor facts the checks need (the change feed's limits, v1's sequence offsets) come from the
profile's parameters; the defaults are Azure v2's documented values.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

import pytest
import requests

from conformance import expect
from conformance.client import Client
from conformance.dicomweb import (
    ACCEPT_DICOM_ANY_TS,
    DICOM_JSON,
    SOP_UID,
    failures,
    first_value,
    instance_path,
    json_body,
    referenced_sop_uids,
    store_module,
    stow,
    stow_single,
)
from conformance.profiles import Profile
from conformance.run.fixtures import NewStudy
from conformance.samples import SampleStudy

JSON = "application/json"
DUPLICATE = 45070  # 0xB00E: "already stored"
# UIDs outside the documented format ("between 1 and 64 characters long, and only contain alpha
# numeric characters or the following special characters: ., -"); "1..2" is inside it.
MALFORMED_UIDS = {"bad character": "1.2_3", "65 characters": "1." + "2" * 63}
ENTRY_FIELDS = {
    "Sequence",
    "StudyInstanceUid",
    "SeriesInstanceUid",
    "SopInstanceUid",
    "Action",
    "Timestamp",
    "State",
}


# --- single-part STOW and duplicates ------------------------------------------------------------


def _single_part_or_skip(response: requests.Response) -> None:
    if response.status_code == 415 or response.status_code in expect.ROUTE_ABSENT:
        expect.not_implemented(
            f"no single-part application/dicom STOW: it answered {response.status_code}"
        )


@pytest.mark.requirement("AZ-STOW-SINGLE-PART")
def test_single_part_store_stores_the_instance(dicomweb: Client, new_study: NewStudy) -> None:
    study = new_study()
    response = stow_single(dicomweb, study.blue)
    _single_part_or_skip(response)
    expect.status(response, 200)
    assert referenced_sop_uids(store_module(response)) == [study.blue.sop_uid], (
        "the store response does not reference exactly the instance sent"
    )
    expect.stored_and_retrievable(dicomweb, [study.blue])


@pytest.mark.requirement("AZ-STOW-DUPLICATE-CONFLICT")
def test_duplicate_store_conflicts_with_reason_45070(dicomweb: Client, new_study: NewStudy) -> None:
    study = new_study()
    expect.answered(stow(dicomweb, [study.blue]), 200)
    response = stow_single(dicomweb, study.blue)
    _single_part_or_skip(response)
    expect.status(response, 409)
    reasons = failures(store_module(response))
    assert reasons == {study.blue.sop_uid: DUPLICATE}, (
        f"FailedSOPSequence gives {reasons}, expected {{{study.blue.sop_uid}: {DUPLICATE}}}"
    )
    expect.stored_and_retrievable(dicomweb, [study.blue])


# --- DELETE ---------------------------------------------------------------------------------------


def _series_path(study: SampleStudy) -> str:
    return f"studies/{study.study_uid}/series/{study.red.series_uid}"


def _gone(response: requests.Response, what: str) -> None:
    """What was deleted answers 404 (the article: "never existed or are already deleted") or
    410 (PS3.18 Table 8.5-1, where the server knows of the deletion)."""
    expect.status(response, 404, 410, why=f"{what} was deleted")


def _deletable_study(dicomweb: Client, new_study: NewStudy) -> SampleStudy:
    """A stored study, once DELETE is known to exist: it deletes the study's blue-circle."""
    study = new_study()
    expect.answered(stow(dicomweb, list(study)), 200)
    response = dicomweb.delete(instance_path(study.blue))
    gone = dicomweb.get(instance_path(study.blue), headers={"Accept": ACCEPT_DICOM_ANY_TS})
    if response.status_code in (405, 501) or (response.status_code == 404 and gone.ok):
        expect.not_implemented(f"no DELETE: it answered {response.status_code}")
    expect.answered(response, 204)
    return study


@pytest.mark.parametrize(
    "target", ["unknown study", "unknown series", "unknown instance", "deleted instance"]
)
@pytest.mark.requirement("AZ-DELETE-GONE-404")
def test_delete_of_what_is_not_there_is_404(
    dicomweb: Client, new_study: NewStudy, absent_uid: str, target: str
) -> None:
    study = _deletable_study(dicomweb, new_study)
    # A UID this run minted and never stored: a DELETE of it can hit no one's data.
    path = {
        "unknown study": f"studies/{absent_uid}",
        "unknown series": f"studies/{study.study_uid}/series/{absent_uid}",
        "unknown instance": f"{_series_path(study)}/instances/{absent_uid}",
        "deleted instance": instance_path(study.blue),
    }[target]
    response = dicomweb.delete(path)
    if target == "deleted instance":
        _gone(response, "the instance")
        expect.chose("404-not-found" if response.status_code == 404 else "410-gone")
    else:  # never stored: there is nothing a server could know was deleted
        expect.status(response, 404, why="the UID was never stored")
    expect.stored_and_retrievable(dicomweb, [study.red, study.green])


@pytest.mark.parametrize("probe", list(MALFORMED_UIDS))
@pytest.mark.requirement("AZ-DELETE-MALFORMED-UID-400")
def test_delete_with_a_malformed_uid_is_400(
    dicomweb: Client, new_study: NewStudy, probe: str
) -> None:
    study = _deletable_study(dicomweb, new_study)
    uid = MALFORMED_UIDS[probe]
    response = dicomweb.delete(f"{_series_path(study)}/instances/{uid}")
    expect.status(response, 400, why=f"{uid!r} is outside the documented UID format")
    expect.stored_and_retrievable(dicomweb, [study.red, study.green])


@pytest.mark.requirement("AZ-DELETE-ANY-HEADERS")
def test_delete_ignores_accept_content_type_and_body(dicomweb: Client, new_study: NewStudy) -> None:
    study = _deletable_study(dicomweb, new_study)
    response = dicomweb.delete(
        instance_path(study.red),
        headers={"Accept": "anything/at+all", "Content-Type": "text/plain"},
        body=b"please ignore me",
    )
    expect.status(response, 204)
    # Proof that it was deleted; which of 404 and 410 is AZ-DELETE-GONE-404's to record.
    _gone(dicomweb.get(instance_path(study.red)), "the instance")
    expect.stored_and_retrievable(dicomweb, [study.green])


@pytest.mark.requirement("AZ-DELETE-THEN-STORE-AGAIN")
def test_an_instance_deleted_can_be_stored_again(dicomweb: Client, new_study: NewStudy) -> None:
    study = _deletable_study(dicomweb, new_study)
    response = stow(dicomweb, [study.blue])
    expect.status(response, 200, why="the instance was deleted: storing it is no conflict")
    expect.stored_and_retrievable(dicomweb, [study.blue])


# --- the change feed ----------------------------------------------------------------------------


def _feed(dicomweb: Client, path: str = "changefeed", **params: Any) -> requests.Response:
    query = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in params.items()]
    return dicomweb.get(path, query=query, headers={"Accept": JSON})


def _entries(response: requests.Response) -> list[dict[str, Any]]:
    expect.status(response, 200)
    body = json_body(response)
    assert isinstance(body, list) and all(isinstance(e, dict) for e in body), (
        "the change feed is not a JSON array of entry objects"
    )
    return body


def _timestamp(text: object) -> datetime:
    """An ISO 8601 UTC timestamp; .NET writes 7 fractional digits, Python reads at most 6."""
    match = re.fullmatch(r"(.+?T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", str(text))
    assert match, f"{text!r} is not an ISO 8601 timestamp"
    fraction = (match.group(2) or ".0")[:7]
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    return datetime.fromisoformat(f"{match.group(1)}{fraction}{zone}")


class Feed:
    """The part of the change feed written after a starting point, found without scanning the
    whole feed (a production feed holds millions of entries): v2 filters by the server's own
    timestamp of the latest entry, v1 by its sequence number (``changefeed-offset``)."""

    def __init__(self, dicomweb: Client, profile: Profile) -> None:
        self.dicomweb = dicomweb
        self.limit = int(profile.parameter("changefeed-max-limit", 200))
        self.by_sequence = profile.parameter("changefeed-offset", "count") == "sequence"
        response = _feed(dicomweb, "changefeed/latest")
        if (
            response.status_code in expect.ROUTE_ABSENT
            and _feed(dicomweb, limit=1).status_code in expect.ROUTE_ABSENT
        ):
            expect.not_implemented(f"no change feed: it answered {response.status_code}")
        latest = json_body(response) if response.status_code == 200 else {}
        self.start = latest if isinstance(latest, dict) else {}

    def window(self) -> dict[str, Any]:
        if self.by_sequence:
            return {"offset": self.start.get("Sequence", 0)}
        return {"startTime": self.start["Timestamp"]} if "Timestamp" in self.start else {}

    def since_start(self, page: int | None = None, **params: Any) -> list[dict[str, Any]]:
        """Every entry after the starting point, paged with ``page`` entries per request."""
        limit = page or self.limit
        found: list[dict[str, Any]] = []
        base = self.window()
        if self.by_sequence:
            # v1: limit bounds a range of sequence numbers, which may have gaps, so a short page
            # is not the end: read up to the latest sequence number there is now.
            latest = json_body(_feed(self.dicomweb, "changefeed/latest"))
            end = latest.get("Sequence", 0) if isinstance(latest, dict) else 0
            offset = base.get("offset", 0)
            while offset < end and len(found) <= 10_000:
                batch = _entries(_feed(self.dicomweb, offset=offset, limit=limit, **params))
                found += batch
                offset = batch[-1]["Sequence"] if batch else offset + limit
        else:
            found = self.counted(limit, **base, **params)
        start = self.start.get("Sequence", 0)
        return [e for e in found if e.get("Sequence", 0) > start]

    def counted(self, limit: int, **params: Any) -> list[dict[str, Any]]:
        """Every entry a v2 query gives, read in pages of ``limit`` (offset counts entries)."""
        found: list[dict[str, Any]] = []
        while len(found) <= 10_000:
            batch = _entries(_feed(self.dicomweb, **params, offset=len(found), limit=limit))
            found += batch
            if len(batch) < limit:
                break
        return found


def _ours(entries: list[dict[str, Any]], study: SampleStudy) -> list[dict[str, Any]]:
    return [e for e in entries if e.get("StudyInstanceUid") == study.study_uid]


@pytest.fixture
def feed(dicomweb: Client, dicomweb_profile: Profile) -> Feed:
    """The change feed from now on (NOT-IMPLEMENTED when the server has none)."""
    return Feed(dicomweb, dicomweb_profile)


@pytest.mark.requirement("AZ-CHANGEFEED-CREATE-ENTRIES")
def test_changefeed_has_a_create_entry_for_each_stored_instance(
    dicomweb: Client, new_study: NewStudy, feed: Feed
) -> None:
    study = new_study()
    expect.answered(stow(dicomweb, list(study)), 200)
    ours = _ours(feed.since_start(), study)
    got = sorted(
        (e.get("SeriesInstanceUid"), e.get("SopInstanceUid"), e.get("Action")) for e in ours
    )
    assert got == sorted((i.series_uid, i.sop_uid, "create") for i in study), (
        f"the feed's entries for the study are {got}"
    )
    sequences = [e["Sequence"] for e in ours]
    assert all(isinstance(s, int) for s in sequences) and sequences == sorted(set(sequences)), (
        f"Sequence numbers are not strictly increasing: {sequences}"
    )
    assert {e.get("State") for e in ours} == {"current"}, "a new instance's State is not current"


@pytest.mark.requirement("AZ-CHANGEFEED-DELETE-ENTRIES")
def test_changefeed_records_deletes_and_marks_earlier_entries_deleted(
    dicomweb: Client, new_study: NewStudy, feed: Feed
) -> None:
    study = _deletable_study(dicomweb, new_study)
    expect.answered(dicomweb.delete(f"studies/{study.study_uid}"), 204)
    ours = _ours(feed.since_start(), study)
    deletes = sorted(str(e.get("SopInstanceUid")) for e in ours if e.get("Action") == "delete")
    assert deletes == sorted(study.sop_uids), f"delete entries name {deletes}"
    creates = [e for e in ours if e.get("Action") == "create"]
    assert {e.get("State") for e in creates} == {"deleted"}, (
        f"create entries of deleted instances have States {[e.get('State') for e in creates]}"
    )


@pytest.mark.requirement("AZ-CHANGEFEED-LATEST")
def test_changefeed_latest_is_one_complete_entry(
    dicomweb: Client, new_study: NewStudy, feed: Feed
) -> None:
    study = new_study()
    expect.answered(stow(dicomweb, list(study)), 200)
    ours = _ours(feed.since_start(), study)
    latest = json_body(_feed(dicomweb, "changefeed/latest"))
    assert isinstance(latest, dict), "changefeed/latest is not a JSON object"
    missing = ENTRY_FIELDS - set(latest)
    assert not missing, f"the latest entry lacks {sorted(missing)}"
    assert ours and latest["Sequence"] >= max(e["Sequence"] for e in ours), (
        "the latest entry is older than this run's last store"
    )


@pytest.mark.requirement("AZ-CHANGEFEED-INCLUDE-METADATA")
def test_changefeed_metadata_only_when_asked(
    dicomweb: Client, new_study: NewStudy, feed: Feed
) -> None:
    study = new_study()
    expect.answered(stow(dicomweb, [study.blue]), 200)
    with_metadata = _ours(feed.since_start(), study)
    without = _ours(feed.since_start(includemetadata=False), study)
    assert len(with_metadata) == len(without) == 1, "the feed does not list the store once"
    metadata = with_metadata[0].get("Metadata")
    assert isinstance(metadata, dict) and first_value(metadata, SOP_UID) == study.blue.sop_uid, (
        "by default an entry carries the instance's DICOM JSON Metadata"
    )
    assert without[0].get("Metadata") is None, "includemetadata=false still sends Metadata"


@pytest.mark.requirement("AZ-CHANGEFEED-PAGING")
def test_changefeed_pages_neither_skip_nor_repeat(
    dicomweb: Client, new_study: NewStudy, feed: Feed
) -> None:
    study = new_study()
    expect.answered(stow(dicomweb, list(study)), 200)
    whole = [e["Sequence"] for e in _ours(feed.since_start(), study)]
    paged = [e["Sequence"] for e in _ours(feed.since_start(page=1), study)]
    assert len(whole) == 3, f"expected 3 entries for the study, got {whole}"
    assert paged == whole, f"paging one entry at a time gives {paged}, one request gives {whole}"


@pytest.mark.parametrize("param", ["limit=0", "limit=max+1", "offset=-1"])
@pytest.mark.requirement("AZ-CHANGEFEED-LIMIT-RANGE")
def test_changefeed_out_of_range_paging_is_refused_or_served_sanely(
    feed: Feed, dicomweb: Client, param: str
) -> None:
    """The documents give a range (limit 1 to the maximum, offset from 0) but no answer outside
    it: a client error passes, and so does a JSON array within the documented maximum (a value
    clamped); a server error is a robustness breach (RFC 9110 15.6)."""
    name = param.split("=")[0]
    value = {"limit=0": 0, "limit=max+1": feed.limit + 1, "offset=-1": -1}[param]
    response = dicomweb.get("changefeed", query=[(name, str(value))], headers={"Accept": JSON})
    if 400 <= response.status_code < 500:
        return
    expect.status(response, 200, why=f"{param} is refused with a 4xx or served")
    served = _entries(response)
    assert len(served) <= feed.limit, (
        f"{name}={value} served {len(served)} entries, over the documented maximum {feed.limit}"
    )


@pytest.mark.requirement("AZ-CHANGEFEED-TIME-WINDOW")
def test_changefeed_time_window_is_start_inclusive_end_exclusive(
    dicomweb: Client, new_study: NewStudy, feed: Feed
) -> None:
    study = new_study()
    for instance in study:  # three requests apart, so the entries' timestamps differ
        expect.answered(stow(dicomweb, [instance]), 200)
        time.sleep(0.05)
    ours = _ours(feed.since_start(), study)
    assert len(ours) == 3, f"expected 3 entries for the study, got {len(ours)}"
    first, last = ours[0]["Timestamp"], ours[-1]["Timestamp"]
    # A coarse clock breaks no documented sentence, but leaves no window to test.
    expect.precondition(
        _timestamp(first) < _timestamp(last),
        f"the first and the last of three stores 0.1 s apart have the same Timestamp {first}",
    )
    window = feed.counted(feed.limit, startTime=first, endTime=last)
    inside = [e["Sequence"] for e in _ours(window, study)]
    expected = [e["Sequence"] for e in ours if _timestamp(e["Timestamp"]) < _timestamp(last)]
    assert inside == expected, f"the window [{first}, {last}) gives {inside}, expected {expected}"
    for entry in window:
        stamp = _timestamp(entry["Timestamp"])
        assert _timestamp(first) <= stamp < _timestamp(last), f"{entry} is outside the window"


# --- metadata ETag --------------------------------------------------------------------------------


@pytest.mark.requirement("AZ-METADATA-ETAG")
def test_metadata_etag_answers_304_when_unchanged(
    dicomweb: Client, stored_study: SampleStudy
) -> None:
    path = f"{instance_path(stored_study.red)}/metadata"
    first = dicomweb.get(path, headers={"Accept": DICOM_JSON})
    if first.status_code in expect.ROUTE_ABSENT:
        expect.not_implemented(f"no metadata resource: it answered {first.status_code}")
    expect.status(first, 200)
    etag = first.headers.get("ETag")
    if not etag:
        expect.not_implemented("metadata carries no ETag")
    again = dicomweb.get(path, headers={"Accept": DICOM_JSON, "If-None-Match": etag})
    expect.status(again, 304, why="If-None-Match names the current ETag")
    assert not again.content, f"the 304 answer has a body of {len(again.content)} bytes"
