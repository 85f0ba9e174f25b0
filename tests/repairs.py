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

import base64
import dataclasses
import datetime
import fnmatch
import html
import io
import json
import re
import struct
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
from faults.resources import via_proxy
from faults.wado import (
    DICOM_DEFAULT,
    INSTANCE,
    SERIES,
    STUDY,
    encoded,
    metadata_request,
    only_video_asked,
    rewrite,
    with_accept,
)
from faults.walkthrough import (
    MULTIPART_DICOM,
    asks_single_part_instance,
    flip_last_bytes,
    served_single_part,
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


# --- single-part retrieve (Table 10.4.4-1: optional) ---------------------------------------

SINGLE_PART_INSTANCE = f"{WADO}test_single_part_instance_retrieve"


@repair("single-part-served", passes=[SINGLE_PART_INSTANCE])
def single_part_served(request: Exchange, forward: Forward) -> Answer:
    """application/dicom served for an instance (Orthanc answers 400): the base of the fault
    below, which tiny-pacs (it has single-part retrieve and passes) cannot be run under."""
    return served_single_part(request, forward)


@fault("single-part-instance-corrupts", catches=[SINGLE_PART_INSTANCE], where=OVER_A_REPAIR)
def single_part_instance_corrupts(request: Exchange, forward: Forward) -> Answer:
    """retrieve-corrupts-pixels' storage or transcoding bug, on WADO-RS's single-part path."""
    return served_single_part(request, forward, flip_last_bytes)


# --- methods (PS3.18 Table 8.5-1) ------------------------------------------------------------

STUDIES_PATH = re.compile(r"/studies(/[^/]+)?$")


@repair(
    "methods-refused-405-with-allow",
    passes=[
        f"test_http.py::test_405_lists_the_allowed_methods[{name}]"
        for name in ("PATCH studies/{study}", "OPTIONS studies")
    ],
)
def methods_refused_405_with_allow(request: Exchange, forward: Forward) -> Answer:
    """405 with an Allow header (GET and POST: Retrieve or Search, and Store) to a method
    the studies resources do not support: "The origin server shall include an Allow header
    field in a 405 response" (PS3.18 Table 8.5-1). tiny-pacs answers 405 without it; Orthanc
    answers 400 (PATCH) and 404 (OPTIONS)."""
    if request.method in ("PATCH", "OPTIONS") and STUDIES_PATH.search(request.path):
        answer = refusal(405, f"{request.method} is not supported here")
        return Answer(405, {**answer.headers, "Allow": "GET, POST"}, answer.body)
    return forward(request)


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
    ],
    readings={
        f"{WADO}test_unacceptable_media_type_answers_406_or_the_default[application/json]": "406",
        f"{WADO}test_single_part_media_type_for_several_instances_answers_406_or_the_default"
        "[study]": "406",
        f"{WADO}test_single_part_media_type_for_several_instances_answers_406_or_the_default"
        "[series]": "406",
        f"{WADO}test_multipart_type_wildcard_gets_the_default_or_406": "default-media-type",
    },
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


MULTIPART = "multipart/related"
UNACCEPTABLE = f"{WADO}test_unacceptable_media_type_answers_406_or_the_default"


@repair(
    "unacceptable-media-type-served-default",
    readings={
        f"{UNACCEPTABLE}[application/json]": "default-media-type",
        f"{UNACCEPTABLE}[text/html]": "default-media-type",
    },
)
def unacceptable_media_type_served_default(request: Exchange, forward: Forward) -> Answer:
    """An instance asked for in no media type it has, answered in the default one (PS3.18 Table
    8.7.3-1, 8.7.3.1): the other reading than media-types-negotiated's 406."""
    accept = header(request.headers, "accept")
    if not is_retrieve(request) or not accept:
        return forward(request)
    single_item = INSTANCE.search(request.path) is not None
    ranges = [multipart.parse_media_type(text) for text in accept.split(",")]
    if any(acceptable(media, params, single_item) for media, params in ranges):
        return forward(request)
    return forward(with_accept(request, DICOM_DEFAULT))


@repair(
    "multipart-without-type-refused",
    readings={f"{WADO}test_multipart_without_type_gets_default_or_406": "406"},
)
def multipart_without_type_refused(request: Exchange, forward: Forward) -> Answer:
    """406 for Accept multipart/related without its required type parameter (PS3.18 8.7.1):
    the invalid value ignored (8.7.7), nothing acceptable is left (8.7.8.1). Every real server
    answers with the default instead."""
    accept = header(request.headers, "accept")
    if not is_retrieve(request) or not accept:
        return forward(request)
    ranges = [multipart.parse_media_type(text) for text in accept.split(",")]
    if all(media == MULTIPART and "type" not in params for media, params in ranges):
        return refusal(406, "multipart/related needs a type parameter (PS3.18 8.7.1)")
    return forward(request)


@repair(
    "unsupported-transfer-syntax-ignored",
    readings={
        f"{WADO}test_unsupported_transfer_syntax_answers_406_or_the_default": "parameter-ignored"
    },
)
def unsupported_transfer_syntax_ignored(request: Exchange, forward: Forward) -> Answer:
    """A transfer-syntax no codec makes (video, of a still image) ignored (PS3.18 8.7.7): the
    default transfer syntax is sent. Orthanc answers 500, tiny-pacs 406."""
    if not only_video_asked(request):
        return forward(request)
    return forward(with_accept(request, DICOM_DEFAULT))


TRANSFER_SYNTAXES = (
    "test_properties_roundtrip.py::"
    "test_a_retrieve_gives_the_transfer_syntax_asked_for_with_the_same_pixels"
)


@repair(
    "transfer-syntaxes-served-in-the-default", readings={TRANSFER_SYNTAXES: "parameter-ignored"}
)
def transfer_syntaxes_served_in_the_default(request: Exchange, forward: Forward) -> Answer:
    """Every transfer-syntax asked for but Explicit VR Little Endian ignored, as by a server
    without a transcoder (PS3.18 8.7.7): the instance comes in the default syntax (8.7.3.4).
    Orthanc transcodes, tiny-pacs refuses with 406."""
    asked = re.search(r'transfer-syntax="?([0-9.]+)', header(request.headers, "accept"))
    if not is_retrieve(request) or asked is None or asked[1] == str(ExplicitVRLittleEndian):
        return forward(request)
    return forward(with_accept(request, DICOM_DEFAULT))


# The article's instance retrieve asks for application/dicom alone; Orthanc answers 400. 2024c
# allows two answers from a server without it (ARTICLE-RETRIEVE-INSTANCE-UNSUPPORTED-MEDIA-TYPE):
# each repair gives one, and the check records it. (tiny-pacs gives the third, single-part.)
ASKED_SINGLE_PART = (
    "test_walkthrough.py::test_instance_retrieve_returns_red_triangle[accept=application/dicom]"
)


@repair("single-part-refused-406", readings={ASKED_SINGLE_PART: "406"})
def single_part_refused_406(request: Exchange, forward: Forward) -> Answer:
    """406 to an instance asked for as application/dicom alone (PS3.18 8.7.8.1 step 5)."""
    if asks_single_part_instance(request):
        return refusal(406, f"application/dicom is not offered for instances; {MULTIPART_DICOM} is")
    return forward(request)


@repair(
    "single-part-answered-in-default-media-type",
    readings={ASKED_SINGLE_PART: "default-media-type"},
)
def single_part_answered_in_default_media_type(request: Exchange, forward: Forward) -> Answer:
    """The same request answered in the default media type, multipart/related;
    type="application/dicom" (PS3.18 Table 8.7.3-1, 8.7.3.1, 8.3.3.1)."""
    if asks_single_part_instance(request):
        return forward(with_accept(request, f"{MULTIPART_DICOM}; transfer-syntax=*"))
    return forward(request)


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


# --- rendering of what has no image --------------------------------------------------------------

RENDERED_INSTANCE = re.compile(r"^(?P<instance>.*/instances/[^/]+)/rendered$")
SR_RENDERED = f"{WADO}test_an_sr_is_never_rendered_as_an_image"


def without_pixels(request: Exchange, forward: Forward) -> dict[str, Any] | None:
    """The metadata of the instance a rendered request asks for, if it has no Pixel Data."""
    found = RENDERED_INSTANCE.search(request.path) if request.method == "GET" else None
    objects = fetch_json(forward, request, f"{found['instance']}/metadata") if found else []
    if not objects or "7FE00010" in objects[0]:
        return None
    return cast(dict[str, Any], objects[0])


def as_html(obj: dict[str, Any]) -> Answer:
    """A Text rendering (text/html, PS3.18 Table 8.7.4-1): the top-level values, one a row."""
    rows = "".join(
        f"<tr><th>{html.escape(keyword_for_tag(int(tag, 16)) or tag)}</th>"
        f"<td>{html.escape(text_of(first(obj, tag)))}</td></tr>"
        for tag in sorted(obj)
        if obj[tag].get("vr") != "SQ"
    )
    body = f"<!DOCTYPE html><html><body><table>{rows}</table></body></html>".encode()
    return Answer(200, {"Content-Type": "text/html; charset=utf-8"}, body)


@repair("sr-rendered-as-html", readings={SR_RENDERED: "default-media-type"})
def sr_rendered_as_html(request: Exchange, forward: Forward) -> Answer:
    """An instance without pixels rendered in its category's default, text/html, whatever was
    asked (PS3.18 Table 8.7.3-1); Orthanc renders no SR (400)."""
    obj = without_pixels(request, forward)
    return forward(request) if obj is None else as_html(obj)


@repair("sr-rendering-refused-406", readings={SR_RENDERED: "406"})
def sr_rendering_refused_406(request: Exchange, forward: Forward) -> Answer:
    """An instance without pixels asked for as an image: 406, as its Text category has no image
    type (PS3.18 8.7.8.1); asked for as text, rendered."""
    obj = without_pixels(request, forward)
    if obj is None:
        return forward(request)
    if "text/" in header(request.headers, "accept"):
        return as_html(obj)
    return refusal(406, "an instance without pixel data has no image rendering")


# --- status codes -----------------------------------------------------------------------------


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
    passes=["test_properties_roundtrip.py::test_metadata_keeps_the_stored_character_set"],
)(instance_metadata_mended(stored_character_set))
repair(
    "floats-kept-in-metadata",
    passes=["test_properties_roundtrip.py::test_metadata_keeps_numbers_of_every_size"],
)(instance_metadata_mended(stored_floats))


# --- stores -----------------------------------------------------------------------------------


@repair(
    "metadata-and-bulk-data-stored",
    passes=["test_stow_failures.py::test_metadata_and_bulkdata_store_one_instance"],
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


# Warning headers on store answers: RFC 7234's form or PS3.18 10.5.3.2's DICOM status form
# (STOW-WARNING-HEADER-SYNTAX). No real server sends either; a repair gives each.
STORE_WARNINGS = "test_stow_failures.py::test_warning_headers_on_store_responses_are_well_formed"


def is_store(request: Exchange) -> bool:
    return request.method == "POST" and STOW_PATH.search(request.path) is not None


@repair("store-failure-warned-rfc7234", readings={STORE_WARNINGS: "rfc7234"})
def store_failure_warned_rfc7234(request: Exchange, forward: Forward) -> Answer:
    """A store failure answer with a Warning in RFC 7234 5.5's form."""
    answer = forward(request)
    if not is_store(request) or answer.status < 400:
        return answer
    return with_warning(answer, "The instances were not stored")


@repair("store-failure-warned-with-dicom-status", readings={STORE_WARNINGS: "dicom-status"})
def store_failure_warned_with_dicom_status(request: Exchange, forward: Forward) -> Answer:
    """A store failure answer with a Warning carrying the DICOM status of its Failure Reason,
    as PS3.18 10.5.3.2 recommends ("Warning: A700 <service>: Out of memory")."""
    answer = forward(request)
    if not is_store(request) or answer.status < 400:
        return answer
    try:
        module = json.loads(answer.body)
        failed = module["00081198"]["Value"]
        code = int(failed[0]["00081197"]["Value"][0])
    except (ValueError, KeyError, IndexError, TypeError):
        return answer  # no Failure Reason to report
    warning = f"{code:04X} orthanc: Instance not stored"
    return Answer(answer.status, {**answer.headers, "Warning": warning}, answer.body)


# --- searches ---------------------------------------------------------------------------------


def more_results(request: Exchange, forward: Forward, answer: Answer) -> int:
    """How many matches a limited search leaves out (0 for any other answer)."""
    pairs = dict(query_pairs(request))
    results = search_results(answer) if is_search(request) and "limit" in pairs else None
    if not results:
        return 0
    everything = [(k, v) for k, v in query_pairs(request) if k not in ("limit", "offset")]
    total = len(search_results(forward(with_query(request, everything))) or [])
    return total - int(pairs.get("offset", "0")) - len(results)


@repair(
    "paging-warned",
    readings={f"{QIDO}test_truncated_results_warn_of_more": "remaining-text"},
)
def paging_warned(request: Exchange, forward: Forward) -> Answer:
    """A limited search that leaves matches out says how many (PS3.18 8.3.4.4)."""
    answer = forward(request)
    more = more_results(request, forward, answer)
    if more <= 0:
        return answer
    return with_warning(answer, f"There are {more} additional results that can be requested")


@repair(
    "empty-value-matching-warned",
    readings={f"{QIDO}test_emptyvaluematching_is_performed_or_warned": "not-supported-text"},
)
def empty_value_matching_warned(request: Exchange, forward: Forward) -> Answer:
    """The Warning of a server without Empty Value Matching (PS3.18 8.3.4.5)."""
    answer = forward(request)
    if is_search(request) and "emptyvaluematching" in dict(query_pairs(request)):
        return with_warning(answer, "The emptyvaluematching parameter is not supported")
    return answer


@repair(
    "fuzzy-matching-warned",
    readings={f"{QIDO}test_fuzzymatching_without_support_warns": "not-supported-text"},
)
def fuzzy_matching_warned(request: Exchange, forward: Forward) -> Answer:
    """The Warning of a server without Fuzzy Matching (PS3.18 8.3.4.2): Orthanc ignores the
    parameter (its Status.txt: 'Ignored [...] Flag "fuzzymatching"'), so its matching is the
    literal one the Warning announces."""
    answer = forward(request)
    if is_search(request) and ("fuzzymatching", "true") in query_pairs(request):
        text = "The fuzzymatching parameter is not supported. Only literal matching has been"
        return with_warning(answer, f"{text} performed.")
    return answer


@repair(
    "search-warnings-as-status-report-urls",
    readings={
        f"{QIDO}test_truncated_results_warn_of_more": "status-report-url",
        f"{QIDO}test_fuzzymatching_without_support_warns": "status-report-url",
        f"{QIDO}test_emptyvaluematching_is_performed_or_warned": "status-report-url",
    },
)
def search_warnings_as_status_report_urls(request: Exchange, forward: Forward) -> Answer:
    """Table 10.6.3-1's form of the search Warnings: 'If there are additional results available
    or there are warnings the Warning header field shall contain a URL referencing a Search
    Status report' (matches left out by limit; fuzzymatching or emptyvaluematching, which
    Orthanc ignores)."""
    answer = forward(request)
    if not is_search(request) or answer.status != 200:
        return answer
    pairs = query_pairs(request)
    ignored = [k for k, v in pairs if k in ("fuzzymatching", "emptyvaluematching") and v == "true"]
    if not ignored and more_results(request, forward, answer) <= 0:
        return answer
    service = f"http://{header(request.headers, 'host')}{prefix(request)}"
    report = f"{service}/search-status/{abs(hash(request.query)):x}"
    headers = {**answer.headers, "Warning": f'299 {service} "{report}"'}
    return Answer(answer.status, headers, answer.body)


@repair(
    "relational-results-complete",
    passes=[
        f"{QIDO}test_relational_result_has_upper_level_attributes[series]",
        f"{QIDO}test_relational_result_has_upper_level_attributes[instances]",
        f"{QIDO}test_relational_result_has_upper_level_attributes[studies/{{study}}/instances]",
    ],
)
def relational_results_complete(request: Exchange, forward: Forward) -> Answer:
    """Series and instance results carry their study's (and series') attributes (PS3.18
    10.6.3.3.2, 10.6.3.3.3)."""
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
    # The case property needs no repair: tiny-pacs keeps case, and passes it.
    passes=[f"{QIDO}test_non_person_name_match_is_case_sensitive[StudyID]"],
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


def person_name_components(name: str) -> list[str]:
    """A name's components, in lower case and any order (its first group only)."""
    return sorted(c.lower() for c in re.split(r"[\^ ]", name.split("=")[0]) if c)


PERSON_NAME_KEYS = {"PatientName", "00100010", "ReferringPhysicianName", "00080090"}
person_names_matched_here = search_filtered_here(
    lambda key: key in PERSON_NAME_KEYS,
    lambda obj, here: all(
        person_name_components(text_of(first(obj, tag_of(k)))) == person_name_components(v)
        for k, v in here
    ),
)


@repair(
    "person-names-matched-fuzzily",
    passes=[
        f"{QIDO}test_fuzzy_matching_is_recorded",
        f"{QIDO}test_fuzzymatching_without_support_warns",
    ],
)
def person_names_matched_fuzzily(request: Exchange, forward: Forward) -> Answer:
    """Fuzzy Matching of Person Names with fuzzymatching=true (PS3.18 8.3.4.2): insensitive to
    case and to the position of the components (two of the ways PS3.4 C.2.2.2.1.1 allows),
    done here on the names Orthanc returns; with fuzzymatching=false, Orthanc's own matching."""
    if is_search(request) and ("fuzzymatching", "true") in query_pairs(request):
        return person_names_matched_here(request, forward)
    return forward(request)


# A capability Orthanc 1.10 lacks: a profile promising it, over it, must turn its checks from
# NOT-IMPLEMENTED into FAIL. (They pass on Orthanc 1.12 and 1.13, which have the feature. The
# accept query parameter is no capability: Table 10.4.1-5 makes it mandatory, and Orthanc's
# FAIL there is its own.)
THUMBNAILS = [f"{WADO}test_thumbnails_at_every_level_are_one_jpeg_or_none_exist"]
register("promised-thumbnail-missing", THUMBNAILS, test="test_catalog_repairs.py", where=PROMISE)

THUMBNAIL = re.compile(r"^(?P<resource>.*)/thumbnail$")


def thumbnail_level(resource: str) -> str:
    if "/frames/" in resource:
        return "frame"
    if INSTANCE.search(resource):
        return "instance"
    return "series" if SERIES.search(resource) else "study"


def thumbnails_from_rendered(missing: str | None = None) -> Fault:
    """Thumbnails a gateway makes of Orthanc 1.10's rendered resources (it has no thumbnail
    route): each .../thumbnail answered by .../rendered as image/jpeg, but the level
    ``missing``, 404."""

    def apply(request: Exchange, forward: Forward) -> Answer:
        found = THUMBNAIL.search(request.path) if request.method == "GET" else None
        if found is None:
            return forward(request)
        if thumbnail_level(found["resource"]) == missing:
            return refusal(404, f"no {missing} thumbnail")
        asked = dataclasses.replace(request, path=f"{found['resource']}/rendered")
        return forward(with_accept(asked, "image/jpeg"))

    return apply


# The mechanism of the fault below. (Orthanc 1.12 and 1.13 pass the check themselves.)
repair("thumbnails-from-rendered", passes=THUMBNAILS)(thumbnails_from_rendered())
fault("series-thumbnail-missing", catches=THUMBNAILS, where=OVER_A_REPAIR)(
    thumbnails_from_rendered("series")
)
"""Thumbnails of a study, an instance and a frame, but none of a series: a server that made
the thumbnails its viewer shows, where PS3.18 10.4.1.1.4 wants all levels or none."""


DATETIME_KEYS = {"AcquisitionDateTime": "0008002A", "0008002A": "0008002A"}
_DT_RANGE = re.compile(r"(\d{14}(?:[+-]\d{4})?)?-(\d{14}(?:[+-]\d{4})?)?")


def _moment(value: str) -> Any:
    """A DT value as a moment in UTC, by pydicom (a value without an offset taken as UTC)."""
    moment = pydicom.valuerep.DT(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


@repair(
    "datetime-ranges-matched-as-moments",
    passes=[
        "test_properties.py::test_datetime_ranges_take_the_offset_from_utc_into_account",
        "test_properties.py::test_datetime_ranges_at_positive_offsets_match_as_moments",
    ],
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


# Invalid values of a search's Query Parameters: PS3.18 8.3 allows a 400 (a supported parameter)
# or the parameter ignored (an unsupported one). Orthanc gives neither for most (StudyDate=abc
# finds nothing, limit=-1 is a 500): each repair gives one, and the check records it.
INVALID_QUERY_VALUES = (
    "test_properties_bad_input.py::test_invalid_query_values_get_400_or_are_ignored"
)
_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")


def _is_date(text: str) -> bool:
    """YYYYMMDD, a day that exists (PS3.5 Table 6.2-1, DA)."""
    if not re.fullmatch(r"[0-9]{8}", text):
        return False
    try:
        datetime.datetime.strptime(text, "%Y%m%d")
    except ValueError:
        return False
    return True


def _is_time(text: str) -> bool:
    """HH[MM[SS[.F{1,6}]]] within a day (PS3.5 Table 6.2-1, TM)."""
    found = re.fullmatch(r"([0-9]{2})(?:([0-9]{2})(?:([0-9]{2})(?:\.[0-9]{1,6})?)?)?", text)
    if found is None:
        return False
    hours, minutes, seconds = (int(part or 0) for part in found.groups())
    return hours < 24 and minutes < 60 and seconds < 60


def _is_range_of(valid: Callable[[str], bool], value: str) -> bool:
    """A single value or a range with at least one end (PS3.4 C.2.2.2.5)."""
    low, dash, high = value.partition("-")
    if not dash:
        return valid(value)
    return bool(low or high) and all(valid(end) for end in (low, high) if end)


def _is_attribute(text: str) -> bool:
    return text == "all" or all(
        re.fullmatch(r"[0-9A-Fa-f]{8}", part) or pydicom.datadict.tag_for_keyword(part)
        for part in text.split(".")
    )


VALID_QUERY_VALUES: dict[str, Callable[[str], bool]] = {
    "StudyDate": lambda v: _is_range_of(_is_date, v),
    "StudyTime": lambda v: _is_range_of(_is_time, v),
    "limit": lambda v: re.fullmatch(r"[0-9]+", v) is not None,
    "offset": lambda v: re.fullmatch(r"[0-9]+", v) is not None,
    "StudyInstanceUID": lambda v: all(len(u) <= 64 and _UID.fullmatch(u) for u in v.split(",")),
    "includefield": lambda v: all(_is_attribute(field) for field in v.split(",")),
    "fuzzymatching": lambda v: v in ("true", "false"),
}


def invalid_query_values(request: Exchange) -> list[tuple[str, str]]:
    if not is_search(request):
        return []
    pairs = query_pairs(request)
    return [(k, v) for k, v in pairs if k in VALID_QUERY_VALUES and not VALID_QUERY_VALUES[k](v)]


@repair("invalid-query-values-refused-400", readings={INVALID_QUERY_VALUES: "400"})
def invalid_query_values_refused_400(request: Exchange, forward: Forward) -> Answer:
    """400 to a search with an invalid value of a parameter it supports (PS3.18 8.3)."""
    invalid = invalid_query_values(request)
    if invalid:
        return refusal(400, f"invalid Query Parameter values: {invalid}")
    return forward(request)


@repair("invalid-query-values-ignored", readings={INVALID_QUERY_VALUES: "ignored"})
def invalid_query_values_ignored(request: Exchange, forward: Forward) -> Answer:
    """A search processed as if its parameters with invalid values were not present, as by a
    server that does not support them (PS3.18 8.3)."""
    invalid = invalid_query_values(request)
    if invalid:
        request = with_query(request, [p for p in query_pairs(request) if p not in invalid])
    return forward(request)


# --- DICOM JSON and HTTP (test_json.py, test_http.py) -----------------------------------------

JSON = "test_json.py::"
GREEK_UTF8 = f"{JSON}test_names_in_other_character_sets_come_back_as_utf8[charset_greek]"
BINARY_FORMS = f"{JSON}test_inline_binary_and_bulkdata_uri_are_well_formed"
WARNINGS = "test_http.py::test_warning_headers_follow_the_http_grammar"
UTF8_CHARSETS = ("ISO_IR 192", "ISO_IR 6", "", None)


@repair("metadata-not-transcoded-406", readings={GREEK_UTF8: "406"})
def metadata_not_transcoded_406(request: Exchange, forward: Forward) -> Answer:
    """406 to metadata holding text stored in another character set than UTF-8, as a server
    that cannot transcode it answers (PS3.18 8.8.5: "Otherwise, the origin server shall return
    406 (Not Acceptable)")."""
    answer = forward(request)
    if not metadata_request(request) or answer.status != 200:
        return answer
    objects = json.loads(answer.body)
    charsets = {value for obj in objects for value in obj.get("00080005", {}).get("Value", [None])}
    others = charsets - set(UTF8_CHARSETS)
    if others:
        return refusal(406, f"cannot transcode {sorted(others)} into UTF-8")
    return answer


@repair(
    "metadata-us-as-inline-binary",
    readings={
        f"{BINARY_FORMS}[{kind}]": "f27-us" for kind in ("study-metadata", "synthetic-metadata")
    },
)
def metadata_us_as_inline_binary(request: Exchange, forward: Forward) -> Answer:
    """US values in metadata as InlineBinary, their little-endian bytes in base64, as PS3.18
    F.2.7's example has it ("a US VR with a VL of 8192 and a VM of 4096 would ... be represented
    as a single InlineBinary string")."""

    def inline(objects: Any) -> Any:
        for obj in objects if isinstance(objects, list) else []:
            for attribute in obj.values():
                values = attribute.get("Value") if isinstance(attribute, dict) else None
                if attribute.get("vr") == "US" and isinstance(values, list):
                    data = struct.pack(f"<{len(values)}H", *values)
                    del attribute["Value"]
                    attribute["InlineBinary"] = base64.b64encode(data).decode()
        return objects

    answer = forward(request)
    return json_changed(answer, inline) if metadata_request(request) else answer


def warned_when_cut_short(request: Exchange, forward: Forward, warning: str) -> Answer:
    """A search answer with ``warning`` when it holds as many results as its limit (so more may
    remain: PS3.18 8.3.4.4.1, "If (remaining > 0) the response shall include a Warning")."""
    answer = forward(request)
    limit = dict(query_pairs(request)).get("limit", "") if is_search(request) else ""
    results = search_results(answer)
    if not limit.isdigit() or results is None or len(results) < int(limit):
        return answer
    return Answer(answer.status, {**answer.headers, "Warning": warning}, answer.body)


@repair("search-cut-short-warned-rfc7234", readings={WARNINGS: "rfc7234"})
def search_cut_short_warned_rfc7234(request: Exchange, forward: Forward) -> Answer:
    """The Warning in RFC 7234 5.5's form, its text a quoted-string."""
    text = '299 repair "There are additional results that can be requested"'
    return warned_when_cut_short(request, forward, text)


@repair("search-cut-short-warned-as-ps3-18", readings={WARNINGS: "ps3-18-unquoted"})
def search_cut_short_warned_as_ps3_18(request: Exchange, forward: Forward) -> Answer:
    """The Warning as PS3.18 8.3.4.4.1 writes it: "Warning: 299 <service>: There are
    <remaining> additional results that can be requested"."""
    service = header(request.headers, "host") or "repair"
    text = f"299 {service}: There are additional results that can be requested"
    return warned_when_cut_short(request, forward, text)
