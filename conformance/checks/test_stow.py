"""STOW-RS, the Store transaction (PS3.18 10.5): status codes (Table 10.5.3-1), the Store
Instances Response Module (Annex I) and the multipart requests it accepts (8.7.3.5).

A 200 proves nothing until the instance is read back: every check that stores retrieves what it
stored (WADO-RS, transfer-syntax=*) or searches for it (QIDO-RS), and every refusal is checked to
have stored nothing. What is read back may differ from what was sent only where the server
recorded the change (10.5.2, 10.5.3: Original Attributes Sequence). Each check judges one rule: a
fidelity check does not also judge the response module, a status check not the fidelity. Every
check stores fresh copies (``new_study``, ``new_synthetic``) that the run deletes afterwards.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit

import numpy as np
import pytest
import requests
from pydicom.dataset import Dataset
from pydicom.tag import BaseTag, Tag

from conformance import expect, multipart
from conformance.client import Client
from conformance.dicomweb import (
    DICOM,
    DICOM_JSON,
    FAILED_SOP_SEQUENCE,
    FAILURE_REASON,
    OCTET_STREAM,
    REFERENCED_SOP_CLASS_UID,
    REFERENCED_SOP_INSTANCE_UID,
    REFERENCED_SOP_SEQUENCE,
    SOP_UID,
    STUDY_UID,
    ProtocolError,
    failed_sop_uids,
    failure_reasons,
    first_value,
    instance_path,
    referenced_sop_uids,
    retrieve,
    search,
    search_results,
    sequence_items,
    store_module,
    store_module_if_any,
    stow,
    uids,
    values,
    warning_reasons,
)
from conformance.run.fixtures import NewStudy, NewSynthetic
from conformance.samples import Instance
from conformance.synthetic import implicit_vr_copy

Module = dict[str, Any]

# Store Instances Response Module attributes (PS3.18 Annex I) beyond those dicomweb.py names.
RETRIEVE_URL = "00081190"
ORIGINAL_ATTRIBUTES_SEQUENCE = Tag(0x0400, 0x0561)
MODIFIED_ATTRIBUTES_SEQUENCE = Tag(0x0400, 0x0550)
PIXEL_DATA = Tag(0x7FE0, 0x0010)
SOP_CLASS_NOT_SUPPORTED = 0x0122  # Failure Reason 290 (I.2.2)
TRANSFER_SYNTAX_NOT_SUPPORTED = 0xC122  # Failure Reason 49442 (I.2.2)
# The two forms of a Warning value (STOW-WARNING-HEADER-SYNTAX's readings): RFC 7234 5.5's
# warn-code SP warn-agent SP warn-text, and PS3.18 10.5.3.2's own example, a 4-hex-digit DICOM
# status where the warn-code goes ("A700 <service>: Out of memory"). The text need not be quoted:
# PS3.18 writes its 299 warnings unquoted.
RFC7234_WARNING = re.compile(r"^\d{3} [^\s,]+ \S.*$")
DICOM_STATUS_WARNING = re.compile(r"^[0-9A-Fa-f]{4} [^\s,]+ \S.*$")
INSTANCE_RESOURCE = re.compile(r"/studies/([^/?#]+)/series/([^/?#]+)/instances/([^/?#]+)/?$")


# --- requests ------------------------------------------------------------------------------------


def post(
    client: Client,
    body: bytes,
    content_type: str,
    study_uid: str | None = None,
    accept: str | None = DICOM_JSON,
) -> requests.Response:
    """POST a store request exactly as given (body and Content-Type built by the check)."""
    headers = {"Content-Type": content_type}
    if accept is not None:
        headers["Accept"] = accept
    return client.post(
        f"studies/{study_uid}" if study_uid else "studies", body=body, headers=headers
    )


def raw_multipart(parts: Sequence[tuple[Sequence[str], bytes]], boundary: str) -> bytes:
    """A multipart body whose part headers are given line by line (none at all is allowed)."""
    out = bytearray()
    for header_lines, body in parts:
        head = "".join(f"{line}\r\n" for line in header_lines)
        out += f"--{boundary}\r\n{head}\r\n".encode("ascii") + body + b"\r\n"
    out += f"--{boundary}--\r\n".encode("ascii")
    return bytes(out)


def field_lines(response: requests.Response, name: str) -> list[str]:
    """Each ``name`` header field line of the answer as sent: requests joins repeated lines
    with commas, which hides a singleton field sent twice."""
    raw: Any = response.raw
    headers = getattr(raw, "headers", None)
    if headers is not None and hasattr(headers, "getlist"):
        return [str(v) for v in headers.getlist(name)]
    value = response.headers.get(name)
    return [value] if value is not None else []


def media_type_of(value: str) -> str | None:
    try:
        return multipart.parse_media_type(value)[0]
    except multipart.MultipartError:
        return None


# --- the Store Instances Response Module ----------------------------------------------------------


def assert_references(module: Module, instances: Sequence[Instance]) -> None:
    """ReferencedSOPSequence names exactly these instances, each with its SOP Class UID."""
    found = sequence_items(module, REFERENCED_SOP_SEQUENCE)
    got = sorted(str(first_value(i, REFERENCED_SOP_INSTANCE_UID)) for i in found)
    assert got == sorted(i.sop_uid for i in instances), (
        f"ReferencedSOPSequence (0008,1199) names {got}, expected {[i.sop_uid for i in instances]}"
    )
    classes = {i.sop_uid: str(i.dataset.SOPClassUID) for i in instances}
    for item in found:
        sop = first_value(item, REFERENCED_SOP_INSTANCE_UID)
        sop_class = first_value(item, REFERENCED_SOP_CLASS_UID)
        assert sop_class == classes[sop], (
            f"the item of {sop} has ReferencedSOPClassUID {sop_class!r}, expected {classes[sop]}"
        )


def assert_failed(module: Module, instance: Instance) -> None:
    """FailedSOPSequence names the instance, with its SOP Class UID and a US Failure Reason."""
    found = [
        i
        for i in sequence_items(module, FAILED_SOP_SEQUENCE)
        if first_value(i, REFERENCED_SOP_INSTANCE_UID) == instance.sop_uid
    ]
    assert found, (
        f"FailedSOPSequence (0008,1198) does not name {instance.sop_uid}: it names "
        f"{failed_sop_uids(module)}"
    )
    item = found[0]
    sop_class = first_value(item, REFERENCED_SOP_CLASS_UID)
    assert sop_class == str(instance.dataset.SOPClassUID), (
        f"the failed item has ReferencedSOPClassUID {sop_class!r}, "
        f"expected {instance.dataset.SOPClassUID}"
    )
    reason = item.get(FAILURE_REASON)
    assert isinstance(reason, dict), "the failed item has no Failure Reason (0008,1197): Type 1"
    assert reason.get("vr") == "US", f"Failure Reason has VR {reason.get('vr')!r}, not US"
    code = values(item, FAILURE_REASON)
    assert len(code) == 1 and isinstance(code[0], int) and not isinstance(code[0], bool), (
        f"Failure Reason is {code!r}, not one unsigned short"
    )
    assert 0 <= code[0] <= 0xFFFF, f"Failure Reason {code[0]} is not an unsigned short"


def retrieve_url(obj: Module, where: str) -> str | None:
    """The Retrieve URL (0008,1190) of a module or item: present (Type 2), VR UR; None if empty."""
    attribute = obj.get(RETRIEVE_URL)
    assert attribute is not None, (
        f"{where} has no Retrieve URL (0008,1190): it is Type 2, present even when empty"
    )
    if not isinstance(attribute, dict):
        raise ProtocolError(f"{where}: Retrieve URL is not a JSON object: {attribute!r}")
    assert attribute.get("vr") == "UR", (
        f"{where}: Retrieve URL has VR {attribute.get('vr')!r}, not UR (Annex I)"
    )
    found = values(obj, RETRIEVE_URL)
    if not found:
        return None
    assert len(found) == 1 and isinstance(found[0], str) and found[0], (
        f"{where}: Retrieve URL is {found!r}, not one URL"
    )
    return str(found[0])


def reachable(client: Client, url: str) -> str:
    """Where to GET a Retrieve URL: itself on the base URL's origin (relative ones resolved
    against it); on another origin (a proxy, a public name) the same resource path under the
    base URL, so that credentials never go to a host the run was not given."""
    base = client.base_url + "/"
    absolute = urljoin(base, url)
    if urlsplit(absolute)[:2] == urlsplit(base)[:2]:
        return absolute
    path = urlsplit(absolute).path
    index = path.rfind("/studies/")
    assert index != -1, f"Retrieve URL {url} names no studies resource"
    return path[index + 1 :]


# --- reading back ---------------------------------------------------------------------------------


def read_back(client: Client, instance: Instance) -> Dataset | None:
    """The stored instance (transfer-syntax=*), or None when the server answers 404."""
    response = retrieve(client, instance_path(instance))
    if response.status_code == 404:
        response.close()
        return None
    expect.status(response, 200, why="reading back a stored instance")
    datasets = expect.dicom_parts(client, response)
    assert len(datasets) == 1, f"retrieving one instance gave {len(datasets)} parts"
    return datasets[0]


def assert_not_stored(client: Client, instance: Instance, why: str) -> None:
    response = retrieve(client, instance_path(instance))
    response.close()
    expect.status(response, 404, why=why)


def _compare_pixels_decoded(got: Dataset, sent: Dataset) -> bool:
    got_ts = got.file_meta.TransferSyntaxUID if "TransferSyntaxUID" in got.file_meta else None
    sent_ts = sent.file_meta.TransferSyntaxUID
    return PIXEL_DATA in sent and (
        got_ts != sent_ts or sent_ts.is_compressed or (got_ts is not None and got_ts.is_compressed)
    )


def _pixels(ds: Dataset) -> Any:
    try:
        return ds.pixel_array
    except Exception as exc:  # pydicom raises many types; the suite cannot compare, not a FAIL
        syntax = ds.file_meta.get("TransferSyntaxUID", "unknown")
        raise expect.PreconditionFailed(
            f"cannot decode PixelData in transfer syntax {syntax}: {exc}"
        ) from exc


def changes(got: Dataset, sent: Dataset) -> list[BaseTag]:
    """Attributes of ``sent`` removed or given another value in ``got`` (group 0002 aside).

    Attributes the server added are not changes. Pixel data is compared decoded when either side
    is compressed or the transfer syntaxes differ (transfer-syntax=* lets the server pick one).
    """
    decoded = _compare_pixels_decoded(got, sent)
    changed = []
    for element in sent:
        if element.tag.group == 2:
            continue
        if decoded and element.tag == PIXEL_DATA:
            if not (PIXEL_DATA in got and np.array_equal(_pixels(got), _pixels(sent))):
                changed.append(element.tag)
            continue
        other = got.get(element.tag)
        if other is None or other.value != element.value:
            changed.append(element.tag)
    return changed


def _items_of(ds: Dataset, tag: BaseTag) -> list[Dataset]:
    element = ds.get(tag)
    value = element.value if element is not None else None
    return [item for item in value or [] if isinstance(item, Dataset)]


def recorded_originals(got: Dataset) -> list[Dataset]:
    """The Modified Attributes Sequence items of each Original Attributes Sequence item: "all
    the Attributes, with their previous values, that were modified or removed" (Table I.1-1)."""
    return [
        modified
        for original in _items_of(got, ORIGINAL_ATTRIBUTES_SEQUENCE)
        for modified in _items_of(original, MODIFIED_ATTRIBUTES_SEQUENCE)
    ]


def unrecorded_changes(got: Dataset, sent: Dataset) -> list[str]:
    """The changes of ``sent`` in ``got`` that no Original Attributes Sequence item records
    with the value sent."""
    changed = changes(got, sent)
    originals = recorded_originals(got) if changed else []
    return [
        sent[tag].keyword or str(tag)
        for tag in changed
        if not any(tag in m and m[tag].value == sent[tag].value for m in originals)
    ]


def assert_round_trip(got: Dataset | None, instance: Instance) -> None:
    """The instance was stored as sent, or each change is recorded with the value sent in
    Original Attributes Sequence (10.5.2, 10.5.3; Table I.1-1 Modified Attributes Sequence)."""
    assert got is not None, f"the store answered 2xx but instance {instance.sop_uid} answers 404"
    unrecorded = unrecorded_changes(got, instance.dataset)
    assert not unrecorded, (
        f"instance {instance.sop_uid} came back with {unrecorded} removed or changed, and no "
        "OriginalAttributesSequence (0400,0561) item records their values as sent"
    )


def assert_stored(client: Client, instances: Sequence[Instance]) -> None:
    """Each instance reads back as sent, or with its changes recorded."""
    for instance in instances:
        assert_round_trip(read_back(client, instance), instance)


def assert_as_stored(got: Iterable[Dataset], instances: Sequence[Instance]) -> None:
    """The retrieved datasets are these instances, once each, as sent or with their changes
    recorded."""
    by_uid = {i.sop_uid: i for i in instances}
    seen: list[str] = []
    for ds in got:
        uid = str(ds.get("SOPInstanceUID", "<no SOPInstanceUID>"))
        seen.append(uid)
        assert uid in by_uid and seen.count(uid) == 1, (
            f"expected instances {sorted(by_uid)}, got {seen}"
        )
        assert_round_trip(ds, by_uid[uid])
    assert sorted(seen) == sorted(by_uid), f"expected instances {sorted(by_uid)}, got {seen}"


def store_and_module(client: Client, instances: Sequence[Instance], **kwargs: Any) -> Module:
    """Store and return the module of the 200 answer (a precondition of the check)."""
    response = stow(client, instances, **kwargs)
    expect.answered(response, 200)
    return store_module(response)


# --- success: status, response module, read back -------------------------------------------------


@pytest.mark.requirement("STOW-STORE-200")
def test_store_answers_200_and_the_instance_reads_back(
    dicomweb: Client, new_study: NewStudy
) -> None:
    study = new_study()
    response = stow(dicomweb, [study.blue])
    expect.status(response, 200)
    assert_stored(dicomweb, [study.blue])


@pytest.mark.requirement("STOW-STUDY-RESOURCE")
def test_store_to_its_study_resource_stores_it(dicomweb: Client, new_study: NewStudy) -> None:
    study = new_study()
    response = stow(dicomweb, [study.green], study_uid=study.study_uid)
    expect.status(response, 200)
    assert_references(store_module(response), [study.green])
    assert_stored(dicomweb, [study.green])


@pytest.mark.requirement("STOW-TWO-INSTANCES")
def test_two_instances_in_one_request_are_both_stored(
    dicomweb: Client, new_study: NewStudy
) -> None:
    study = new_study()
    response = stow(dicomweb, [study.red, study.green])
    expect.status(response, 200)
    assert_references(store_module(response), [study.red, study.green])
    assert_stored(dicomweb, [study.red, study.green])


@pytest.mark.requirement("STOW-SEVERAL-STUDIES")
def test_instances_of_two_studies_in_one_request_are_both_stored(
    dicomweb: Client, new_study: NewStudy
) -> None:
    first, second = new_study(), new_study()
    response = stow(dicomweb, [first.blue, second.blue])
    expect.status(response, 200, why="/studies stores representations of different studies")
    assert_references(store_module(response), [first.blue, second.blue])
    assert_stored(dicomweb, [first.blue, second.blue])


@pytest.mark.requirement("STOW-RESPONSE-CONTENT-TYPE")
def test_store_response_is_dicom_json(dicomweb: Client, new_study: NewStudy) -> None:
    response = stow(dicomweb, [new_study().blue])
    expect.answered(response, 200)
    lines = field_lines(response, "Content-Type")
    assert lines, "the store response has a body but no Content-Type"
    # A second Content-Type line is STOW-FAILURE-CONTENT-TYPE-SINGLE's breach, not this one's.
    assert DICOM_JSON in [media_type_of(line) for line in lines], (
        f"the store response has Content-Type {lines}, asked for {DICOM_JSON}"
    )
    store_module(response)


@pytest.mark.requirement("STOW-RESPONSE-REFERENCED-SOP")
def test_referenced_sop_sequence_names_each_stored_instance(
    dicomweb: Client, new_study: NewStudy
) -> None:
    study = new_study()
    module = store_and_module(dicomweb, list(study))
    assert_references(module, list(study))


@pytest.mark.requirement("STOW-RESPONSE-ITEM-RETRIEVE-URL")
def test_each_referenced_item_has_a_retrieve_url_of_vr_ur(
    dicomweb: Client, new_study: NewStudy
) -> None:
    study = new_study()
    module = store_and_module(dicomweb, [study.red, study.green])
    found = sequence_items(module, REFERENCED_SOP_SEQUENCE)
    assert len(found) == 2, f"expected 2 ReferencedSOPSequence items, got {len(found)}"
    for item in found:
        retrieve_url(item, f"the item of {first_value(item, REFERENCED_SOP_INSTANCE_UID)}")


@pytest.mark.requirement("STOW-RESPONSE-INSTANCE-URL-RETRIEVES")
def test_instance_retrieve_url_retrieves_that_instance(
    dicomweb: Client, new_study: NewStudy
) -> None:
    study = new_study()
    module = store_and_module(dicomweb, [study.red, study.green])
    by_uid = {i.sop_uid: i for i in (study.red, study.green)}
    found = sequence_items(module, REFERENCED_SOP_SEQUENCE)
    assert sorted(referenced_sop_uids(module)) == sorted(by_uid), (
        f"ReferencedSOPSequence names {referenced_sop_uids(module)}, expected {sorted(by_uid)}"
    )
    empty = []
    for item in found:
        instance = by_uid[first_value(item, REFERENCED_SOP_INSTANCE_UID)]
        url = retrieve_url(item, f"the item of {instance.sop_uid}")
        if url is None:
            empty.append(instance.sop_uid)
            continue
        match = INSTANCE_RESOURCE.search(urlsplit(url).path)
        wanted = (instance.study_uid, instance.series_uid, instance.sop_uid)
        assert match is not None and match.groups() == wanted, (
            f"Retrieve URL {url} is not the resource studies/{wanted[0]}/series/{wanted[1]}"
            f"/instances/{wanted[2]}"
        )
        got = expect.retrieved(
            dicomweb, reachable(dicomweb, url), why=f"GET of the Retrieve URL {url}"
        )
        assert_as_stored(got, [instance])
    if empty:
        expect.info(f"empty instance Retrieve URLs (Type 2 allows it) for {empty}")


@pytest.mark.requirement("STOW-RESPONSE-NO-FAILED-SOP")
def test_success_response_lists_no_failed_instance(dicomweb: Client, new_study: NewStudy) -> None:
    study = new_study()
    module = store_and_module(dicomweb, [study.red, study.green])
    failed = sequence_items(module, FAILED_SOP_SEQUENCE)
    assert not failed, f"a 200 store response lists failed instances: {failed_sop_uids(module)}"


@pytest.mark.requirement("STOW-RESPONSE-STUDY-RETRIEVE-URL")
def test_store_response_has_a_study_retrieve_url_of_vr_ur(
    dicomweb: Client, new_study: NewStudy
) -> None:
    module = store_and_module(dicomweb, [new_study().blue])
    retrieve_url(module, "the store response")


@pytest.mark.requirement("STOW-RESPONSE-STUDY-URL-PATH")
def test_study_path_store_retrieve_url_names_and_retrieves_the_study(
    dicomweb: Client, new_study: NewStudy
) -> None:
    study = new_study()
    module = store_and_module(dicomweb, [study.blue], study_uid=study.study_uid)
    url = retrieve_url(module, "the store response")
    assert url is not None, (
        f"the top-level Retrieve URL is empty though the study {study.study_uid} is in the path"
    )
    path = urlsplit(url).path.rstrip("/")
    assert path.endswith(f"/studies/{study.study_uid}"), (
        f"the top-level Retrieve URL {url} does not end with /studies/{study.study_uid}"
    )
    got = expect.retrieved(
        dicomweb, reachable(dicomweb, url), why=f"GET of the study Retrieve URL {url}"
    )
    assert_as_stored(got, [study.blue])


@pytest.mark.requirement("STOW-SEARCH-FINDS-STORED")
def test_stored_instance_is_found_by_search(dicomweb: Client, new_study: NewStudy) -> None:
    study = new_study()
    blue = study.blue
    expect.answered(stow(dicomweb, [blue]), 200)
    response = search(dicomweb, "studies", StudyInstanceUID=blue.study_uid)
    expect.status(response, 200)
    found = uids(search_results(response), STUDY_UID)
    assert found == [blue.study_uid], f"a study search by its UID found {found}"
    response = search(
        dicomweb,
        f"studies/{blue.study_uid}/series/{blue.series_uid}/instances",
        SOPInstanceUID=blue.sop_uid,
    )
    expect.status(response, 200)
    found = uids(search_results(response), SOP_UID)
    assert found == [blue.sop_uid], f"an instance search by its UID found {found}"


# --- fidelity -------------------------------------------------------------------------------------


@pytest.mark.requirement("STOW-ROUND-TRIP-UNCHANGED")
@pytest.mark.parametrize("name", ["blue-circle", "green-square", "red-triangle"])
def test_retrieved_instance_equals_what_was_stored(
    dicomweb: Client, new_study: NewStudy, name: str
) -> None:
    instance = new_study()[name]
    expect.answered(stow(dicomweb, [instance]), 200, 202)
    assert_round_trip(read_back(dicomweb, instance), instance)


SYNTHETIC = [
    pytest.param("multiframe", marks=pytest.mark.requirement("STOW-ROUND-TRIP-MULTIFRAME")),
    pytest.param("compressed", marks=pytest.mark.requirement("STOW-ROUND-TRIP-COMPRESSED")),
    pytest.param("no_pixels", marks=pytest.mark.requirement("STOW-ROUND-TRIP-NO-PIXELS")),
    pytest.param("charset_latin", marks=pytest.mark.requirement("STOW-ROUND-TRIP-CHARSETS")),
    pytest.param("charset_ideographic", marks=pytest.mark.requirement("STOW-ROUND-TRIP-CHARSETS")),
    pytest.param("charset_greek", marks=pytest.mark.requirement("STOW-ROUND-TRIP-CHARSETS")),
    pytest.param("sequence", marks=pytest.mark.requirement("STOW-ROUND-TRIP-SEQUENCE")),
]


def allowed_refusal(response: requests.Response, instance: Instance, name: str) -> str | None:
    """What the refusal says, if it is one the standard allows for this instance: its SOP Class
    not supported (409 with Failure Reason 0122, I.2.2; or 501, Table 8.5-1), or, for the RLE
    Lossless instance, its transfer syntax, which Table 8.7.3-2 makes optional (409 with
    Failure Reason C122, or 415)."""
    module = store_module_if_any(response)
    failures = failure_reasons(module) if module else []
    sop_class = instance.dataset.SOPClassUID
    if response.status_code == 501:
        return f"SOP Class {sop_class} not supported: 501 (Table 8.5-1)"
    if response.status_code == 409 and SOP_CLASS_NOT_SUPPORTED in failures:
        return f"SOP Class {sop_class} not supported: 409, Failure Reason 0122 (290)"
    if name == "compressed":
        syntax = instance.dataset.file_meta.TransferSyntaxUID
        if response.status_code == 415:
            return f"transfer syntax {syntax} (optional, Table 8.7.3-2) not supported: 415"
        if response.status_code == 409 and TRANSFER_SYNTAX_NOT_SUPPORTED in failures:
            return (
                f"transfer syntax {syntax} (optional, Table 8.7.3-2) not supported: 409, "
                "Failure Reason C122 (49442)"
            )
    return None


@pytest.mark.parametrize("name", SYNTHETIC)
def test_synthetic_instance_round_trips_unchanged(
    dicomweb: Client, new_synthetic: NewSynthetic, name: str
) -> None:
    instance = new_synthetic()[name]
    response = stow(dicomweb, [instance])
    refused = allowed_refusal(response, instance, name)
    if refused is not None:
        expect.info(refused)
    # What the response module says is STOW-RESPONSE-REFERENCED-SOP's rule: the read-back is
    # this one's. 202: stored, with a warning (a coercion, say).
    expect.status(response, 200, 202)
    assert_round_trip(read_back(dicomweb, instance), instance)


# --- failures -------------------------------------------------------------------------------------


def post_to_other_study(
    dicomweb: Client, new_study: NewStudy
) -> tuple[requests.Response, Instance]:
    """POST /studies/{A} with an instance of study B; return the answer and that instance."""
    target, other = new_study(), new_study()
    return stow(dicomweb, [other.green], study_uid=target.study_uid), other.green


@pytest.mark.requirement("STOW-STUDY-MISMATCH-409")
def test_study_path_mismatch_answers_409(dicomweb: Client, new_study: NewStudy) -> None:
    response, _ = post_to_other_study(dicomweb, new_study)
    expect.status(response, 409, why="Table 10.5.3-1 names a Study Instance UID mismatch")


@pytest.mark.requirement("STOW-STUDY-MISMATCH-FAILED-SOP")
def test_study_path_mismatch_lists_the_instance_as_failed(
    dicomweb: Client, new_study: NewStudy
) -> None:
    response, instance = post_to_other_study(dicomweb, new_study)
    expect.answered(response, 409)
    module = store_module_if_any(response)
    if module is None:
        expect.info(
            "the 409 carries no Store Instances Response Module (a failure payload is optional, "
            "10.5.3.3)"
        )
    assert_failed(module, instance)
    assert instance.sop_uid not in referenced_sop_uids(module), (
        "the refused instance is also listed in ReferencedSOPSequence"
    )


@pytest.mark.requirement("STOW-STUDY-MISMATCH-NOT-STORED")
def test_study_path_mismatch_stores_nothing(dicomweb: Client, new_study: NewStudy) -> None:
    response, instance = post_to_other_study(dicomweb, new_study)
    assert response.status_code not in (200, 202) or instance.sop_uid not in referenced_sop_uids(
        store_module(response)
    ), f"the store answered {response.status_code} and references the mismatched instance"
    assert_not_stored(dicomweb, instance, why="an instance of another study must not be stored")


@pytest.mark.requirement("STOW-FAILURE-CONTENT-TYPE")
def test_failure_response_with_a_body_has_a_content_type(
    dicomweb: Client, new_study: NewStudy
) -> None:
    response, _ = post_to_other_study(dicomweb, new_study)
    expect.answered(response, 400, 409)
    if not response.content.strip():
        expect.info(f"the {response.status_code} failure answer has no body")
    # Every field line: a second one is STOW-FAILURE-CONTENT-TYPE-SINGLE's breach, not this one's.
    lines = field_lines(response, "Content-Type")
    assert lines, (
        f"the {response.status_code} answer has a {len(response.content)}-byte body but no "
        "Content-Type"
    )
    if store_module_if_any(response) is not None:
        assert DICOM_JSON in [media_type_of(line) for line in lines], (
            f"the failure answer is a DICOM JSON module sent with Content-Type {lines}"
        )


@pytest.mark.requirement("STOW-FAILURE-CONTENT-TYPE-SINGLE")
def test_store_answers_have_one_content_type_field(dicomweb: Client, new_study: NewStudy) -> None:
    answers = {
        "a new instance": stow(dicomweb, [new_study().blue]),
        "an instance of another study": post_to_other_study(dicomweb, new_study)[0],
    }
    for what, response in answers.items():
        lines = field_lines(response, "Content-Type")
        assert len(lines) <= 1, (
            f"the {response.status_code} answer to {what} has {len(lines)} Content-Type field "
            f"lines {lines}: Content-Type is a singleton field (RFC 9110 5.3, 8.3)"
        )


@pytest.mark.requirement("STOW-NON-DICOM-REJECTED")
def test_non_dicom_part_is_refused(dicomweb: Client) -> None:
    body, content_type = multipart.encode_related([b"This is not a DICOM file. " * 40])
    response = post(dicomweb, body, content_type)
    expect.status(response, 400, 409, why="a part that is not a PS3.10 instance stores nothing")
    module = store_module_if_any(response)
    if module is not None:
        assert not sequence_items(module, REFERENCED_SOP_SEQUENCE), (
            f"the refusal references stored instances {referenced_sop_uids(module)}"
        )


def post_good_and_bad(
    dicomweb: Client, new_study: NewStudy
) -> tuple[requests.Response, Instance, Instance, bool]:
    """POST /studies/{A} with an instance of A and one of B: the answer, both instances, and
    whether the good one was stored (read back). The bad one must never be stored."""
    target, other = new_study(), new_study()
    good, bad = target.blue, other.green
    response = stow(dicomweb, [good, bad], study_uid=target.study_uid)
    assert_not_stored(dicomweb, bad, why="an instance of another study must not be stored")
    stored = read_back(dicomweb, good)
    if stored is not None:
        assert_round_trip(stored, good)
    return response, good, bad, stored is not None


@pytest.mark.requirement("STOW-PARTIAL-202")
def test_partial_store_answers_202(dicomweb: Client, new_study: NewStudy) -> None:
    response, good, _, stored = post_good_and_bad(dicomweb, new_study)
    if not stored:
        expect.status(response, 409, why="nothing was stored")
        expect.info("the server refused the whole request (409), storing neither instance")
    expect.status(
        response,
        202,
        why=f"instance {good.sop_uid} was stored and the other refused: 'stored some of the "
        "Instances' is 202; 200 and 409 both misreport it",
    )


@pytest.mark.requirement("STOW-PARTIAL-BOTH-SEQUENCES")
def test_partial_store_lists_the_stored_and_the_refused(
    dicomweb: Client, new_study: NewStudy
) -> None:
    response, good, bad, stored = post_good_and_bad(dicomweb, new_study)
    if response.status_code in (200, 202):
        module = store_module(response)  # a success payload is the module (10.5.3.3)
    else:
        found = store_module_if_any(response)
        if found is None:
            expect.info(
                f"the {response.status_code} refusal carries no Store Instances Response Module "
                "(a failure payload is optional, 10.5.3.3)"
            )
        module = found
    assert_failed(module, bad)
    if not stored:
        assert good.sop_uid not in referenced_sop_uids(module), (
            f"{good.sop_uid} is referenced as stored but answers 404"
        )
        expect.info("the server refused the whole request, storing neither instance")
    assert referenced_sop_uids(module) == [good.sop_uid], (
        f"ReferencedSOPSequence names {referenced_sop_uids(module)}, expected only the stored "
        f"{good.sop_uid}"
    )


@pytest.mark.requirement("STOW-DUPLICATE-STAYS-RETRIEVABLE")
def test_instance_stored_twice_stays_retrievable_and_unique(
    dicomweb: Client, new_study: NewStudy
) -> None:
    blue = new_study().blue
    expect.answered(stow(dicomweb, [blue]), 200)
    again = stow(dicomweb, [blue])
    assert_stored(dicomweb, [blue])
    response = search(
        dicomweb,
        f"studies/{blue.study_uid}/series/{blue.series_uid}/instances",
        SOPInstanceUID=blue.sop_uid,
    )
    expect.status(response, 200)
    found = uids(search_results(response), SOP_UID)
    assert found == [blue.sop_uid], f"after storing it twice, a search finds {found}"
    module = store_module_if_any(again)
    seen = f"the second store answered {again.status_code}"
    if module is not None:
        warning = warning_reasons(module)
        failure = failure_reasons(module)
        seen += f", Warning Reasons {warning}, Failure Reasons {failure}"
    expect.info(seen)


@pytest.mark.requirement("STOW-UNSUPPORTED-CONTENT-TYPE-415")
def test_text_plain_body_answers_415(dicomweb: Client) -> None:
    response = post(dicomweb, b"This is not a DICOM request.", "text/plain")
    expect.status(response, 415)


@pytest.mark.requirement("STOW-MULTIPART-NO-BOUNDARY")
def test_multipart_without_boundary_is_refused(dicomweb: Client, new_study: NewStudy) -> None:
    blue = new_study().blue
    body, _ = multipart.encode_related([blue.data])
    response = post(dicomweb, body, f'multipart/related; type="{DICOM}"')
    expect.status(response, 400, 415, why="a multipart media type shall have a boundary")
    assert_not_stored(dicomweb, blue, why="the request was refused")


@pytest.mark.requirement("STOW-ACCEPT-UNSUPPORTED-406")
def test_store_accepting_only_html_answers_406(dicomweb: Client, new_study: NewStudy) -> None:
    blue = new_study().blue
    body, content_type = multipart.encode_related([blue.data])
    response = post(dicomweb, body, content_type, accept="text/html")
    if expect.chose_406(response):
        return
    lines = field_lines(response, "Content-Type")
    if response.status_code == 200 and DICOM_JSON in [media_type_of(line) for line in lines]:
        expect.chose("default-media-type")
        store_module(response)  # the body is the response module, in that media type
        assert read_back(dicomweb, blue) is not None, (
            f"the store answered 200 in {DICOM_JSON}, but instance {blue.sop_uid} answers 404"
        )
        return
    raise AssertionError(
        f"a store accepting only text/html answered {response.status_code} with Content-Type "
        f"{lines}: neither 406 (8.7.8.1) nor 200 in the Store transaction's default media type "
        f"{DICOM_JSON} (Table 8.7.3-1, Table 10.5.4-1)"
    )


@pytest.mark.requirement("STOW-PART-EXTRA-HEADERS")
def test_parts_with_extra_headers_are_stored(dicomweb: Client, new_study: NewStudy) -> None:
    blue = new_study().blue
    body, content_type = multipart.encode_related(
        [blue.data],
        part_headers={
            "Content-Disposition": 'form-data; name="file"; filename="blue-circle.dcm"',
            "Content-Length": str(len(blue.data)),
        },
    )
    response = post(dicomweb, body, content_type)
    expect.status(response, 200)
    assert_references(store_module(response), [blue])
    assert_stored(dicomweb, [blue])


@pytest.mark.requirement("STOW-PART-TYPE-FROM-ROOT")
def test_part_without_content_type_is_stored_as_the_root_type(
    dicomweb: Client, new_study: NewStudy
) -> None:
    """The request breaks 8.6.1.2 (every part has its Content-Type), so only robustness is
    judged: a 4xx refusal that stores nothing (INFO), or the part stored as the root type
    (PASS); a 5xx, or a 2xx that neither stores the part nor lists it as failed, is not."""
    blue = new_study().blue
    boundary = multipart.new_boundary()
    body = raw_multipart([((), blue.data)], boundary)
    response = post(dicomweb, body, f'multipart/related; type="{DICOM}"; boundary={boundary}')
    status = response.status_code
    assert status < 500, f"a part without Content-Type made the server fail ({status})"
    if 400 <= status < 500:
        assert_not_stored(dicomweb, blue, why=f"the store answered {status}")
        expect.info(f"refused with {status}, nothing stored")
    assert 200 <= status < 300, f"a part without Content-Type answered {status}, not 2xx or 4xx"
    got = read_back(dicomweb, blue)
    if got is not None:
        assert_round_trip(got, blue)
        return
    module = store_module_if_any(response)
    if module is not None and blue.sop_uid in failed_sop_uids(module):
        expect.info(f"answered {status}, the part listed in FailedSOPSequence, nothing stored")
    raise AssertionError(
        f"answered {status}, but the part is neither stored (it answers 404) nor listed in "
        "FailedSOPSequence: dropped silently"
    )


@pytest.mark.requirement("STOW-EMPTY-MULTIPART")
def test_empty_multipart_stores_nothing(dicomweb: Client) -> None:
    boundary = multipart.new_boundary()
    body = f"--{boundary}--\r\n".encode("ascii")
    response = post(dicomweb, body, f'multipart/related; type="{DICOM}"; boundary={boundary}')
    assert response.status_code < 500, (
        f"a request without instances made the server fail ({response.status_code})"
    )
    module = store_module_if_any(response)
    if module is not None:
        assert not sequence_items(module, REFERENCED_SOP_SEQUENCE), (
            f"a request without instances references stored instances {referenced_sop_uids(module)}"
        )
    expect.info(f"an empty multipart answered {response.status_code}")


@pytest.mark.requirement("STOW-IMPLICIT-VR")
def test_implicit_vr_instance_accepted_is_retrievable(
    dicomweb: Client, new_synthetic: NewSynthetic
) -> None:
    instance = implicit_vr_copy(new_synthetic().sequence)
    response = stow(dicomweb, [instance])
    assert response.status_code < 500, (
        f"an Implicit VR Little Endian instance made the server fail ({response.status_code})"
    )
    if response.status_code in (200, 202):
        got = read_back(dicomweb, instance)
        assert_round_trip(got, instance)
        assert got is not None
        syntax = got.file_meta.get("TransferSyntaxUID", "none")
        expect.info(f"accepted ({response.status_code}); retrieved in transfer syntax {syntax}")
    assert_not_stored(dicomweb, instance, why=f"the store answered {response.status_code}")
    expect.info(f"refused with {response.status_code}")


def metadata_and_bulkdata(instance: Instance) -> tuple[bytes, str]:
    """The instance as DICOM JSON metadata plus one bulkdata part holding its PixelData."""
    dataset = Dataset(instance.dataset)
    pixels = bytes(dataset.PixelData)
    metadata = dataset.to_json_dict()
    uri = f"https://bulkdata.invalid/{instance.sop_uid}/7FE00010"
    metadata["7FE00010"] = {"vr": dataset["PixelData"].VR, "BulkDataURI": uri}
    boundary = multipart.new_boundary()
    body = raw_multipart(
        [
            ((f"Content-Type: {DICOM_JSON}",), json.dumps([metadata]).encode("utf-8")),
            ((f"Content-Type: {OCTET_STREAM}", f"Content-Location: {uri}"), pixels),
        ],
        boundary,
    )
    return body, f'multipart/related; type="{DICOM_JSON}"; boundary={boundary}'


@pytest.mark.requirement("STOW-METADATA-BULKDATA")
def test_metadata_and_bulkdata_store_one_instance(
    dicomweb: Client, new_synthetic: NewSynthetic
) -> None:
    instance = new_synthetic().sequence
    body, content_type = metadata_and_bulkdata(instance)
    response = post(dicomweb, body, content_type)
    expect.status(
        response,
        200,
        why=f'multipart/related; type="{DICOM_JSON}" is the Store transaction\'s Default media '
        "type, which the origin server shall support (10.5.4, Table 10.5.4-1)",
    )
    assert_round_trip(read_back(dicomweb, instance), instance)


@pytest.mark.requirement("STOW-WARNING-HEADER-SYNTAX")
def test_warning_headers_on_store_responses_are_well_formed(
    dicomweb: Client, new_study: NewStudy
) -> None:
    study = new_study()
    answers = {
        "a new instance": stow(dicomweb, [study.blue]),
        "the same instance again": stow(dicomweb, [study.blue]),
        "an instance of another study": post_to_other_study(dicomweb, new_study)[0],
        "text/plain": post(dicomweb, b"This is not a DICOM request.", "text/plain"),
    }
    present = {what: field_lines(r, "Warning") for what, r in answers.items()}
    for what, warnings in present.items():
        for warning in warnings:
            if RFC7234_WARNING.match(warning):
                expect.chose("rfc7234")
            elif DICOM_STATUS_WARNING.match(warning):
                expect.chose("dicom-status")
            else:
                raise AssertionError(
                    f"the answer to {what} has Warning {warning!r}: neither warn-code SP "
                    "warn-agent SP warn-text (RFC 7234 5.5) nor a DICOM status in its place "
                    "(PS3.18 10.5.3.2)"
                )
    if not any(present.values()):
        expect.info(f"no Warning header on the answers to {', '.join(answers)}")
