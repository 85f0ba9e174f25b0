"""Faults found only by the properties (see tests/faults/__init__.py): the checks of
conformance/checks/test_properties*.py, which generate their queries and instances.

Each is a bug that no fixed check of test_qido.py, test_wado.py or test_json.py sees, because it
needs a value, a tie, a precision or an element that the samples and the synthetic study do not
hold: each docstring says why the fixed checks pass. They are proven by the catalog run
(tests/test_catalog_faults.py).
"""

from __future__ import annotations

import datetime
import io
import re
import struct
import threading
from typing import Any

import pydicom
from pydicom.dataelem import DataElement
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

from conformance import multipart

from . import (
    STOW_PATH,
    Answer,
    Exchange,
    Forward,
    JsonObject,
    each_attribute,
    fault,
    header,
    is_metadata,
    is_search,
    json_answer,
    json_changed,
    of_vr,
    query_pairs,
    rewrite_json,
    search_results,
    with_query,
)
from .wado import is_retrieve, metadata_request, per_dataset, rewrite

PROPERTIES = "test_properties.py::"
_lock = threading.Lock()  # over the instances stored once and again


# --- searches ------------------------------------------------------------------------------------


@fault(
    "search-date-range-bounds-exclusive",
    catches=[f"{PROPERTIES}test_date_ranges_find_what_the_model_finds"],
)
def search_date_range_bounds_exclusive(request: Exchange, forward: Forward) -> Answer:
    """A closed date range d1-d2 (d1 before d2) that leaves out both its end dates, as a study
    list did that filtered with isAfter/isBefore where isSameOrAfter/isSameOrBefore was due
    (OHIF/Viewers#310). Open ranges and a one-day range d-d are right, so every fixed range of
    test_qido.py still passes; only a generated range ending on a stored date shows it."""
    if not is_search(request):
        return forward(request)
    pairs = []
    for key, value in query_pairs(request):
        low, sep, high = value.partition("-")
        if key in ("StudyDate", "00080020") and sep and low and high and low < high:
            inner = (_next_day(low, +1), _next_day(high, -1))
            value = "-".join(inner) if inner[0] <= inner[1] else "00010101-00010101"
        pairs.append((key, value))
    return forward(with_query(request, pairs))


def _next_day(day: str, delta: int) -> str:
    return (datetime.date.fromisoformat(day) + datetime.timedelta(days=delta)).strftime("%Y%m%d")


@fault(
    "search-pages-reorder-ties",
    catches=[f"{PROPERTIES}test_pages_are_slices_of_the_whole_answer"],
)
def search_pages_reorder_ties(request: Exchange, forward: Forward) -> Answer:
    """Study pages ordered by Study Date with no unique tie-breaker, so that studies of the same
    date come in another order from one page request to the next (a database's ORDER BY on a
    column with ties; here the offset's parity decides): pages repeat one study and skip
    another. The fixed paging check pages series at even offsets, and passes."""
    pairs = query_pairs(request)
    paging = {k: v for k, v in pairs if k in ("limit", "offset")}
    if not is_search(request) or not request.path.endswith("/studies"):
        return forward(request)
    answer = forward(with_query(request, [p for p in pairs if p[0] not in paging]))
    results = search_results(answer)
    if results is None:
        return answer
    # Ties by Study Instance UID, descending at odd offsets: every tie is then in the other
    # order, whatever the run's UIDs (reversing each UID's text instead left a tie in place
    # whenever its two UIDs sorted alike both ways, and the fault then went unseen in about
    # one run in eight).
    flip = int(paging.get("offset", "0")) % 2 == 1
    results.sort(key=lambda obj: str(obj.get("0020000D", {}).get("Value", [""])[0]), reverse=flip)
    results.sort(key=lambda obj: str(obj.get("00080020", {}).get("Value", [""])[0]))  # stable
    offset = int(paging.get("offset", "0"))
    end = offset + int(paging["limit"]) if "limit" in paging else None
    return json_answer(answer, results[offset:end])


_stored_again: set[str] = set()
_stored_once: set[str] = set()


def _sop_uids(request: Exchange) -> list[str]:
    content_type = next((v for k, v in request.headers.items() if k.lower() == "content-type"), "")
    try:
        parts = multipart.decode(request.body, content_type)
    except multipart.MultipartError:
        return []
    found = []
    for part in parts:
        try:
            ds = pydicom.dcmread(io.BytesIO(part.body), stop_before_pixels=True)
        except Exception:  # a part that is not DICOM: nothing stored
            continue
        found.append(str(ds.get("SOPInstanceUID", "")))
    return found


@fault(
    "search-lists-an-instance-stored-again-twice",
    catches=[f"{PROPERTIES}test_stores_retrieves_and_searches_agree_with_the_model"],
)
def search_lists_an_instance_stored_again_twice(request: Exchange, forward: Forward) -> Answer:
    """An instance stored a second time listed twice by instance searches, as by an index
    that adds a row for every store instead of replacing the instance's row. The fixed
    duplicate check retrieves the instance stored again, and does not search for it."""
    if request.method == "POST" and STOW_PATH.search(request.path):
        with _lock:
            for uid in _sop_uids(request):
                (_stored_again if uid in _stored_once else _stored_once).add(uid)
        return forward(request)
    answer = forward(request)
    results = search_results(answer)
    if not is_search(request) or not request.path.endswith("/instances") or not results:
        return answer
    with _lock:
        doubled = [
            o for o in results if o.get("00080018", {}).get("Value", [""])[0] in _stored_again
        ]
    return json_answer(answer, results + doubled)


UNIQUE_KEYS = {"0020000D", "0020000E", "00080018"}


@fault(
    "includefield-values-from-the-first-result",
    catches=[f"{PROPERTIES}test_includefield_returns_what_was_stored_at_every_level"],
)
def includefield_values_from_the_first_result(request: Exchange, forward: Forward) -> Answer:
    """A search that fills the attributes named in includefield from the first entity it
    read, for every result: as Orthanc answers a study search's includefield Modality with the
    modality of the first series it finds (OHIF/Viewers#5073), and as DICOMcloud's instance
    search answered a key asked for with includefield from the wrong record (DICOMcloud#1).
    The fixed includefield checks ask of one study at a time, and see no other result."""
    answer = forward(request)
    results = search_results(answer)
    if not is_search(request) or not results:
        return answer
    named = {
        tag
        for key, value in query_pairs(request)
        if key == "includefield"
        for field in value.split(",")
        if (tag := _tag(field)) and tag not in UNIQUE_KEYS
    }
    first = results[0]
    for obj in results[1:]:
        for tag in named & set(first):
            obj[tag] = first[tag]
    return json_answer(answer, results)


def _tag(field: str) -> str | None:
    """ "00081030" for "StudyDescription" or "00081030"; None for "all" or no keyword."""
    if re.fullmatch(r"[0-9A-Fa-f]{8}", field):
        return field.upper()
    tag = pydicom.datadict.tag_for_keyword(field)
    return None if tag is None else f"{tag:08X}"


# Study attributes a relational search may match on, beyond the scope's (the run's Patient ID,
# the archive's Study ID) and the unique keys.
STUDY_MATCH_KEYS = {
    "StudyDate", "00080020", "StudyTime", "00080030", "AccessionNumber", "00080050",
    "PatientName", "00100010", "StudyDescription", "00081030", "ReferringPhysicianName",
    "00080090",
}  # fmt: skip


@fault(
    "relational-search-ignores-study-keys",
    catches=[f"{PROPERTIES}test_series_and_instance_searches_find_what_the_model_finds"],
)
def relational_search_ignores_study_keys(request: Exchange, forward: Forward) -> Answer:
    """GET /series and /instances matching on their own level's keys only: a study's date,
    accession number, name or description is dropped from the query, as DICOMcloud's instance
    search ignored a study key it was given (DICOMcloud#1). Hierarchical searches, and the
    Patient ID and UIDs the fixed relational checks use, are untouched."""
    path = request.path.rstrip("/")
    if not is_search(request) or not path.endswith(("/dicom-web/series", "/dicom-web/instances")):
        return forward(request)
    kept = [(k, v) for k, v in query_pairs(request) if k not in STUDY_MATCH_KEYS]
    return forward(with_query(request, kept))


TOO_LONG = 2048  # characters: the width of the column a search value is matched in


@fault(
    "search-long-value-500",
    catches=[f"{PROPERTIES}test_malformed_requests_get_client_errors_and_harm_nothing"],
)
def search_long_value_500(request: Exchange, forward: Forward) -> Answer:
    """A search value longer than the column it is matched in answered 500, the database's
    "value too long for type character varying(2048)" passed on as a server error, as a search
    for a long URL did on gpodder/mygpo#241. Only the malformed-requests property sends such a
    value (a Patient ID of 4096 characters or more); every other search is untouched."""
    if is_search(request) and any(len(value) > TOO_LONG for _, value in query_pairs(request)):
        body = b"ERROR: value too long for type character varying(2048)"
        return Answer(500, {"Content-Type": "text/plain"}, body)
    return forward(request)


# --- metadata and retrieves ---------------------------------------------------------------------


NUMBER_VRS = {"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"}


@fault(
    "metadata-numbers-first-value-only",
    catches=[f"{PROPERTIES}test_metadata_of_a_generated_instance_is_what_was_stored"],
)
def metadata_numbers_first_value_only(request: Exchange, forward: Forward) -> Answer:
    """Binary numbers (US, SS, FL, FD, …) of several values given in metadata as their first
    value only: a JSON writer that reads one number where the element holds a VM of n (the
    samples and the synthetic study hold none, so the fixed metadata checks pass)."""
    answer = forward(request)
    if not metadata_request(request):
        return answer

    def first_only(objects: Any) -> Any:
        for obj in objects if isinstance(objects, list) else []:
            for attribute in obj.values():
                values = attribute.get("Value")
                if attribute.get("vr") in NUMBER_VRS and isinstance(values, list):
                    attribute["Value"] = values[:1]
        return objects

    return json_changed(answer, first_only)


def private_elements_as_un(ds: pydicom.Dataset) -> None:
    for element in list(ds):
        if element.tag.is_private and not element.tag.is_private_creator:
            ds[element.tag] = as_un(element)


def as_un(element: DataElement) -> DataElement:
    """The element's value bytes, as Explicit VR Little Endian writes them, under VR UN."""
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_data_element(buffer, element)
    header = 12 if element.VR in EXPLICIT_VR_LENGTH_32 else 8
    return DataElement(element.tag, "UN", buffer.getvalue()[header:])


@fault(
    "retrieve-private-elements-as-un",
    catches=[f"{PROPERTIES}test_a_generated_instance_is_retrieved_as_it_was_stored"],
)
def retrieve_private_elements_as_un(request: Exchange, forward: Forward) -> Answer:
    """Private elements retrieved with VR UN, their VR lost, as by an archive that stores what
    it receives in Implicit VR and knows no private dictionary (the samples and the synthetic
    study hold no private elements, so the fixed retrieve checks pass)."""
    answer = forward(request)
    if not is_retrieve(request):
        return answer
    return rewrite(answer, per_dataset(private_elements_as_un))


def swap_16_bit_pixels(ds: pydicom.Dataset) -> None:
    if ds.get("BitsAllocated") == 16 and "PixelData" in ds:
        data = bytearray(ds.PixelData)
        data[0::2], data[1::2] = data[1::2], data[0::2]
        ds.PixelData = bytes(data)


@fault(
    "implicit-vr-swaps-16-bit-pixels",
    catches=[
        f"{PROPERTIES}test_a_retrieve_gives_the_transfer_syntax_asked_for_with_the_same_pixels"
    ],
)
def implicit_vr_swaps_16_bit_pixels(request: Exchange, forward: Forward) -> Answer:
    """16-bit pixels byte-swapped when Implicit VR Little Endian is asked for, as by a
    transcoder that takes the 16-bit words for big endian (the samples and the synthetic study
    are 8-bit, so the fixed retrieve checks pass)."""
    answer = forward(request)
    if (
        not is_retrieve(request)
        or "1.2.840.10008.1.2;" not in header(request.headers, "accept") + ";"
    ):
        return answer
    return rewrite(answer, per_dataset(swap_16_bit_pixels))


@fault(
    "metadata-numbers-as-float32",
    catches=[
        "test_properties_roundtrip.py::test_metadata_of_a_generated_instance_is_what_was_stored"
    ],
)
def metadata_numbers_as_float32(request: Exchange, forward: Forward) -> Answer:
    """Binary numbers kept in single precision (a float field of the JSON model, as in writers
    that map every DICOM number to 'float'): an FD, or an SL or UL beyond 2**24, comes back
    rounded to float32. Only the generated instances hold such numbers; a comparison with a
    tolerance of 1e-6 let it through."""

    def single(attribute: JsonObject) -> None:
        attribute["Value"] = [v if v is None else float32(v) for v in attribute["Value"]]

    change = of_vr({"FD", "SL", "UL"}, single)
    return rewrite_json(
        request, forward, lambda body: each_attribute(body, change), only=is_metadata
    )


def float32(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    rounded = struct.unpack("<f", struct.pack("<f", value))[0]
    return int(rounded) if isinstance(value, int) else rounded
