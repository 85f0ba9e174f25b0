"""DICOMweb transactions over the client: store, retrieve, search, delete. No pytest here."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import pydicom
import requests
from pydicom.dataset import Dataset

from . import multipart
from .client import Client
from .samples import Instance

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
OCTET_STREAM = "application/octet-stream"
ACCEPT_DICOM_ANY_TS = 'multipart/related; type="application/dicom"; transfer-syntax=*'
ACCEPT_FRAMES_ANY_TS = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'

# DICOM JSON tags (PS3.18 Annex F) the walkthrough reads.
STUDY_UID = "0020000D"
SERIES_UID = "0020000E"
SOP_UID = "00080018"
REFERENCED_SOP_SEQUENCE = "00081199"
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_INSTANCE_UID = "00081155"


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


def referenced_sop_uids(store_response: dict[str, Any]) -> list[str]:
    """SOP Instance UIDs in a STOW response's ReferencedSOPSequence (PS3.18 Annex I)."""
    items = values(store_response, REFERENCED_SOP_SEQUENCE)
    if not all(isinstance(item, dict) for item in items):
        raise ProtocolError("ReferencedSOPSequence has an item that is not a JSON object")
    return [first_value(item, REFERENCED_SOP_INSTANCE_UID) for item in items]


def search(
    client: Client, path: str, *pairs: tuple[str, str], accept: str = DICOM_JSON, **params: str
) -> requests.Response:
    """QIDO-RS: GET a search resource with the given query, sent as given (the client
    percent-encodes what it needs): ``pairs`` for repeated or unusual keys
    (``("includefield", "all")``), then ``params`` (``StudyInstanceUID=uid``)."""
    query = [*pairs, *params.items()]
    return client.get(path, query=query, headers={"Accept": accept})


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
