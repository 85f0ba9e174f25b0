"""Removing what the run stored, and only that.

Cleanup is a capability of the server: DICOMweb DELETE (Azure, Google), Orthanc's native REST API,
or nothing. Every delete is checked against the run's own list of studies first, so the suite can
be pointed at a production archive without risk to anyone else's data.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import requests

from .client import Client

DICOM_JSON = "application/dicom+json"


class UnsafeDeleteError(RuntimeError):
    """A delete was asked for data this run did not create; it was not sent."""


class Registry:
    """The studies this run created (recorded before the store is sent: a failed store may
    still have stored something)."""

    def __init__(self) -> None:
        self._studies: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, study_uid: str, label: str) -> None:
        with self._lock:
            self._studies.setdefault(study_uid, label)

    def __contains__(self, study_uid: object) -> bool:
        return study_uid in self._studies

    def require(self, study_uid: str) -> None:
        if study_uid not in self._studies:
            raise UnsafeDeleteError(
                f"refusing to delete study {study_uid}: this run did not create it"
            )

    @property
    def studies(self) -> list[str]:
        return list(self._studies)


@dataclass
class CleanupReport:
    method: str
    removed: list[str] = field(default_factory=list)
    leftovers: dict[str, str] = field(default_factory=dict)  # study UID -> why it is still there


def orthanc_root(base_url: str) -> str:
    """The Orthanc server root for a DICOMweb base URL: the URL without its last segment."""
    parts = urlsplit(base_url.rstrip("/"))
    path = parts.path.rsplit("/", 1)[0]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class Cleaner:
    def __init__(
        self, client: Client, registry: Registry, mode: str = "auto", orthanc_url: str | None = None
    ) -> None:
        self.client = client
        self.registry = registry
        self.mode = mode
        self.orthanc_url = (orthanc_url or orthanc_root(client.base_url)).rstrip("/")

    def study_exists(self, study_uid: str) -> bool:
        response = self.client.get(
            "studies", query=[("StudyInstanceUID", study_uid)], headers={"Accept": DICOM_JSON}
        )
        return response.status_code == 200 and bool(response.content.strip(b" []\r\n"))

    def delete_with_dicomweb(self, study_uid: str) -> bool | None:
        """True when deleted (or already gone), None when the server has no DICOMweb DELETE."""
        self.registry.require(study_uid)
        response = self.client.delete(f"studies/{study_uid}")
        if response.status_code in (200, 202, 204):
            return True
        if response.status_code == 404 and not self.study_exists(study_uid):
            return True
        if response.status_code in (404, 405, 501):
            return None
        response.raise_for_status()
        return False

    def is_orthanc(self) -> bool:
        try:
            response = self.client.get(f"{self.orthanc_url}/system")
            return response.status_code == 200 and "ApiVersion" in response.json()
        except (requests.RequestException, ValueError):
            return False

    def delete_with_orthanc(self, study_uid: str) -> bool:
        self.registry.require(study_uid)
        found = self.client.post(f"{self.orthanc_url}/tools/lookup", body=study_uid.encode())
        found.raise_for_status()
        ids = [r["ID"] for r in found.json() if r.get("Type") == "Study"]
        for orthanc_id in ids:
            self.client.delete(f"{self.orthanc_url}/studies/{orthanc_id}").raise_for_status()
        return True

    def choose(self, probe_study: str) -> str:
        """The method to use: the configured one, or in auto mode the first that works."""
        if self.mode != "auto":
            return self.mode
        if self.delete_with_dicomweb(probe_study) is not None:
            return "dicomweb"
        return "orthanc" if self.is_orthanc() else "none"

    def run(self, studies: list[str] | None = None) -> CleanupReport:
        """Delete the given studies (default: all this run created); report what remains."""
        studies = self.registry.studies if studies is None else studies
        if not studies:
            return CleanupReport(method=self.mode)
        try:
            method = self.choose(studies[0])
        except (requests.RequestException, UnsafeDeleteError) as exc:
            return CleanupReport(
                self.mode, leftovers={s: f"cleanup failed: {exc}" for s in studies}
            )
        report = CleanupReport(method)
        for study_uid in studies:
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
                    else self.delete_with_orthanc(study_uid)
                )
            except (requests.RequestException, ValueError, KeyError, UnsafeDeleteError) as exc:
                report.leftovers[study_uid] = f"{type(exc).__name__}: {exc}"
                continue
            if done:
                report.removed.append(study_uid)
            else:
                report.leftovers[study_uid] = f"{method} delete was refused"
        return report
