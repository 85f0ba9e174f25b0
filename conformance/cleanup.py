"""Removing what the run stored, and only that; and finding what runs left behind.

Cleanup is a capability of the server: DICOMweb DELETE (Azure, Google), Orthanc's native REST API,
or nothing. Every delete goes through the client's guard (``guard.py``): it is sent only for a
study this run minted whose data on the server carries this run's marker, so the suite can be
pointed at a production archive without risk to anyone else's data. Nothing here raises: what
could not be removed is reported, with why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from .client import Client
from .errors import NoAnswer, Throttled, UnsafeRequestError
from .guard import PATIENT_ID, STUDY_UID, Registry
from .samples import MARKER_PREFIX

DICOM_JSON = "application/dicom+json"
STUDY_DESCRIPTION = "00081030"
PAGE = 100
MAX_PAGES = 50  # a marker search reads at most 5,000 studies, whatever the server answers
_EXPECTED = (requests.RequestException, NoAnswer, Throttled, ValueError, TypeError, KeyError)


@dataclass
class CleanupReport:
    method: str
    removed: list[str] = field(default_factory=list)
    leftovers: dict[str, str] = field(default_factory=dict)  # study UID -> why it is still there
    # Studies with one of this run's UIDs that are someone else's (another PatientID): left alone.
    foreign: dict[str, str] = field(default_factory=dict)

    def merge(self, other: CleanupReport) -> None:
        self.removed += [uid for uid in other.removed if uid not in self.removed]
        self.leftovers.update(other.leftovers)
        self.foreign.update(other.foreign)
        for uid in self.removed:
            self.leftovers.pop(uid, None)


def orthanc_root(base_url: str) -> str:
    """The Orthanc server root for a DICOMweb base URL: the URL without its last segment."""
    parts = urlsplit(base_url.rstrip("/"))
    path = parts.path.rsplit("/", 1)[0]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _first(obj: dict[str, Any], tag: str) -> Any:
    attribute = obj.get(tag)
    value = attribute.get("Value") if isinstance(attribute, dict) else None
    return value[0] if isinstance(value, list) and value else None


def marked_studies(client: Client, marker: str) -> dict[str, str]:
    """Studies on the server whose PatientID is ``marker`` (or, for ``DWC-*``, any marker of
    the suite): study UID -> PatientID. Results are checked here, not trusted to the server's
    matching; paging is bounded."""
    found: dict[str, str] = {}
    for page in range(MAX_PAGES):
        response = client.get(
            "studies",
            query=[("PatientID", marker), ("limit", str(PAGE)), ("offset", str(page * PAGE))],
            headers={"Accept": DICOM_JSON},
        )
        if response.status_code == 204:
            break
        if response.status_code != 200:
            raise ValueError(f"a search for PatientID {marker} answered {response.status_code}")
        results = response.json() if response.content.strip() else []
        if not isinstance(results, list):
            raise ValueError(f"a search for PatientID {marker} did not answer a JSON array")
        before = len(found)
        for result in results:
            if not isinstance(result, dict):
                continue
            uid, patient_id = _first(result, STUDY_UID), _first(result, PATIENT_ID)
            if not isinstance(uid, str) or not isinstance(patient_id, str):
                continue
            wanted = (
                patient_id.startswith(MARKER_PREFIX)
                if marker == f"{MARKER_PREFIX}*"
                else patient_id == marker
            )
            if wanted:
                found[uid] = patient_id
        if len(results) < PAGE or len(found) == before:
            break
    return found


class Cleaner:
    def __init__(
        self, client: Client, registry: Registry, mode: str = "auto", orthanc_url: str | None = None
    ) -> None:
        self.client = client
        self.registry = registry
        self.mode = mode
        self.orthanc_url = (orthanc_url or orthanc_root(client.base_url)).rstrip("/")
        # Set (by a signal handler) to stop after the current study: the rest is reported.
        self.abandon: Callable[[], bool] = lambda: False

    def study_exists(self, study_uid: str) -> bool:
        response = self.client.get(
            "studies", query=[("StudyInstanceUID", study_uid)], headers={"Accept": DICOM_JSON}
        )
        return response.status_code == 200 and bool(response.content.strip(b" []\r\n"))

    def delete_with_dicomweb(self, study_uid: str) -> bool | None:
        """True when deleted (or already gone), None when the server has no DICOMweb DELETE."""
        response = self.client.delete(f"studies/{study_uid}")
        if response.status_code in (200, 202, 204):
            return True
        if response.status_code == 404 and not self.study_exists(study_uid):
            return True
        if response.status_code in (404, 405, 501):
            return None
        return False

    def is_orthanc(self) -> bool:
        try:
            response = self.client.get(f"{self.orthanc_url}/system")
            return response.status_code == 200 and "ApiVersion" in response.json()
        except (*_EXPECTED, AttributeError):
            return False

    def delete_with_orthanc(self, study_uid: str, report: CleanupReport) -> bool:
        """Delete the Orthanc studies holding ``study_uid`` that are this run's; another
        patient's study with the same UID is left alone, and said so."""
        found = self.client.post(f"{self.orthanc_url}/tools/lookup", body=study_uid.encode())
        if found.status_code != 200:
            raise ValueError(f"Orthanc's /tools/lookup answered {found.status_code}")
        answer = found.json()
        if not isinstance(answer, list) or not all(isinstance(r, dict) for r in answer):
            raise ValueError("Orthanc's /tools/lookup did not answer a JSON array of objects")
        for orthanc_id in [r.get("ID") for r in answer if r.get("Type") == "Study"]:
            try:
                deleted = self.client.delete(f"{self.orthanc_url}/studies/{orthanc_id}")
            except UnsafeRequestError as exc:
                report.foreign[study_uid] = str(exc)
                continue
            if deleted.status_code != 200:
                raise ValueError(f"Orthanc answered {deleted.status_code} to the delete")
        return True

    def choose(self, probe_study: str) -> str:
        """The method to use: the configured one, or in auto mode the first that works."""
        if self.mode != "auto":
            return self.mode
        if self.delete_with_dicomweb(probe_study) is not None:
            return "dicomweb"
        return "orthanc" if self.is_orthanc() else "none"

    def run(self, studies: list[str] | None = None) -> CleanupReport:
        """Delete the given studies (default: all this run stored); report what remains."""
        studies = self.registry.studies if studies is None else studies
        if not studies:
            return CleanupReport(method=self.mode)
        try:
            method = self.choose(studies[0])
        except (*_EXPECTED, UnsafeRequestError) as exc:
            return CleanupReport(
                self.mode, leftovers={s: f"cleanup failed: {_reason(exc)}" for s in studies}
            )
        report = CleanupReport(method)
        for study_uid in studies:
            if self.abandon():
                report.leftovers[study_uid] = "cleanup was interrupted"
                continue
            if method == "none":
                report.leftovers[study_uid] = (
                    "cleanup is off"
                    if self.mode == "none"
                    else "the server has neither DICOMweb DELETE nor Orthanc's REST API"
                )
                continue
            try:
                done = (
                    self.delete_with_dicomweb(study_uid)
                    if method == "dicomweb"
                    else self.delete_with_orthanc(study_uid, report)
                )
            except UnsafeRequestError as exc:
                report.foreign[study_uid] = str(exc)
                continue
            except Exception as exc:  # whatever the server answered: report it, go on
                report.leftovers[study_uid] = _reason(exc)
                continue
            if done:
                report.removed.append(study_uid)
            else:
                report.leftovers[study_uid] = f"{method} delete was refused"
        return report


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
