"""The one guard in front of every request that could change data on the server.

The suite may be pointed at a production archive. So, whatever a check, the cleanup or a server's
answer asks for, the client sends:

- a DELETE, PUT or PATCH only for a study this run created: its UID is one this run minted (the
  ``Registry``) *and* the server's own record of it carries this run's marker (its PatientID);
- a POST only to store instances of studies this run minted (each DICOM part of the body is read),
  or to ask Orthanc's REST API which resources hold a UID (``/tools/lookup``, a read);
- in a read-only run, no POST, PUT, PATCH or DELETE at all.

Everything else is refused before it leaves, with a message saying why. The guard reads the
server only with GET, through the ``get`` function the client hands it; it knows nothing of pytest.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

from . import multipart
from .errors import ReadOnlyError, UnsafeRequestError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DICOM_JSON = "application/dicom+json"
STUDY_UID = "0020000D"
PATIENT_ID = "00100020"

Get = Callable[[str, Sequence[tuple[str, str]], Mapping[str, str]], requests.Response]


@dataclass(frozen=True)
class Owned:
    """A study this run minted: what it is for, and the PatientID its instances carry."""

    label: str
    patient_id: str
    stored: bool = True  # False: minted to stand for "what is not there", never stored


class Registry:
    """The studies this run minted (recorded before a store is sent: a store that failed may still
    have stored something), each with the marker its data carries."""

    def __init__(self) -> None:
        self._studies: dict[str, Owned] = {}
        self._lock = threading.Lock()

    def add(self, study_uid: str, label: str, patient_id: str, stored: bool = True) -> None:
        with self._lock:
            self._studies.setdefault(study_uid, Owned(label, patient_id, stored))

    def forget(self, study_uid: str) -> None:
        with self._lock:
            self._studies.pop(study_uid, None)

    def __contains__(self, study_uid: object) -> bool:
        return study_uid in self._studies

    def owner(self, study_uid: str) -> Owned | None:
        return self._studies.get(study_uid)

    @property
    def studies(self) -> list[str]:
        """The studies this run may have stored (what cleanup removes)."""
        return [uid for uid, owned in list(self._studies.items()) if owned.stored]


def _segments(url: str, root: str) -> list[str] | None:
    """The decoded path segments of ``url`` below ``root``; None when it is not below it."""
    path = urlsplit(url)._replace(query="", fragment="").geturl()
    if not path.startswith(root + "/"):
        return None
    return [unquote(s) for s in path[len(root) + 1 :].split("/")]


class Guard:
    """Decides, before a request leaves, whether it may change data on the server."""

    def __init__(
        self,
        base_url: str,
        registry: Registry,
        *,
        read_only: bool = False,
        orthanc_url: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.registry = registry
        self.read_only = read_only
        self.orthanc_url = orthanc_url.rstrip("/") if orthanc_url else None
        self._verified: set[str] = set()

    def check(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        get: Get,
    ) -> None:
        """Return when the request may be sent; else raise UnsafeRequestError saying why."""
        method = method.upper()
        if method in SAFE_METHODS:
            return
        if self.read_only:
            raise ReadOnlyError(f"refused {method} {url}: this is a read-only run")
        segments = _segments(url, self.base_url)
        if segments is not None:
            self._check_dicomweb(method, url, segments, headers, body, get)
            return
        orthanc = _segments(url, self.orthanc_url) if self.orthanc_url else None
        if orthanc is not None:
            self._check_orthanc(method, url, orthanc, get)
            return
        raise UnsafeRequestError(f"refused {method} {url}: it is outside the server under test")

    # --- DICOMweb --------------------------------------------------------------------------------

    def _check_dicomweb(
        self,
        method: str,
        url: str,
        segments: list[str],
        headers: Mapping[str, str],
        body: bytes | None,
        get: Get,
    ) -> None:
        if segments[0] != "studies":
            raise UnsafeRequestError(
                f"refused {method} {url}: not a resource of this run's studies"
            )
        if method == "POST" and len(segments) <= 2:
            # A store: it creates, and may only create what this run minted.
            if len(segments) == 2:
                self._require_minted(method, url, segments[1])
            for study_uid in stored_studies(body or b"", headers.get("Content-Type", "")):
                self._require_minted(method, url, study_uid)
            return
        if len(segments) < 2 or not segments[1]:
            raise UnsafeRequestError(
                f"refused {method} {url}: it could change every study on the server"
            )
        study_uid = segments[1]
        self._require_minted(method, url, study_uid)
        self._verify_marker(method, url, study_uid, get)

    def _require_minted(self, method: str, url: str, study_uid: str) -> None:
        if study_uid not in self.registry:
            raise UnsafeRequestError(
                f"refused {method} {url}: study {study_uid} was not created by this run"
            )

    def _verify_marker(self, method: str, url: str, study_uid: str, get: Get) -> None:
        """The server's record of the study carries this run's marker (or there is none)."""
        if study_uid in self._verified:
            return
        owned = self.registry.owner(study_uid)
        assert owned is not None  # _require_minted came first
        refused = f"refused {method} {url}: "
        try:
            response = get(
                f"{self.base_url}/studies",
                [("StudyInstanceUID", study_uid)],
                {"Accept": DICOM_JSON},
            )
        except Exception as exc:
            raise UnsafeRequestError(
                f"{refused}could not search for study {study_uid} to check whose it is "
                f"({type(exc).__name__})"
            ) from None
        if response.status_code not in (200, 204):
            raise UnsafeRequestError(
                f"{refused}a search for study {study_uid}, to check whose it is, answered "
                f"{response.status_code}"
            )
        try:
            found = json.loads(response.content) if response.content.strip() else []
        except (ValueError, RecursionError):
            found = None
        if not isinstance(found, list) or not all(isinstance(r, dict) for r in found):
            raise UnsafeRequestError(
                f"{refused}a search for study {study_uid} did not answer a DICOM JSON array"
            )
        for result in found:
            if _first(result, STUDY_UID) != study_uid:
                continue  # a search that ignored its filter: another study, not this one
            patient_id = _first(result, PATIENT_ID)
            if patient_id != owned.patient_id:
                raise UnsafeRequestError(
                    f"{refused}study {study_uid} on the server has PatientID {patient_id!r}, "
                    f"not this run's {owned.patient_id!r}: it is someone else's"
                )
        self._verified.add(study_uid)

    # --- Orthanc's REST API (cleanup) --------------------------------------------------------

    def _check_orthanc(self, method: str, url: str, segments: list[str], get: Get) -> None:
        if method == "POST" and segments == ["tools", "lookup"]:
            return  # a lookup of a UID: it reads
        if method != "DELETE" or len(segments) != 2 or segments[0] != "studies":
            raise UnsafeRequestError(f"refused {method} {url}: not a study of this run")
        refused = f"refused {method} {url}: "
        try:
            response = get(f"{self.orthanc_url}/studies/{segments[1]}", [], {})
            study = response.json() if response.status_code == 200 else None
        except Exception:
            study = None
        if not isinstance(study, dict):
            raise UnsafeRequestError(f"{refused}Orthanc did not describe that study")
        tags = study.get("MainDicomTags")
        patient = study.get("PatientMainDicomTags")
        study_uid = tags.get("StudyInstanceUID") if isinstance(tags, dict) else None
        patient_id = patient.get("PatientID") if isinstance(patient, dict) else None
        owned = self.registry.owner(study_uid) if isinstance(study_uid, str) else None
        if owned is None:
            raise UnsafeRequestError(f"{refused}study {study_uid} was not created by this run")
        if patient_id != owned.patient_id:
            raise UnsafeRequestError(
                f"{refused}study {study_uid} there has PatientID {patient_id!r}, not this "
                f"run's {owned.patient_id!r}: it is someone else's"
            )


def _first(obj: dict[str, Any], tag: str) -> Any:
    attribute = obj.get(tag)
    value = attribute.get("Value") if isinstance(attribute, dict) else None
    return value[0] if isinstance(value, list) and value else None


def stored_studies(body: bytes, content_type: str) -> set[str]:
    """The StudyInstanceUIDs a store request would store: those of every part a server could
    read as DICOM (a Part 10 file or DICOM JSON). A part nobody can read stores nothing."""
    try:
        media_type, params = multipart.parse_media_type(content_type or "application/octet-stream")
    except multipart.MultipartError:
        media_type, params = "application/octet-stream", {}
    found: set[str] = set()
    if media_type != "multipart/related":
        found |= _studies_in(body, media_type)
        return found
    root = params.get("type", "")
    try:
        for part in multipart.iter_parts(_chunks(body), content_type):
            found |= _studies_in(part.body, part.content_type or root)
    except multipart.MultipartError:
        pass  # what follows a malformed part cannot be read by anyone either
    return found


def _chunks(body: bytes, size: int = 1 << 16) -> Iterator[bytes]:
    view = memoryview(body)
    for start in range(0, len(body), size):
        yield bytes(view[start : start + size])


def _studies_in(body: bytes, content_type: str) -> set[str]:
    kind = content_type.split(";")[0].strip().lower()
    if "json" in kind:
        try:
            value = json.loads(body)
        except (ValueError, RecursionError):
            return set()
        objects = value if isinstance(value, list) else [value]
        return {uid for obj in objects if isinstance(obj, dict) and (uid := _first(obj, STUDY_UID))}
    if kind == "application/dicom" or body[128:132] == b"DICM":
        import pydicom

        try:
            ds = pydicom.dcmread(
                io.BytesIO(body), stop_before_pixels=True, specific_tags=["StudyInstanceUID"]
            )
            uid = ds.get("StudyInstanceUID")
        except Exception:  # pydicom raises many types for garbage: nobody could store it
            return set()
        return {str(uid)} if uid else set()
    return set()
