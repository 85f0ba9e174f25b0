"""The walkthrough's faults (what each catches is asserted in test_walkthrough_orthanc.py)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode

import pydicom

from conformance import multipart

from . import QIDO_PATH, RETRIEVE_PATH, STOW_PATH, Answer, Exchange, Fault, Forward, rewrite_parts
from . import fault as any_fault

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


def fault(name: str, catches: list[str]) -> Callable[[Fault], Fault]:
    """A walkthrough fault: ``catches`` are names within test_walkthrough.py; asserted by
    test_walkthrough_orthanc.py, which runs the whole walkthrough through it."""
    return any_fault(
        name, [f"{WALKTHROUGH}::{c}" for c in catches], test="test_walkthrough_orthanc.py"
    )


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
    return rewrite_parts(answer, lambda body: body[:-8] + bytes(b ^ 0xFF for b in body[-8:]))


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
