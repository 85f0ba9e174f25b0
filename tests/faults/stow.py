"""Faults of the stow checks (see tests/faults/__init__.py): STOW-RS bugs seen in real servers.

Each changes one thing: the request on its way in (what the server stores) or the answer on its
way out (what the server says), so that a run through the proxy differs from a direct run by that
one broken rule.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Callable
from typing import Any

import pydicom

from conformance import multipart
from conformance.synthetic import CATALOG_NAMES

from . import QIDO_PATH, STOW_PATH, Answer, Exchange, Forward, fault

CHECKS = "test_stow.py::"
DICOM_JSON = "application/dicom+json"
RETRIEVE_URL = "00081190"
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_SEQUENCE = "00081199"
FAILURE_REASON = "00081197"
PROCESSING_FAILURE = 0x0110
ROUND_TRIPS = [
    f"{CHECKS}test_retrieved_instance_equals_what_was_stored[{name}]"
    for name in ("blue-circle", "green-square", "red-triangle")
] + [f"{CHECKS}test_synthetic_instance_round_trips_unchanged[{name}]" for name in CATALOG_NAMES]


def _is_stow(request: Exchange) -> bool:
    return request.method == "POST" and STOW_PATH.search(request.path) is not None


def _request_parts(request: Exchange) -> tuple[list[multipart.Part], str, str | None] | None:
    """The parts of a multipart STOW request, its boundary and root type (None if not one)."""
    content_type = request.headers.get("content-type", "")
    try:
        media_type, params = multipart.parse_media_type(content_type)
        if media_type != "multipart/related" or "boundary" not in params:
            return None
        return multipart.decode(request.body, content_type), params["boundary"], params.get("type")
    except multipart.MultipartError:
        return None


def _with_parts(request: Exchange, bodies: list[bytes]) -> Exchange:
    """The same request with these part bodies (same boundary, part and root types)."""
    found = _request_parts(request)
    assert found is not None
    parts, boundary, root_type = found
    part_type = parts[0].content_type or root_type or "application/dicom"
    body, _ = multipart.encode_related(
        bodies, part_type=part_type, boundary=boundary, root_type=root_type
    )
    return Exchange(request.method, request.path, request.query, request.headers, body)


def _rewrite_module(answer: Answer, change: Callable[[dict[str, Any]], None]) -> Answer:
    """The answer with its Store Instances Response Module changed (other bodies untouched)."""
    try:
        module = json.loads(answer.body)
    except ValueError:
        return answer
    if not isinstance(module, dict):
        return answer
    change(module)
    return Answer(answer.status, answer.headers, json.dumps(module).encode())


def _items(module: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    found = module.get(tag, {}).get("Value", [])
    return [item for item in found if isinstance(item, dict)]


def _study_uid(body: bytes) -> str | None:
    try:
        return str(pydicom.dcmread(io.BytesIO(body), stop_before_pixels=True).StudyInstanceUID)
    except Exception:  # not DICOM: no study
        return None


@fault(
    "stow-keeps-first-part-only",
    catches=[
        f"{CHECKS}test_two_instances_in_one_request_are_both_stored",
        f"{CHECKS}test_instances_of_two_studies_in_one_request_are_both_stored",
        f"{CHECKS}test_referenced_sop_sequence_names_each_stored_instance",
        f"{CHECKS}test_each_referenced_item_has_a_retrieve_url_of_vr_ur",
        f"{CHECKS}test_instance_retrieve_url_retrieves_that_instance",
        f"{CHECKS}test_partial_store_lists_the_stored_and_the_refused",
    ],
)
def stow_keeps_first_part_only(request: Exchange, forward: Forward) -> Answer:
    """A streaming parser that stops after the first part: the rest are silently dropped and the
    server answers 200 for what it read."""
    found = _request_parts(request) if _is_stow(request) else None
    if found is None or len(found[0]) < 2:
        return forward(request)
    return forward(_with_parts(request, [found[0][0].body]))


@fault(
    "stow-response-without-referenced-sop",
    catches=[
        f"{CHECKS}test_store_to_its_study_resource_stores_it",
        f"{CHECKS}test_two_instances_in_one_request_are_both_stored",
        f"{CHECKS}test_referenced_sop_sequence_names_each_stored_instance",
        f"{CHECKS}test_each_referenced_item_has_a_retrieve_url_of_vr_ur",
        f"{CHECKS}test_instance_retrieve_url_retrieves_that_instance",
        f"{CHECKS}test_instances_of_two_studies_in_one_request_are_both_stored",
        f"{CHECKS}test_parts_with_extra_headers_are_stored",
        f"{CHECKS}test_partial_store_lists_the_stored_and_the_refused",
    ],
)
def stow_response_without_referenced_sop(request: Exchange, forward: Forward) -> Answer:
    """A store response that reports only the status and the study URL, never which instances
    it stored."""
    answer = forward(request)
    if not _is_stow(request):
        return answer
    return _rewrite_module(answer, lambda module: module.pop(REFERENCED_SOP_SEQUENCE, None))


@fault(
    "stow-retrieve-url-wrong-instance",
    catches=[f"{CHECKS}test_instance_retrieve_url_retrieves_that_instance"],
)
def stow_retrieve_url_wrong_instance(request: Exchange, forward: Forward) -> Answer:
    """Instance Retrieve URLs built with the SeriesInstanceUID where the SOPInstanceUID goes."""
    answer = forward(request)
    if not _is_stow(request):
        return answer

    def change(module: dict[str, Any]) -> None:
        for item in _items(module, REFERENCED_SOP_SEQUENCE):
            attribute = item.get(RETRIEVE_URL)
            if not isinstance(attribute, dict):
                continue
            urls = attribute.get("Value", [])
            attribute["Value"] = [
                re.sub(r"/series/([^/]+)/instances/[^/]+$", r"/series/\1/instances/\1", url)
                for url in urls
            ]

    return _rewrite_module(answer, change)


@fault("stow-response-text-plain", catches=[f"{CHECKS}test_store_response_is_dicom_json"])
def stow_response_text_plain(request: Exchange, forward: Forward) -> Answer:
    """The DICOM JSON store response labelled text/plain (a framework default)."""
    answer = forward(request)
    if not _is_stow(request) or answer.status != 200:
        return answer
    headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-type"}
    headers["Content-Type"] = "text/plain; charset=utf-8"
    return Answer(answer.status, headers, answer.body)


@fault(
    "stow-failure-content-type-twice",
    catches=[f"{CHECKS}test_store_answers_have_one_content_type_field"],
)
def stow_failure_content_type_twice(request: Exchange, forward: Forward) -> Answer:
    """A failure answer with two Content-Type field lines, application/dicom+json and
    text/plain, as Orthanc 1.12 and 1.13 send on their 409 (orthanc-dicomweb
    Plugin/StowRs.cpp @3981566 sets Content-Type, then OrthancPluginSendHttpStatus adds the
    core's own)."""
    answer = forward(request)
    if not _is_stow(request) or answer.status < 400 or not answer.body:
        return answer
    headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-type"}
    # Two keys differing in case: the proxy sends each as its own field line.
    headers["Content-Type"] = DICOM_JSON
    headers["content-type"] = "text/plain; charset=utf-8"
    return Answer(answer.status, headers, answer.body)


@fault(
    "stow-unacceptable-accept-400",
    catches=[f"{CHECKS}test_store_accepting_only_html_answers_406"],
)
def stow_unacceptable_accept_400(request: Exchange, forward: Forward) -> Answer:
    """A store whose Accept names no media type the server produces answered 400, as
    Orthanc's WADO-RS answers such retrieves (Plugin/WadoRs.cpp @2b12aaa9, ErrorCode_BadRequest:
    'cannot generate the following content type'); the instance is not stored."""
    accept = request.headers.get("accept", "")
    produced = (DICOM_JSON, "application/*", "*/*")
    if _is_stow(request) and accept and not any(kind in accept for kind in produced):
        body = f"cannot generate the following content type: {accept}".encode()
        return Answer(400, {"Content-Type": "text/plain"}, body)
    return forward(request)


@fault(
    "stow-ignores-study-in-path",
    catches=[
        f"{CHECKS}test_study_path_mismatch_answers_409",
        f"{CHECKS}test_study_path_mismatch_stores_nothing",
        f"{CHECKS}test_partial_store_lists_the_stored_and_the_refused",
    ],
)
def stow_ignores_study_in_path(request: Exchange, forward: Forward) -> Answer:
    """POST /studies/{study} handled as POST /studies: a mismatched instance is stored anyway."""
    if _is_stow(request):
        path = re.sub(r"/studies/[^/]+$", "/studies", request.path)
        request = Exchange(request.method, path, request.query, request.headers, request.body)
    return forward(request)


@fault(
    "stow-failure-answered-200",
    catches=[
        f"{CHECKS}test_study_path_mismatch_answers_409",
        f"{CHECKS}test_non_dicom_part_is_refused",
    ],
)
def stow_failure_answered_200(request: Exchange, forward: Forward) -> Answer:
    """Refusals answered 200, the failures only inside FailedSOPSequence."""
    answer = forward(request)
    if _is_stow(request) and answer.status in (400, 409):
        return Answer(200, answer.headers, answer.body)
    return answer


@fault(
    "stow-unsupported-media-type-500",
    catches=[
        f"{CHECKS}test_text_plain_body_answers_415",
        f"{CHECKS}test_multipart_without_boundary_is_refused",
    ],
)
def stow_unsupported_media_type_500(request: Exchange, forward: Forward) -> Answer:
    """A store whose body is not multipart with a boundary crashes the parser: 500."""
    if _is_stow(request) and _request_parts(request) is None:
        return Answer(500, {"Content-Type": "text/plain"}, b"Internal Server Error")
    return forward(request)


# The checks that read a stored instance back and compare it with what was sent.
READ_BACKS = [
    f"{CHECKS}test_store_answers_200_and_the_instance_reads_back",
    f"{CHECKS}test_store_to_its_study_resource_stores_it",
    f"{CHECKS}test_two_instances_in_one_request_are_both_stored",
    f"{CHECKS}test_instances_of_two_studies_in_one_request_are_both_stored",
    f"{CHECKS}test_instance_retrieve_url_retrieves_that_instance",
    f"{CHECKS}test_study_path_store_retrieve_url_names_and_retrieves_the_study",
    f"{CHECKS}test_partial_store_lists_the_stored_and_the_refused",
    f"{CHECKS}test_parts_with_extra_headers_are_stored",
    *ROUND_TRIPS,
]


def _coerced(
    request: Exchange, forward: Forward, coerce: Callable[[pydicom.FileDataset], None]
) -> Answer:
    """The store request with each DICOM part changed by ``coerce`` before the server sees it."""
    found = _request_parts(request) if _is_stow(request) else None
    if found is None:
        return forward(request)
    bodies = []
    for part in found[0]:
        try:
            ds = pydicom.dcmread(io.BytesIO(part.body))
        except Exception:  # not DICOM: passed on as it is
            bodies.append(part.body)
            continue
        coerce(ds)
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        bodies.append(buffer.getvalue())
    return forward(_with_parts(request, bodies))


def _prefix_patient_id(ds: pydicom.FileDataset) -> None:
    ds.PatientID = f"SITE-{ds.PatientID}"


@fault("stow-coerces-patient-id", catches=READ_BACKS)
def stow_coerces_patient_id(request: Exchange, forward: Forward) -> Answer:
    """A server that prefixes PatientID with its issuer on store, without recording the
    original in OriginalAttributesSequence."""
    return _coerced(request, forward, _prefix_patient_id)


def _coerce_recording_the_issuer_only(ds: pydicom.FileDataset) -> None:
    previous = pydicom.Dataset()
    previous.IssuerOfPatientID = ds.get("IssuerOfPatientID", "")
    original = pydicom.Dataset()
    original.ModifiedAttributesSequence = [previous]
    original.SourceOfPreviousValues = ""
    original.AttributeModificationDateTime = "20260101000000"
    original.ModifyingSystem = "ARCHIVE"
    original.ReasonForTheAttributeModification = "COERCE"
    ds.OriginalAttributesSequence = [original]
    ds.IssuerOfPatientID = "SITE"
    _prefix_patient_id(ds)


@fault("stow-coerces-with-unrelated-oas", catches=READ_BACKS)
def stow_coerces_with_unrelated_oas(request: Exchange, forward: Forward) -> Answer:
    """A coercion that sets IssuerOfPatientID and prefixes PatientID, but records only the
    issuer in OriginalAttributesSequence: the Modified Attributes Sequence misses an attribute
    it changed (as in dcm4chee-arc-light #3306, where a coercion left the modified data set of
    the original attributes out of step)."""
    return _coerced(request, forward, _coerce_recording_the_issuer_only)


@fault(
    "stow-failed-sop-on-success",
    catches=[f"{CHECKS}test_success_response_lists_no_failed_instance"],
)
def stow_failed_sop_on_success(request: Exchange, forward: Forward) -> Answer:
    """A 200 whose FailedSOPSequence lists the stored instances (warnings filed as failures)."""
    answer = forward(request)
    if not _is_stow(request) or answer.status != 200:
        return answer

    def change(module: dict[str, Any]) -> None:
        failed = [
            {
                "00081150": item.get("00081150", {"vr": "UI"}),
                "00081155": item.get("00081155", {"vr": "UI"}),
                FAILURE_REASON: {"vr": "US", "Value": [0xB000]},
            }
            for item in _items(module, REFERENCED_SOP_SEQUENCE)
        ]
        module[FAILED_SOP_SEQUENCE] = {"vr": "SQ", "Value": failed}

    return _rewrite_module(answer, change)


@fault(
    "stow-no-study-retrieve-url",
    catches=[
        f"{CHECKS}test_store_response_has_a_study_retrieve_url_of_vr_ur",
        f"{CHECKS}test_study_path_store_retrieve_url_names_and_retrieves_the_study",
    ],
)
def stow_no_study_retrieve_url(request: Exchange, forward: Forward) -> Answer:
    """A store response without the top-level Retrieve URL (Type 2 taken for Type 3)."""
    answer = forward(request)
    if not _is_stow(request):
        return answer
    return _rewrite_module(answer, lambda module: module.pop(RETRIEVE_URL, None))


@fault(
    "stow-retrieve-url-vr-ut",
    catches=[
        f"{CHECKS}test_each_referenced_item_has_a_retrieve_url_of_vr_ur",
        f"{CHECKS}test_instance_retrieve_url_retrieves_that_instance",
        f"{CHECKS}test_store_response_has_a_study_retrieve_url_of_vr_ur",
        f"{CHECKS}test_study_path_store_retrieve_url_names_and_retrieves_the_study",
    ],
)
def stow_retrieve_url_vr_ut(request: Exchange, forward: Forward) -> Answer:
    """Retrieve URLs sent with the VR UT of older editions instead of UR."""
    answer = forward(request)
    if not _is_stow(request):
        return answer

    def change(module: dict[str, Any]) -> None:
        for obj in [module, *_items(module, REFERENCED_SOP_SEQUENCE)]:
            if isinstance(obj.get(RETRIEVE_URL), dict):
                obj[RETRIEVE_URL]["vr"] = "UT"

    return _rewrite_module(answer, change)


@fault(
    "stow-failures-not-listed",
    catches=[
        f"{CHECKS}test_study_path_mismatch_lists_the_instance_as_failed",
        f"{CHECKS}test_partial_store_lists_the_stored_and_the_refused",
    ],
)
def stow_failures_not_listed(request: Exchange, forward: Forward) -> Answer:
    """Refused instances reported by the status code only: FailedSOPSequence left empty."""
    answer = forward(request)
    if not _is_stow(request):
        return answer
    return _rewrite_module(
        answer, lambda module: module.update({FAILED_SOP_SEQUENCE: {"vr": "SQ"}})
    )


@fault("stow-not-indexed", catches=[f"{CHECKS}test_stored_instance_is_found_by_search"])
def stow_not_indexed(request: Exchange, forward: Forward) -> Answer:
    """Instances stored but never indexed for search: every search finds nothing."""
    if request.method == "GET" and QIDO_PATH.search(request.path):
        return Answer(200, {"Content-Type": DICOM_JSON}, b"[]")
    return forward(request)


@fault("stow-rejects-part-headers", catches=[f"{CHECKS}test_parts_with_extra_headers_are_stored"])
def stow_rejects_part_headers(request: Exchange, forward: Forward) -> Answer:
    """A strict part parser that refuses any part header but Content-Type."""
    found = _request_parts(request) if _is_stow(request) else None
    if found is not None and any(set(p.headers) - {"content-type"} for p in found[0]):
        return Answer(400, {"Content-Type": "text/plain"}, b"unexpected part header")
    return forward(request)


@fault(
    "stow-refuses-several-studies",
    catches=[f"{CHECKS}test_instances_of_two_studies_in_one_request_are_both_stored"],
)
def stow_refuses_several_studies(request: Exchange, forward: Forward) -> Answer:
    """POST /studies refused (409, nothing stored) when its instances belong to two studies."""
    found = _request_parts(request) if _is_stow(request) else None
    if found is None or len({_study_uid(p.body) for p in found[0]}) < 2:
        return forward(request)
    failed = []
    for part in found[0]:
        ds = pydicom.dcmread(io.BytesIO(part.body), stop_before_pixels=True)
        failed.append(
            {
                "00081150": {"vr": "UI", "Value": [str(ds.SOPClassUID)]},
                "00081155": {"vr": "UI", "Value": [str(ds.SOPInstanceUID)]},
                FAILURE_REASON: {"vr": "US", "Value": [PROCESSING_FAILURE]},
            }
        )
    body = json.dumps({FAILED_SOP_SEQUENCE: {"vr": "SQ", "Value": failed}}).encode()
    return Answer(409, {"Content-Type": DICOM_JSON}, body)


# --- duplicates, empty requests, Implicit VR, Warning -------------------------------------------

_stores_of: dict[str, int] = {}
_never_written: set[str] = set()
_stored_before: set[str] = set()
_state_lock = threading.Lock()
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
SOP_INSTANCE_UID = "00080018"
INSTANCE_IN_PATH = re.compile(r"/instances/([^/]+)(/|$)")


def _datasets(request: Exchange) -> list[pydicom.FileDataset]:
    """The DICOM parts of a STOW request, read up to the pixels (parts that are not DICOM left
    out)."""
    found = _request_parts(request) if _is_stow(request) else None
    datasets = []
    for part in found[0] if found is not None else []:
        try:
            datasets.append(pydicom.dcmread(io.BytesIO(part.body), stop_before_pixels=True))
        except Exception:  # not DICOM: not stored
            continue
    return datasets


@fault(
    "stow-duplicate-indexed-twice",
    catches=[f"{CHECKS}test_instance_stored_twice_stays_retrievable_and_unique"],
)
def stow_duplicate_indexed_twice(request: Exchange, forward: Forward) -> Answer:
    """An index without a unique constraint on the SOP Instance UID: storing an instance again
    adds a second row, and instance searches list it once per store."""
    answer = forward(request)
    if _is_stow(request) and answer.status in (200, 202):
        with _state_lock:
            for ds in _datasets(request):
                uid = str(ds.SOPInstanceUID)
                _stores_of[uid] = _stores_of.get(uid, 0) + 1
        return answer
    if not (request.method == "GET" and request.path.endswith("/instances")):
        return answer
    try:
        objects = json.loads(answer.body) if answer.status == 200 else None
    except ValueError:
        return answer
    if not isinstance(objects, list):
        return answer
    listed = []
    for obj in objects:
        uid = (obj.get(SOP_INSTANCE_UID, {}).get("Value") or [None])[0]
        with _state_lock:
            rows = _stores_of.get(uid, 1) if isinstance(uid, str) else 1
        listed += [obj] * rows
    return Answer(answer.status, answer.headers, json.dumps(listed).encode())


def _is_empty_multipart(request: Exchange) -> bool:
    """A multipart/related body whose first delimiter is the close delimiter: no part at all."""
    try:
        media_type, params = multipart.parse_media_type(request.headers.get("content-type", ""))
    except multipart.MultipartError:
        return False
    boundary = params.get("boundary")
    if media_type != "multipart/related" or not boundary:
        return False
    return request.body.lstrip(b"\r\n").startswith(f"--{boundary}--".encode())


@fault("stow-empty-multipart-500", catches=[f"{CHECKS}test_empty_multipart_stores_nothing"])
def stow_empty_multipart_500(request: Exchange, forward: Forward) -> Answer:
    """A store handler that reads parts[0] to learn the part type: a multipart with no part at
    all crashes it (500) instead of being refused or answered with nothing stored."""
    if _is_stow(request) and _is_empty_multipart(request):
        return Answer(500, {"Content-Type": "text/plain"}, b"IndexError: list index out of range")
    return forward(request)


@fault(
    "stow-implicit-vr-never-written",
    catches=[f"{CHECKS}test_implicit_vr_instance_accepted_is_retrievable"],
)
def stow_implicit_vr_never_written(request: Exchange, forward: Forward) -> Answer:
    """Implicit VR Little Endian parts acknowledged (200, referenced), then dropped by a
    storage back end that writes Explicit VR only: every retrieve of them answers 404."""
    if _is_stow(request):
        answer = forward(request)
        if answer.status in (200, 202):
            implicit = {
                str(ds.SOPInstanceUID)
                for ds in _datasets(request)
                if ds.file_meta.get("TransferSyntaxUID") == IMPLICIT_VR_LITTLE_ENDIAN
            }
            with _state_lock:
                _never_written.update(implicit)
        return answer
    found = INSTANCE_IN_PATH.search(request.path)
    with _state_lock:
        dropped = request.method in ("GET", "HEAD") and found and found[1] in _never_written
    if dropped:
        body = json.dumps({"message": "instance not found"}).encode()
        return Answer(404, {"Content-Type": "application/json"}, body)
    return forward(request)


@fault(
    "stow-duplicate-warning-free-text",
    catches=[f"{CHECKS}test_warning_headers_on_store_responses_are_well_formed"],
)
def stow_duplicate_warning_free_text(request: Exchange, forward: Forward) -> Answer:
    """A duplicate store warned about in prose, with neither warn-code nor warn-agent:
    'Warning: Instance already exists'."""
    answer = forward(request)
    if not _is_stow(request) or answer.status not in (200, 202):
        return answer
    with _state_lock:
        uids = [str(ds.SOPInstanceUID) for ds in _datasets(request)]
        seen = [uid for uid in uids if uid in _stored_before]
        _stored_before.update(uids)
    if not seen:
        return answer
    headers = {**answer.headers, "Warning": "Instance already exists"}
    return Answer(answer.status, headers, answer.body)
