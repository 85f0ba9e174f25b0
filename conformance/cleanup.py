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
from functools import partial
from typing import Any, Literal
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
# What the server says it is can wait no longer than this: the run never depends on it.
IDENTITY_TIMEOUT = 10.0
# What a delete found: the study removed, not on the server (nothing to remove, nothing to
# count), or a delete the server refused.
Outcome = Literal["removed", "absent", "refused"]


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


def merged(reports: list[CleanupReport]) -> CleanupReport:
    """The run's cleanup as one report: every process's, and the sweep's."""
    # The methods that did something (a sweep that found nothing is named only when alone).
    acted = {r.method for r in reports if r.removed or r.leftovers or r.foreign}
    methods = sorted(acted or {r.method for r in reports})
    total = CleanupReport(", ".join(methods))
    for report in reports:
        total.merge(report)
    return total


def orthanc_root(base_url: str) -> str:
    """The Orthanc server root for a DICOMweb base URL: the URL without its last segment."""
    parts = urlsplit(base_url.rstrip("/"))
    path = parts.path.rsplit("/", 1)[0]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def orthanc_name(version: str, plugin_version: str | None) -> str:
    """How reports name an Orthanc: "Orthanc 1.10.1 with the DICOMweb plugin 1.7"."""
    plugin = f" with the DICOMweb plugin {plugin_version}" if plugin_version else ""
    return f"Orthanc {version}{plugin}"


def orthanc_product(client: Client, orthanc_url: str) -> str | None:
    """What the Orthanc whose REST API is at ``orthanc_url`` says it is (its /system and
    /plugins/dicom-web), or None: one request each, briefly, and never an error."""
    root = orthanc_url.rstrip("/")
    with client.brief(IDENTITY_TIMEOUT):
        version = _version(client, f"{root}/system")
        plugin = _version(client, f"{root}/plugins/dicom-web") if version else None
    return orthanc_name(version, plugin) if version else None


def _version(client: Client, url: str) -> str | None:
    try:
        answer = client.get(url, headers={"Accept": "application/json"})
        version = answer.json().get("Version") if answer.status_code == 200 else None
    except (*_EXPECTED, AttributeError):
        return None
    return version if isinstance(version, str) and version.strip() else None


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

    def delete_with_dicomweb(self, study_uid: str) -> Outcome | None:
        """What the DICOMweb DELETE of the study found; None when the server has none."""
        response = self.client.delete(f"studies/{study_uid}")
        if response.status_code in (200, 202, 204):
            return "removed"
        if response.status_code == 404 and not self.study_exists(study_uid):
            return "absent"  # never stored (its store failed), or already gone: not counted
        if response.status_code in (404, 405, 501):
            return None
        return "refused"

    def is_orthanc(self) -> bool:
        try:
            response = self.client.get(f"{self.orthanc_url}/system")
            return response.status_code == 200 and "ApiVersion" in response.json()
        except (*_EXPECTED, AttributeError):
            return False

    def delete_with_orthanc(self, study_uid: str, report: CleanupReport) -> Outcome:
        """Delete the Orthanc studies holding ``study_uid`` that are this run's; another
        patient's study with the same UID is left alone, and said so."""
        found = self.client.post(f"{self.orthanc_url}/tools/lookup", body=study_uid.encode())
        if found.status_code != 200:
            raise ValueError(f"Orthanc's /tools/lookup answered {found.status_code}")
        answer = found.json()
        if not isinstance(answer, list) or not all(isinstance(r, dict) for r in answer):
            raise ValueError("Orthanc's /tools/lookup did not answer a JSON array of objects")
        outcome: Outcome = "absent"
        for orthanc_id in [r.get("ID") for r in answer if r.get("Type") == "Study"]:
            try:
                deleted = self.client.delete(f"{self.orthanc_url}/studies/{orthanc_id}")
            except UnsafeRequestError as exc:
                report.foreign[study_uid] = str(exc)
                continue
            if deleted.status_code != 200:
                raise ValueError(f"Orthanc answered {deleted.status_code} to the delete")
            outcome = "removed"
        return outcome

    def choose(self, probe_study: str) -> tuple[str, Outcome | None]:
        """The method to use: the configured one, or in auto mode the first that works; and
        what deleting ``probe_study`` found, when trying DICOMweb DELETE on it did."""
        if self.mode != "auto":
            return self.mode, None
        probed = self.delete_with_dicomweb(probe_study)
        if probed is not None:
            return "dicomweb", probed
        return ("orthanc" if self.is_orthanc() else "none"), None

    def run(self, studies: list[str] | None = None) -> CleanupReport:
        """Delete the given studies (default: all this run stored); report what remains."""
        studies = self.registry.studies if studies is None else studies
        if not studies:
            return CleanupReport(method=self.mode)
        try:
            method, probed = self.choose(studies[0])
        except (*_EXPECTED, UnsafeRequestError) as exc:
            return CleanupReport(
                self.mode, leftovers={s: f"cleanup failed: {_reason(exc)}" for s in studies}
            )
        # Each study is deleted on its own (a delete touches no other study): at once, on the
        # client's pool, each into a report of its own merged in the order of ``studies``.
        report = CleanupReport(method)
        calls = [
            partial(self._remove, uid, method, probed if i == 0 else None)
            for i, uid in enumerate(studies)
        ]
        for part in self.client.each(calls, writes=True):
            report.merge(part)
        return report

    def _remove(self, study_uid: str, method: str, probed: Outcome | None) -> CleanupReport:
        """Delete one study (``probed``: what choosing the method found for it already)."""
        report = CleanupReport(method)
        if self.abandon():
            report.leftovers[study_uid] = "cleanup was interrupted"
            return report
        if method == "none":
            report.leftovers[study_uid] = (
                "cleanup is off"
                if self.mode == "none"
                else "the server has neither DICOMweb DELETE nor Orthanc's REST API"
            )
            return report
        try:
            done = (
                probed
                if probed is not None
                else self.delete_with_dicomweb(study_uid)
                if method == "dicomweb"
                else self.delete_with_orthanc(study_uid, report)
            )
        except UnsafeRequestError as exc:
            report.foreign[study_uid] = str(exc)
            return report
        except Exception as exc:  # whatever the server answered: report it, go on
            report.leftovers[study_uid] = _reason(exc)
            return report
        # Only what was there and is gone counts: a study whose store failed was never
        # stored, and "removed" must not say otherwise.
        if done == "removed":
            report.removed.append(study_uid)
        elif done != "absent":
            report.leftovers[study_uid] = f"{method} delete was refused"
        return report


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
