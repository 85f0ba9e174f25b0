"""DICOMweb transactions over the client: store, retrieve, search, delete. No pytest here."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any

import pydicom
import requests
from pydicom.dataset import Dataset

from . import multipart, readmap
from .client import Client
from .samples import Instance

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
OCTET_STREAM = "application/octet-stream"
MULTIPART_DICOM = 'multipart/related; type="application/dicom"'
ACCEPT_DICOM_ANY_TS = f"{MULTIPART_DICOM}; transfer-syntax=*"
ACCEPT_FRAMES_ANY_TS = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'

# DICOM JSON tags (PS3.18 Annex F) the readers below and the checks read: the unique keys, and
# the Store Instances Response Module's (Annex I).
STUDY_UID = "0020000D"
SERIES_UID = "0020000E"
SOP_UID = "00080018"
REFERENCED_SOP_SEQUENCE = "00081199"
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_INSTANCE_UID = "00081155"
REFERENCED_SOP_CLASS_UID = "00081150"
FAILURE_REASON = "00081197"
WARNING_REASON = "00081196"
DICOM_TAG_KEY = re.compile(r"^[0-9A-Fa-f]{8}$")  # how a DICOM JSON object's keys are spelled


class ProtocolError(AssertionError):
    """The server's answer breaks the protocol (not JSON, not multipart, not DICOM, ...).

    An AssertionError, so pytest reports it as a failed check with its evidence, never as a crash
    of the suite.
    """


def stow(
    client: Client,
    instances: Iterable[Instance],
    study_uid: str | None = None,
    root_type: str | None = DICOM,
) -> requests.Response:
    """STOW-RS: POST the instances as one multipart/related request."""
    body, content_type = multipart.encode_related([i.data for i in instances], root_type=root_type)
    path = f"studies/{study_uid}" if study_uid else "studies"
    return client.post(
        path, body=body, headers={"Content-Type": content_type, "Accept": DICOM_JSON}
    )


def stow_single(client: Client, instance: Instance) -> requests.Response:
    """The Azure extension: POST one file as an application/dicom body (not multipart)."""
    return client.post(
        "studies", body=instance.data, headers={"Content-Type": DICOM, "Accept": DICOM_JSON}
    )


def instance_path(instance: Instance) -> str:
    return f"studies/{instance.study_uid}/series/{instance.series_uid}/instances/{instance.sop_uid}"


def dicom_accept(transfer_syntax: str | None = None) -> str:
    """multipart/related; type="application/dicom", with a transfer-syntax parameter if given."""
    if transfer_syntax is None:
        return MULTIPART_DICOM
    return f"{MULTIPART_DICOM}; transfer-syntax={transfer_syntax}"


def retrieve(
    client: Client,
    path: str,
    accept: str | None = ACCEPT_DICOM_ANY_TS,
    query: Sequence[tuple[str, str]] = (),
) -> requests.Response:
    """WADO-RS: GET a resource (study, series, instance, frames, bulk data, rendered ...) with
    the Accept given (None sends none), streamed: the body is read as it arrives (iter_parts),
    so a check that reads the parts one at a time holds one part, whatever the study's size."""
    return client.get(path, headers={"Accept": accept}, query=list(query), stream=True)


def metadata(client: Client, path: str, accept: str = DICOM_JSON) -> requests.Response:
    """WADO-RS: GET the metadata resource of a study, series or instance path (not streamed:
    metadata is read whole)."""
    return client.get(f"{path}/metadata", headers={"Accept": accept})


def parts(client: Client, response: requests.Response) -> list[multipart.Part]:
    """All parts of a multipart response; a malformed body is a protocol error."""
    return list(iter_parts(client, response))


def iter_parts(client: Client, response: requests.Response) -> Iterator[multipart.Part]:
    """The parts of a multipart response as they arrive (one held at a time); a malformed
    body is a protocol error."""
    try:
        yield from client.iter_parts(response)
    except multipart.MultipartError as exc:
        raise ProtocolError(f"malformed multipart response: {exc}") from None


def read_dicom(body: bytes, what: str = "part") -> Dataset:
    try:
        return pydicom.dcmread(io.BytesIO(body))
    except Exception as exc:  # pydicom raises many types for garbage; all mean "not DICOM"
        raise ProtocolError(f"{what} is not a readable DICOM file: {exc}") from None


def json_body(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        excerpt = response.content[:200]
        raise ProtocolError(f"response body is not JSON: {excerpt!r}") from None
    except RecursionError:
        raise ProtocolError("response body is JSON nested too deeply to read") from None


def json_array(response: requests.Response) -> list[dict[str, Any]]:
    """A DICOM JSON array of objects (an empty body counts as an empty array)."""
    if not response.content.strip():
        return []
    value = json_body(response)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ProtocolError(f"expected a JSON array of objects, got {type(value).__name__}")
    return value


def values(obj: dict[str, Any], tag: str) -> list[Any]:
    """The Value list of one attribute in a DICOM JSON object ([] when absent or empty)."""
    if not isinstance(obj, dict):
        raise ProtocolError(f"expected a DICOM JSON object, got a JSON {type(obj).__name__}")
    attribute = obj.get(tag)
    if attribute is None:
        return []
    if not isinstance(attribute, dict):
        raise ProtocolError(f"attribute {tag} is not a JSON object: {attribute!r}")
    found = attribute.get("Value", [])
    if not isinstance(found, list):
        raise ProtocolError(f"attribute {tag} has a Value that is not an array: {found!r}")
    return found


def first_value(obj: dict[str, Any], tag: str) -> Any:
    found = values(obj, tag)
    return found[0] if found else None


def uids(objects: Sequence[dict[str, Any]], tag: str) -> list[str]:
    """The first value of ``tag`` in each object, in order (None where missing)."""
    return [first_value(o, tag) for o in objects]


# --- the Store Instances Response Module (PS3.18 10.5.3, Annex I): what a STOW answer says ------


def store_module(response: requests.Response) -> dict[str, Any]:
    """The Store Instances Response Module a STOW answer carries: one DICOM JSON object."""
    value = json_body(response)
    if not isinstance(value, dict):
        raise ProtocolError(f"the store response is a JSON {type(value).__name__}, not an object")
    return value


def store_module_if_any(response: requests.Response) -> dict[str, Any] | None:
    """The module a failure answer carries, if any: its payload is optional (10.5.3.3), and may
    be another kind of status report (a JSON object whose keys are no DICOM tags, plain text)."""
    if not response.content.strip():
        return None
    try:
        value = json.loads(response.content)
    except ValueError:
        return None
    if not isinstance(value, dict) or not value:
        return None
    if not all(DICOM_TAG_KEY.match(key) for key in value):
        return None
    return readmap.tracked_answer(response, value) if readmap.on else value


def sequence_items(obj: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    """The items of a sequence attribute of a DICOM JSON object, each a JSON object."""
    found = values(obj, tag)
    if not all(isinstance(item, dict) for item in found):
        raise ProtocolError(f"sequence {tag} has an item that is not a JSON object")
    return found


def referenced_sop_uids(module: dict[str, Any]) -> list[str]:
    """The SOP Instance UIDs in the module's ReferencedSOPSequence (the instances stored), in
    order (None for an item without one)."""
    return uids(sequence_items(module, REFERENCED_SOP_SEQUENCE), REFERENCED_SOP_INSTANCE_UID)


def failed_sop_uids(module: dict[str, Any]) -> list[str]:
    """The SOP Instance UIDs in the module's FailedSOPSequence (the instances not stored)."""
    return uids(sequence_items(module, FAILED_SOP_SEQUENCE), REFERENCED_SOP_INSTANCE_UID)


def failures(module: dict[str, Any]) -> dict[Any, Any]:
    """Each failed instance's SOP Instance UID and its Failure Reason (None where missing)."""
    return {
        first_value(item, REFERENCED_SOP_INSTANCE_UID): first_value(item, FAILURE_REASON)
        for item in sequence_items(module, FAILED_SOP_SEQUENCE)
    }


def failure_reasons(module: dict[str, Any]) -> list[Any]:
    """The Failure Reasons (0008,1197) FailedSOPSequence's items give, in order."""
    return _reasons(module, FAILED_SOP_SEQUENCE, FAILURE_REASON)


def warning_reasons(module: dict[str, Any]) -> list[Any]:
    """The Warning Reasons (0008,1196) ReferencedSOPSequence's items give, in order."""
    return _reasons(module, REFERENCED_SOP_SEQUENCE, WARNING_REASON)


def _reasons(module: dict[str, Any], sequence: str, tag: str) -> list[Any]:
    found = (first_value(item, tag) for item in sequence_items(module, sequence))
    return [reason for reason in found if reason is not None]


# --- QIDO-RS --------------------------------------------------------------------------------------


def search(
    client: Client, path: str, *pairs: tuple[str, str], accept: str = DICOM_JSON, **params: str
) -> requests.Response:
    """QIDO-RS: GET a search resource with the given query, sent as given (the client
    percent-encodes what it needs): ``pairs`` for repeated or unusual keys
    (``("includefield", "all")``), then ``params`` (``StudyInstanceUID=uid``)."""
    query = [*pairs, *params.items()]
    return client.get(path, query=query, headers={"Accept": accept})


def search_results(
    response: requests.Response, *, none_on: Collection[int] = (204,)
) -> list[dict[str, Any]]:
    """The results a search answer carries: the DICOM JSON array of objects of its body (an
    empty body is an empty array), none when its status is in ``none_on`` (204 No Content,
    8.3.4.4.1). The status is for the caller to judge first (``expect.results`` does)."""
    return [] if response.status_code in none_on else json_array(response)


# --- media types --------------------------------------------------------------------------------


def parsed(value: str, what: str) -> tuple[str, dict[str, str]]:
    """A media type the server sent, split; a malformed one is a protocol error."""
    try:
        return multipart.parse_media_type(value)
    except multipart.MultipartError as exc:
        raise ProtocolError(f"{what} {value!r} is not a media type: {exc}") from None


def media_type(response: requests.Response) -> tuple[str, dict[str, str]]:
    """The response's Content-Type, split."""
    return parsed(response.headers.get("Content-Type", ""), "Content-Type")


def part_media_type(part: multipart.Part, number: int) -> tuple[str, dict[str, str]]:
    if part.content_type is None:
        raise ProtocolError(f"part {number} has no Content-Type header")
    return parsed(part.content_type, f"part {number}'s Content-Type")


def declared_media_type(response: requests.Response) -> str | None:
    """The lowercased media type the response declares; None when it declares none or one that
    cannot be read (for checks about the Content-Type itself)."""
    value = response.headers.get("Content-Type")
    if not value:
        return None
    try:
        return multipart.parse_media_type(value)[0]
    except multipart.MultipartError:
        return None
