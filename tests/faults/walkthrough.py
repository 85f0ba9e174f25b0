"""The walkthrough's faults (what each catches is asserted in test_walkthrough_orthanc.py)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode

import pydicom
from proof import OVER_A_REPAIR, PROXY

from conformance import multipart

from . import (
    QIDO_PATH,
    RETRIEVE_PATH,
    STOW_PATH,
    Answer,
    Exchange,
    Fault,
    Forward,
    header,
    rewrite_parts,
)
from . import fault as any_fault
from .wado import INSTANCE, with_accept

# The walkthrough's checks, by their names within test_walkthrough.py.
WALKTHROUGH = "test_walkthrough.py"
SEARCHES = [
    "studies?StudyInstanceUID",
    "series?SeriesInstanceUID",
    "studies/{study}/series?SeriesInstanceUID",
    "instances?SOPInstanceUID",
    "studies/{study}/instances?SOPInstanceUID",
    "studies/{study}/series/{series}/instances?SOPInstanceUID",
]
MULTIPART_DICOM = 'multipart/related; type="application/dicom"'
INSTANCE_MULTIPART = f"test_instance_retrieve_returns_red_triangle[accept={MULTIPART_DICOM}]"
INSTANCE_SINGLE_PART = "test_instance_retrieve_single_part_is_red_triangle"
STORES = [
    "test_store_one_instance_multipart",
    "test_store_two_instances_in_one_request",
    "test_store_to_study_path",
]
STUDY_AND_SERIES_RETRIEVES = [
    "test_study_retrieve_returns_the_three_instances",
    "test_series_retrieve_returns_only_that_series",
]
METADATA = [
    f"test_metadata_describes_each_instance[{level}]" for level in ("study", "series", "instance")
]


def fault(name: str, catches: list[str], where: str = PROXY) -> Callable[[Fault], Fault]:
    """A walkthrough fault: ``catches`` are names within test_walkthrough.py; asserted by
    test_walkthrough_orthanc.py, which runs the whole walkthrough through it."""
    return any_fault(
        name,
        [f"{WALKTHROUGH}::{c}" for c in catches],
        test="test_walkthrough_orthanc.py",
        where=where,
    )


def flip_last_bytes(body: bytes) -> bytes:
    return body[:-8] + bytes(b ^ 0xFF for b in body[-8:])


@fault("stow-stores-nothing", STORES)
def stow_stores_nothing(request: Exchange, forward: Forward) -> Answer:
    """A store answered 200, claiming every instance, with nothing stored."""
    if request.method != "POST" or not STOW_PATH.search(request.path):
        return forward(request)
    parts = multipart.decode(request.body, request.headers.get("content-type", ""))
    referenced = []
    for part in parts:
        ds = pydicom.dcmread(io.BytesIO(part.body), stop_before_pixels=True)
        referenced.append(
            {
                "00081150": {"vr": "UI", "Value": [str(ds.SOPClassUID)]},
                "00081155": {"vr": "UI", "Value": [str(ds.SOPInstanceUID)]},
            }
        )
    body = json.dumps({"00081199": {"vr": "SQ", "Value": referenced}}).encode()
    return Answer(200, {"Content-Type": "application/dicom+json"}, body)


@fault("retrieve-drops-instance", STUDY_AND_SERIES_RETRIEVES)
def retrieve_drops_instance(request: Exchange, forward: Forward) -> Answer:
    """A study or series retrieve that leaves out its last instance."""
    answer = forward(request)
    if request.method != "GET" or not RETRIEVE_PATH.search(request.path) or answer.status != 200:
        return answer
    content_type = answer.headers.get("Content-Type", "")
    parts = multipart.decode(answer.body, content_type)
    boundary = multipart.parse_media_type(content_type)[1]["boundary"]
    body, _ = multipart.encode_related([p.body for p in parts[:-1]], boundary=boundary)
    return Answer(200, answer.headers, body)


@fault(
    "search-ignores-uid-filter",
    [f"test_search_finds_exactly_the_one_by_uid[{s}]" for s in SEARCHES],
)
def search_ignores_uid_filter(request: Exchange, forward: Forward) -> Answer:
    """A search that drops its UID matching keys and answers as if none were given."""
    if request.method == "GET" and QIDO_PATH.search(request.path):
        kept = [(k, v) for k, v in parse_qsl(request.query) if not k.endswith("UID")]
        request = Exchange(
            request.method, request.path, urlencode(kept), request.headers, request.body
        )
    return forward(request)


@fault("retrieve-corrupts-pixels", [*STORES, *STUDY_AND_SERIES_RETRIEVES, INSTANCE_MULTIPART])
def retrieve_corrupts_pixels(request: Exchange, forward: Forward) -> Answer:
    """Retrieved instances whose last pixel bytes are flipped (a storage or transcoding bug)."""
    answer = forward(request)
    if request.method != "GET" or "/frames/" in request.path or request.path.endswith("metadata"):
        return answer
    return rewrite_parts(answer, flip_last_bytes)


def asks_single_part_instance(request: Exchange) -> bool:
    """A GET of an instance with application/dicom the only media type its Accept names."""
    if request.method != "GET" or not INSTANCE.search(request.path):
        return False
    ranges = [r for r in header(request.headers, "accept").split(",") if r.strip()]
    return bool(ranges) and all(
        multipart.parse_media_type(r)[0] == "application/dicom" for r in ranges
    )


def served_single_part(
    request: Exchange, forward: Forward, change: Callable[[bytes], bytes] = lambda b: b
) -> Answer:
    """An instance asked for as application/dicom alone, served single-part: the one part of
    the server's multipart answer (Orthanc has no single-part answer: it answers 400), passed
    through ``change``."""
    if not asks_single_part_instance(request):
        return forward(request)
    answer = forward(with_accept(request, f"{MULTIPART_DICOM}; transfer-syntax=*"))
    content_type = answer.headers.get("Content-Type", "")
    if answer.status != 200 or not content_type.lower().startswith("multipart/related"):
        return answer
    body = multipart.decode(answer.body, content_type)[0].body
    return Answer(200, {"Content-Type": "application/dicom"}, change(body))


@fault("single-part-retrieve-corrupts", [INSTANCE_SINGLE_PART], where=OVER_A_REPAIR)
def single_part_retrieve_corrupts(request: Exchange, forward: Forward) -> Answer:
    """A single-part instance whose last pixel bytes are flipped: retrieve-corrupts-pixels'
    storage or transcoding bug, on the single-part path. Orthanc has no single-part answer, so
    the fault serves one itself (``served_single_part``); tiny-pacs, which has single-part
    retrieve and passes the check, is the server without it."""
    return served_single_part(request, forward, flip_last_bytes)


@fault("frame-truncated", ["test_frame_1_of_red_triangle_is_its_pixel_data"])
def frame_truncated(request: Exchange, forward: Forward) -> Answer:
    """Frames cut short by 1000 bytes."""
    answer = forward(request)
    if request.method != "GET" or "/frames/" not in request.path:
        return answer
    return rewrite_parts(answer, lambda body: body[:-1000])


@fault("metadata-drops-instance", METADATA)
def metadata_drops_instance(request: Exchange, forward: Forward) -> Answer:
    """Metadata that leaves out its last instance."""
    answer = forward(request)
    if request.method != "GET" or not request.path.endswith("/metadata") or answer.status != 200:
        return answer
    objects = json.loads(answer.body)
    return Answer(200, answer.headers, json.dumps(objects[:-1]).encode())
