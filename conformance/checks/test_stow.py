"""STOW-RS, the Store transaction (PS3.18 10.5): status codes (Table 10.5.3-1), the Store
Instances Response Module (Annex I) and the multipart requests it accepts (8.7.3.5). What a
store refuses is test_stow_failures.py's, with the helpers from here.

A 200 proves nothing until the instance is read back: every check that stores retrieves what it
stored (WADO-RS, transfer-syntax=*) or searches for it (QIDO-RS), and every refusal is checked to
have stored nothing. What is read back may differ from what was sent only where the server
recorded the change (10.5.2, 10.5.3: Original Attributes Sequence). Each check judges one rule: a
fidelity check does not also judge the response module, a status check not the fidelity. Every
check stores fresh copies (``new_study``, ``new_synthetic``) that the run deletes afterwards.
"""

from __future__ import annotations

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
    DICOM_JSON,
    FAILED_SOP_SEQUENCE,
    FAILURE_REASON,
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
)
from conformance.run.fixtures import NewStudy, NewSynthetic
from conformance.samples import Instance

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
