"""Repairs: the proxy making Orthanc keep one rule it breaks, so its checks are seen to pass.

A fault proves that a check can fail. For a check that Orthanc itself fails, and tiny-pacs too
(or lacks the feature), Orthanc is the fault; what is left to prove is that the check can pass at
all, that it does not accuse every server. A repair (the same ``(request, forward) -> answer``
as a fault) answers as a conforming server would on that one rule, built from what Orthanc
returns and its own further answers; tests/test_catalog_repairs.py runs the checks registered
with it through the proxy and requires each to PASS. Each repair is what a gateway in front of
the server would have to do; none of them is a claim that Orthanc should be used this way.
"""

from __future__ import annotations

import dataclasses
import datetime
import fnmatch
import io
import itertools
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from typing import Any, cast

import pydicom
from faults import (
    DICOM_JSON,
    STOW_PATH,
    Answer,
    Exchange,
    Fault,
    Forward,
    behaviour,
    fault,
    header,
    is_search,
    json_answer,
    json_changed,
    query_pairs,
    search_results,
    with_query,
)
from faults.wado import (
    INSTANCE,
    SERIES,
    STUDY,
    encoded,
    metadata_request,
    rewrite,
    via_proxy,
    with_accept,
)
from proof import OVER_A_REPAIR, PROMISE, register
from pydicom.datadict import keyword_for_tag
from pydicom.uid import ExplicitVRLittleEndian

from conformance import multipart
from conformance.model import tag_of

QIDO = "test_qido.py::"
WADO = "test_wado.py::"
DICOM_XML = "application/dicom+xml"
NATIVE_MODEL = "http://dicom.nema.org/PS3.19/models/NativeDICOM"
UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
REQUEST_ATTRIBUTES = "00400275"


def repair(
    name: str, passes: Iterable[str] = (), readings: dict[str, str] | None = None
) -> Callable[[Fault], Fault]:
    """Register a repair under ``name``, with the checks that must pass through it, and those
    that must record a reading of their rule (check -> reading: INFO naming it is their pass)."""
    return behaviour(name, passes, test="test_catalog_repairs.py", kind="repair", readings=readings)


# --- helpers ----------------------------------------------------------------------------------


def refusal(status: int, why: str) -> Answer:
    return Answer(status, {"Content-Type": "text/plain; charset=utf-8"}, why.encode())


def with_warning(answer: Answer, text: str) -> Answer:
    return Answer(answer.status, {**answer.headers, "Warning": f'299 repair "{text}"'}, answer.body)


def is_retrieve(request: Exchange) -> bool:
    return request.method == "GET" and any(
        p.search(request.path) for p in (STUDY, SERIES, INSTANCE)
    )


def prefix(request: Exchange) -> str:
    """The service root in the request's path: /dicom-web of /dicom-web/studies/..."""
    return re.split(r"/(studies|series|instances)(/|$)", request.path, maxsplit=1)[0]


def fetch_json(forward: Forward, request: Exchange, path: str, query: str = "") -> list[Any]:
    """Another GET of the server's DICOM JSON, as the request's client (empty: nothing)."""
    asked = dataclasses.replace(request, path=path, query=query, body=b"")
    answer = forward(with_accept(asked, DICOM_JSON))
    return search_results(answer) or []


def first(obj: dict[str, Any], tag: str) -> Any:
    found = obj.get(tag, {}).get("Value") or [None]
    return found[0]


def text_of(value: Any) -> str:
    """A JSON value as the query would spell it (PN: its groups joined with '=')."""
    if isinstance(value, dict):
        groups = [value.get(g, "") for g in ("Alphabetic", "Ideographic", "Phonetic")]
        return "=".join(groups).rstrip("=")
    return "" if value is None else str(value)


# --- media types (PS3.18 8.7) -----------------------------------------------------------------


def acceptable(media: str, params: dict[str, str], single_item: bool) -> bool:
    if media == "*/*":
        return True
    if media == "multipart/related":
        return params.get("type", "*/*") in ("application/dicom", "*/*")
    return media == "application/dicom" and single_item


@repair(
    "media-types-negotiated",
    passes=[
        f"{QIDO}test_missing_accept_is_406",
        f"{WADO}test_retrieve_without_accept_answers_406",
        f"{WADO}test_unacceptable_media_type_answers_406[application/json]",
        f"{WADO}test_single_part_media_type_for_several_instances_answers_406[study]",
        f"{WADO}test_single_part_media_type_for_several_instances_answers_406[series]",
        f"{WADO}test_multipart_type_wildcard_gets_the_default_media_type",
    ],
)
def media_types_negotiated(request: Exchange, forward: Forward) -> Answer:
    """406 without Accept or without an acceptable range; `type="*/*"` read as the default."""
    if not (is_retrieve(request) or is_search(request)):
        return forward(request)
    accept = header(request.headers, "accept")
    if not accept:
        return refusal(406, "Accept is required: this service has no default (PS3.18 8.7.5)")
    if not is_retrieve(request):
        return forward(request)
    single_item = INSTANCE.search(request.path) is not None
    kept = []
    for text in accept.split(","):
        media, params = multipart.parse_media_type(text)
        if acceptable(media, params, single_item):
            if media == "multipart/related" and params.get("type", "*/*") == "*/*":
                params = {**params, "type": "application/dicom"}
            kept.append("; ".join([media, *(f'{k}="{v}"' for k, v in params.items())]))
    if not kept:
        return refusal(406, f"no representation of this resource is acceptable: {accept}")
    return forward(with_accept(request, ", ".join(kept)))


def xml_parts(answer: Answer) -> Answer | None:
    """A DICOM JSON array answered as multipart/related DICOM XML (None: nothing to convert)."""
    results = search_results(answer)
    if not results:
        return None
    documents = [native_model(obj) for obj in results]
    body, content_type = multipart.encode_related(
        documents, part_type=DICOM_XML, root_type=DICOM_XML
    )
    return Answer(200, {"Content-Type": content_type}, body)


def native_model(obj: dict[str, Any]) -> bytes:
    """A DICOM JSON object in the Native DICOM Model of PS3.19 A.1."""
    root = ET.Element("NativeDicomModel", xmlns=NATIVE_MODEL)
    add_attributes(root, obj)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def add_attributes(parent: ET.Element, obj: dict[str, Any]) -> None:
    for tag, attribute in sorted(obj.items()):
        vr = attribute.get("vr", "UN")
        element = ET.SubElement(parent, "DicomAttribute", {"tag": tag, "vr": vr})
        keyword = keyword_for_tag(int(tag, 16))
        if keyword:
            element.set("keyword", keyword)
        for number, value in enumerate(attribute.get("Value", []), 1):
            if vr == "SQ":
                add_attributes(ET.SubElement(element, "Item", number=str(number)), value)
            elif vr == "PN":
                name = ET.SubElement(element, "PersonName", number=str(number))
                for group, text in value.items():
                    components = ET.SubElement(name, group)
                    for part, piece in zip(PN_PARTS, text.split("^"), strict=False):
                        if piece:
                            ET.SubElement(components, part).text = piece
            else:
                ET.SubElement(element, "Value", number=str(number)).text = str(value)
        if "BulkDataURI" in attribute:
            ET.SubElement(element, "BulkData", uri=attribute["BulkDataURI"])
        if "InlineBinary" in attribute:
            ET.SubElement(element, "InlineBinary").text = attribute["InlineBinary"]


PN_PARTS = ("FamilyName", "GivenName", "MiddleName", "NamePrefix", "NameSuffix")


@repair(
    "accept-query-parameter-honoured",
    passes=[
        f"{WADO}test_accept_query_parameter_overrides_header[rendered]",
        f"{WADO}test_accept_query_parameter_overrides_header[metadata]",
    ],
)
def accept_query_parameter_honoured(request: Exchange, forward: Forward) -> Answer:
    """The accept query parameter wins over the Accept header (PS3.18 8.3.3.1); metadata asked
    for as DICOM XML is made from the DICOM JSON."""
    pairs = query_pairs(request)
    wanted = [v for k, v in pairs if k == "accept"]
    if request.method != "GET" or not wanted:
        return forward(request)
    request = with_accept(with_query(request, [p for p in pairs if p[0] != "accept"]), wanted[0])
    if not (metadata_request(request) and DICOM_XML in wanted[0]):
        return forward(request)
    answer = forward(with_accept(request, DICOM_JSON))
    return xml_parts(answer) or answer


# --- status codes -----------------------------------------------------------------------------


@repair(
    "malformed-uids-refused",
    passes=[
        f"{WADO}test_malformed_uid_answers_400[letters]",
        f"{WADO}test_malformed_uid_answers_400[1..2]",
        f"{WADO}test_malformed_uid_answers_400[65-characters]",
        f"{WADO}test_malformed_uid_answers_400[instance-1..2]",
    ],
)
def malformed_uids_refused(request: Exchange, forward: Forward) -> Answer:
    """400 for a path whose study, series or instance UID breaks the UID grammar (PS3.5 9.1)."""
    names = request.path.split("/")
    for kind, value in itertools.pairwise(names):
        malformed = len(value) > 64 or not UID.fullmatch(value)
        if kind in ("studies", "series", "instances") and value and malformed:
            return refusal(400, f"{value!r} is not a UID")
    return forward(request)


@repair(
    "paging-values-validated",
    passes=[
        f"{QIDO}test_invalid_paging_value_is_bad_request[limit=-1]",
        f"{QIDO}test_invalid_paging_value_is_bad_request[offset=-1]",
    ],
)
def paging_values_validated(request: Exchange, forward: Forward) -> Answer:
    """400 for a limit or offset that is not an unsigned integer."""
    if is_search(request):
        for key, value in query_pairs(request):
            if key in ("limit", "offset") and not value.isdigit():
                return refusal(400, f"{key}={value!r}: {key} is an unsigned integer")
    return forward(request)


# --- metadata and bulk data -------------------------------------------------------------------


@repair(
    "bulk-data-parts-located",
    passes=[f"{WADO}test_bulkdata_part_has_content_location"],
)
def bulk_data_parts_located(request: Exchange, forward: Forward) -> Answer:
    """Each bulk data part says where it comes from (Content-Location, PS3.18 8.6.1.2)."""
    answer = forward(request)
    host = f"http://{header(request.headers, 'host')}"
    if metadata_request(request):
        return json_changed(answer, lambda objects: via_proxy(objects, host))
    if request.method != "GET" or "/bulk/" not in request.path:
        return answer
    location = host + request.path
    return rewrite(
        answer, lambda found: [({**h, "Content-Location": location}, b) for h, b in found]
    )


def instance_metadata_mended(mend: Callable[[dict[str, Any], pydicom.Dataset], None]) -> Fault:
    """A repair of instance metadata from the instance as stored (retrieved as it is): each
    metadata object is passed to ``mend`` with the stored dataset."""

    def apply(request: Exchange, forward: Forward) -> Answer:
        answer = forward(request)
        instance = request.path.removesuffix("/metadata")
        if not metadata_request(request) or not INSTANCE.search(instance):
            return answer
        asked = dataclasses.replace(request, path=instance, query="", body=b"")
        retrieved = forward(with_accept(asked, 'multipart/related; type="application/dicom"'))
        found = multipart.decode(retrieved.body, retrieved.headers.get("Content-Type", ""))
        stored = pydicom.dcmread(io.BytesIO(found[0].body), stop_before_pixels=True)

        def mended(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
            for obj in objects:
                mend(obj, stored)
            return objects

        return json_changed(answer, mended)

    return apply


def stored_character_set(obj: dict[str, Any], stored: pydicom.Dataset) -> None:
    """Specific Character Set as stored, an empty value kept as null (F.2.5): Orthanc drops
    the empty first value of a code-extension set such as '\\ISO 2022 IR 87'."""
    if "SpecificCharacterSet" in stored:
        values = stored["SpecificCharacterSet"].value
        values = [values] if isinstance(values, str) else list(values)
        obj["00080005"] = {"vr": "CS", "Value": [v or None for v in values]}


def stored_floats(obj: dict[str, Any], stored: pydicom.Dataset) -> None:
    """FL and FD values as stored: Orthanc writes an integral one of 2**32 or more wrapped
    around 32 bits (8180368217.0 as 3885400921)."""
    for element in stored:
        if element.VR in ("FL", "FD"):
            values = list(element.value) if element.VM > 1 else [element.value]
            obj[f"{element.tag:08X}"] = {"vr": element.VR, "Value": values}


repair(
    "character-set-kept-in-metadata",
    passes=["test_properties.py::test_metadata_keeps_the_stored_character_set"],
)(instance_metadata_mended(stored_character_set))
repair(
    "floats-kept-in-metadata",
    passes=["test_properties.py::test_metadata_keeps_numbers_of_every_size"],
)(instance_metadata_mended(stored_floats))


# --- stores -----------------------------------------------------------------------------------


@repair(
    "metadata-and-bulk-data-stored",
    passes=["test_stow.py::test_metadata_and_bulkdata_store_one_instance"],
)
def metadata_and_bulk_data_stored(request: Exchange, forward: Forward) -> Answer:
    """A store of DICOM JSON metadata with its bulk data parts (PS3.18 10.5.1.2.2), made into
    the instances they describe and stored as application/dicom (Orthanc answers 415)."""
    content_type = header(request.headers, "content-type")
    if request.method != "POST" or not STOW_PATH.search(request.path) or not content_type:
        return forward(request)
    if multipart.parse_media_type(content_type)[1].get("type") != DICOM_JSON:
        return forward(request)
    found = multipart.decode(request.body, content_type)
    bulk = {p.headers.get("content-location", ""): p.body for p in found[1:]}
    instances = []
    for obj in json.loads(found[0].body):
        ds = pydicom.Dataset.from_json(obj, bulk_data_uri_handler=lambda _t, _v, uri: bulk[uri])
        ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        instances.append(encoded(ds))
    body, content_type = multipart.encode_related(instances)
    headers = {**request.headers, "content-type": content_type}
    return forward(dataclasses.replace(request, headers=headers, body=body))


# --- searches ---------------------------------------------------------------------------------


@repair(
    "paging-warned",
    passes=[f"{QIDO}test_truncated_results_warn_of_more"],
)
def paging_warned(request: Exchange, forward: Forward) -> Answer:
    """A limited search that leaves matches out says how many (PS3.18 8.3.4.4)."""
    answer = forward(request)
    pairs = dict(query_pairs(request))
    results = search_results(answer) if is_search(request) and "limit" in pairs else None
    if not results:
        return answer
    everything = [(k, v) for k, v in query_pairs(request) if k not in ("limit", "offset")]
    total = len(search_results(forward(with_query(request, everything))) or [])
    more = total - int(pairs.get("offset", "0")) - len(results)
    if more <= 0:
        return answer
    return with_warning(answer, f"There are {more} additional results that can be requested")


@repair(
    "empty-value-matching-warned",
    passes=[f"{QIDO}test_emptyvaluematching_is_performed_or_warned"],
)
def empty_value_matching_warned(request: Exchange, forward: Forward) -> Answer:
    """The Warning of a server without Empty Value Matching (PS3.18 8.3.4.5)."""
    answer = forward(request)
    if is_search(request) and "emptyvaluematching" in dict(query_pairs(request)):
        return with_warning(answer, "The emptyvaluematching parameter is not supported")
    return answer


@repair(
    "relational-results-complete",
    passes=[
        f"{QIDO}test_relational_result_has_upper_level_attributes[series]",
        f"{QIDO}test_relational_result_has_upper_level_attributes[instances]",
        f"{QIDO}test_relational_result_has_upper_level_attributes[studies/{{study}}/instances]",
    ],
)
def relational_results_complete(request: Exchange, forward: Forward) -> Answer:
    """Series and instance results carry their study's (and series') attributes (Table 6.7.1-2)."""
    answer = forward(request)
    results = search_results(answer) if is_search(request) else None
    if not results or request.path.endswith("/studies"):
        return answer
    root = prefix(request)
    for obj in results:
        study, series = first(obj, "0020000D"), first(obj, "0020000E")
        upper = fetch_json(forward, request, f"{root}/studies", f"StudyInstanceUID={study}")
        if "00080018" in obj:
            path = f"{root}/studies/{study}/series"
            upper += fetch_json(forward, request, path, f"SeriesInstanceUID={series}")
        for record in upper:
            for tag, attribute in record.items():
                obj.setdefault(tag, attribute)
    return json_answer(answer, results)


def matched(obj: dict[str, Any], tag: str, value: str) -> bool:
    return any(text_of(v) == value for v in obj.get(tag, {}).get("Value") or [None])


def search_filtered_here(
    keys: Callable[[str], bool],
    keep: Callable[[dict[str, Any], list[tuple[str, str]]], bool],
    complete: Callable[[Exchange, Forward, dict[str, Any]], None] = lambda *_: None,
) -> Fault:
    """A repair that matches the query keys ``keys`` selects itself, by exact value: they are
    left out of the query forwarded, each result is ``complete``d, and those ``keep`` rejects
    for those keys and values are dropped."""

    def apply(request: Exchange, forward: Forward) -> Answer:
        if not is_search(request):
            return forward(request)
        pairs = query_pairs(request)
        here = [(k, v) for k, v in pairs if keys(k) and "*" not in v and "?" not in v]
        if not here:
            return forward(request)
        included = [("includefield", tag_of(k.split(".")[0])) for k, _ in here]
        answer = forward(with_query(request, [p for p in pairs if p not in here] + included))
        results = search_results(answer)
        if results is None:
            return answer
        for obj in results:
            complete(request, forward, obj)
        return json_answer(answer, [o for o in results if keep(o, here)])

    return apply


# Orthanc matches Study ID and Accession Number whatever their case, with or without wildcards
# (1.10, 1.12 and 1.13). Its answer is then a superset of the conforming one: this repair keeps
# the results whose own value matches case-sensitively (fnmatchcase: "*" any run, "?" one
# character). Percent-decoding and the name groups, which an earlier repair mended, Orthanc
# 1.13 and 1.12 now show passing themselves.
CASE_SENSITIVE_KEYS = {"StudyID": "00200010", "AccessionNumber": "00080050"}
CASE_SENSITIVE_KEYS |= {tag: tag for tag in list(CASE_SENSITIVE_KEYS.values())}


@repair(
    "text-matched-case-sensitively",
    passes=[
        f"{QIDO}test_non_person_name_match_is_case_sensitive[StudyID]",
        "test_properties.py::test_text_matches_only_in_its_own_case",
    ],
)
def text_matched_case_sensitively(request: Exchange, forward: Forward) -> Answer:
    answer = forward(request)
    results = search_results(answer) if is_search(request) else None
    if not results:
        return answer
    keys = [
        (CASE_SENSITIVE_KEYS[k], v) for k, v in query_pairs(request) if k in CASE_SENSITIVE_KEYS
    ]
    kept = [
        obj
        for obj in results
        if all(
            not value or fnmatch.fnmatchcase(text_of(first(obj, tag)), value) for tag, value in keys
        )
    ]
    return json_answer(answer, kept)


def is_request_attributes_path(key: str) -> bool:
    head = key.split(".")[0]
    return "." in key and head in (REQUEST_ATTRIBUTES, "RequestAttributesSequence")


def add_request_attributes(request: Exchange, forward: Forward, obj: dict[str, Any]) -> None:
    """The series' Request Attributes Sequence, from the metadata of its instances."""
    if "0020000E" not in obj or REQUEST_ATTRIBUTES in obj:
        return
    path = f"{prefix(request)}/studies/{first(obj, '0020000D')}/series/{first(obj, '0020000E')}"
    for instance in fetch_json(forward, request, f"{path}/metadata"):
        if REQUEST_ATTRIBUTES in instance:
            obj[REQUEST_ATTRIBUTES] = instance[REQUEST_ATTRIBUTES]
            return


def requested_items(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list(obj.get(REQUEST_ATTRIBUTES, {}).get("Value", []))


def item_matches(item: dict[str, Any], key: str, value: str) -> bool:
    return matched(item, tag_of(key.split(".")[1]), value)


def one_item_matches_all(obj: dict[str, Any], here: list[tuple[str, str]]) -> bool:
    """PS3.4 C.2.2.2.6: every key of the sequence matched by one and the same item."""
    return any(all(item_matches(i, k, v) for k, v in here) for i in requested_items(obj))


def each_key_in_some_item(obj: dict[str, Any], here: list[tuple[str, str]]) -> bool:
    return all(any(item_matches(i, k, v) for i in requested_items(obj)) for k, v in here)


# Orthanc neither returns nor matches sequences in searches (its Status.txt says so).
repair(
    "request-attributes-matched",
    passes=[
        f"{QIDO}test_sequence_item_matches_by_tag_path[00400275.00400009]",
        f"{QIDO}test_sequence_item_matches_by_tag_path[00400275.00401001]",
        f"{QIDO}test_series_match_required_key[ScheduledProcedureStepID]",
        f"{QIDO}test_series_match_required_key[RequestedProcedureID]",
        "test_properties.py::test_sequence_keys_match_within_one_item",
    ],
)(search_filtered_here(is_request_attributes_path, one_item_matches_all, add_request_attributes))

fault(
    "sequence-keys-matched-in-different-items",
    catches=["test_properties.py::test_sequence_keys_match_within_one_item"],
    where=OVER_A_REPAIR,
)(search_filtered_here(is_request_attributes_path, each_key_in_some_item, add_request_attributes))
"""Sequence matching that takes each key from any item (a join per key, not per item): a
series whose one item has the procedure and another the step is found. The fixed sequence
checks ask one key at a time, and pass."""


# A capability Orthanc 1.10 lacks: a profile promising it, over it, must turn its checks from
# NOT-IMPLEMENTED into FAIL. (They pass on Orthanc 1.12 and 1.13, which have the feature. The
# accept query parameter is no capability: Table 10.4.1-5 makes it mandatory, and Orthanc's
# FAIL there is its own.)
THUMBNAILS = [f"{WADO}test_thumbnail_is_one_jpeg[{v}]" for v in ("study", "series", "instance")]
register("promised-thumbnail-missing", THUMBNAILS, test="test_catalog_repairs.py", where=PROMISE)


DATETIME_KEYS = {"AcquisitionDateTime": "0008002A", "0008002A": "0008002A"}
_DT_RANGE = re.compile(r"(\d{14}(?:-\d{4})?)?-(\d{14}(?:-\d{4})?)?")


def _moment(value: str) -> Any:
    """A DT value as a moment in UTC, by pydicom (a value without an offset taken as UTC)."""
    moment = pydicom.valuerep.DT(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


@repair(
    "datetime-ranges-matched-as-moments",
    passes=["test_properties.py::test_datetime_ranges_take_the_offset_from_utc_into_account"],
)
def datetime_ranges_matched_as_moments(request: Exchange, forward: Forward) -> Answer:
    """A DT range matched as the moments its bounds and the values stand for (PS3.4
    C.2.2.2.5.3); Orthanc compares the digits, so 20200101000000+0000 is "after"
    20191231230000-0100, the same moment. The range is taken off the query, the attribute asked
    for with includefield, and the results filtered here."""
    pairs = query_pairs(request)
    ranges = [(k, v) for k, v in pairs if k in DATETIME_KEYS and _DT_RANGE.fullmatch(v)]
    if not is_search(request) or not ranges:
        return forward(request)
    rest = [p for p in pairs if p not in ranges]
    include = [("includefield", DATETIME_KEYS[k]) for k, _ in ranges]
    answer = forward(with_query(request, rest + include))
    results = search_results(answer)
    if results is None:
        return answer

    def inside(obj: dict[str, Any], tag: str, value: str) -> bool:
        low, high = cast(re.Match[str], _DT_RANGE.fullmatch(value)).groups()
        stored = first(obj, tag)
        if not stored:
            return False
        moment = _moment(str(stored))
        # An upper bound to the second stands for its whole second (as TM's do, C.2.2.2.5.2).
        last = _moment(high) + datetime.timedelta(microseconds=999999) if high else None
        return (not low or _moment(low) <= moment) and (last is None or moment <= last)

    kept = [o for o in results if all(inside(o, DATETIME_KEYS[k], v) for k, v in ranges)]
    return json_answer(answer, kept)
