"""One request before any check: is there a DICOMweb server at the URL, and does it let us in?

A wrong URL, an unreachable host or refused credentials must give one clear message, not two
hundred failed checks. The probe searches for a UID nobody has, so it reads no one's data.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import requests

from .cleanup import marked_studies, orthanc_product, orthanc_root
from .client import Client
from .dicomweb import DICOM_JSON, ProtocolError, json_array
from .errors import DeadlineExceeded, NoAnswer, Throttled
from .samples import derive_uid, load, run_patient_id
from .settings import Settings

HINT_URL = (
    "--base-url must be the DICOMweb root, e.g. http://host:8042/dicom-web (Orthanc) or "
    "https://<workspace>-<service>.dicom.azurehealthcareapis.com/v2 (Azure)"
)


def _search_study(client: Client, study_uid: str, path: str = "studies") -> requests.Response:
    return client.get(path, query=[("StudyInstanceUID", study_uid)], headers={"Accept": DICOM_JSON})


def _nobodys_uid(settings: Settings) -> str:
    """A study UID this run minted for the probe: no one's data has it."""
    return derive_uid(settings.run_id, "preflight", "none")


@dataclass(frozen=True)
class Probe:
    """What the request before the checks found."""

    problem: str | None  # None: a DICOMweb server that lets us in; else what is wrong, what to do
    server: str = ""  # what the server says it is (its Server header), for the reports
    # What the server's own API says it is ("Orthanc 1.10.1 with the DICOMweb plugin 1.7"),
    # asked only when no name is given and Orthanc's REST API does the cleanup.
    product: str | None = None


def preflight(client: Client, settings: Settings) -> Probe:
    """Whether the server answers like a DICOMweb server, and what it says it is."""
    url = settings.base_url
    try:
        response = _search_study(client, _nobodys_uid(settings))
    except DeadlineExceeded:
        return Probe(
            f"no complete answer from {url} within {settings.timeout:g} s (--dicomweb-timeout)"
        )
    except NoAnswer as exc:
        return Probe(_no_answer_problem(settings, exc))
    except Throttled as exc:
        return Probe(f"the server throttled the pre-flight request (rate limit): {exc}")
    except Exception as exc:
        reason = client.redactor.text(f"{type(exc).__name__}: {exc}")
        return Probe(f"could not send a request to {url}: {reason}")
    server = client.redactor.text(response.headers.get("Server", ""))
    problem = _answer_problem(client, settings, response)
    if problem is None and settings.writes and not settings.purge and not settings.article_uids:
        problem = _run_id_taken(client, settings)
    if problem is not None:
        return Probe(problem, server)
    return Probe(None, server, _product(client, settings))


def _no_answer_problem(settings: Settings, exc: NoAnswer) -> str:
    """Why no answer came, in a user's words, with what to do about it."""
    url = settings.base_url
    parts = urlsplit(url)
    host = parts.hostname or parts.netloc
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if exc.kind == "plain":
        return f"cannot reach {url}: the server does not speak TLS on this port (is it http://?)"
    if exc.kind == "certificate":
        return (
            f"TLS verification of {url} failed; for a test server with a self-signed "
            "certificate use --dicomweb-insecure or REQUESTS_CA_BUNDLE"
        )
    if exc.kind == "tls":
        return f"cannot reach {url}: the TLS handshake with {host}:{port} failed: {exc}"
    if exc.kind == "dns":
        return f"cannot reach {url}: the host name {host} does not resolve (is it spelt right?)"
    if exc.kind == "refused":
        return (
            f"cannot reach {url}: {host} refused the connection on port {port} (nothing "
            "listens there: is the server running, the port right?)"
        )
    if exc.kind == "connect":
        return f"cannot reach {url}: connection failed (is the server running, the host right?)"
    return f"the answer from {url} broke off: {exc}"


def _product(client: Client, settings: Settings) -> str | None:
    """What Orthanc's REST API says the server is, when no name is given and that API is the
    cleanup's (named by --dicomweb-orthanc-url, or --dicomweb-cleanup=orthanc)."""
    if settings.server_name or settings.purge:
        return None
    if settings.cleanup == "orthanc" or (settings.cleanup == "auto" and settings.orthanc_url):
        return orthanc_product(client, settings.orthanc_url or orthanc_root(settings.base_url))
    return None


def _run_id_taken(client: Client, settings: Settings) -> str | None:
    """A run id whose marker is already on the server would make another run's data look like
    this run's: refuse it. (A server that cannot search by PatientID is not refused: the guard
    still checks every delete.)"""
    marker = run_patient_id(settings.run_id)
    try:
        found = marked_studies(client, marker)
    except Exception:
        return None
    if not found:
        return None
    return (
        f"run id {settings.run_id} already has {len(found)} stud"
        f"{'y' if len(found) == 1 else 'ies'} on the server (PatientID {marker}), from an "
        "earlier run: pick another --dicomweb-run-id, or list and remove them with "
        f"--dicomweb-purge=list (or =delete) --dicomweb-run-id={settings.run_id}"
    )


def _answer_problem(client: Client, settings: Settings, response: requests.Response) -> str | None:
    """What is wrong with the server's answer to the probe, if anything."""
    url = settings.base_url
    status = response.status_code
    if status in (401, 403):
        who = (
            "unauthenticated requests"
            if settings.auth == "none"
            else f"the {settings.auth} credentials"
        )
        return (
            f"the server refused {who}: GET {response.url} answered {status}; "
            "check DICOMWEB_AUTH and its credentials"
        )
    if status == 404:
        return f"no DICOMweb service at {url}: a search for studies answered 404; {HINT_URL}"
    if status not in (200, 204):
        return (
            f"the server answered a search for studies with {status} {response.reason}; {HINT_URL}"
        )
    if status == 200:
        content_type = response.headers.get("Content-Type", "")
        if _is_rest_listing(client, settings, response):
            return (
                f"{url} answered a search for studies with application/json, not "
                f"{DICOM_JSON} (PS3.18 10.6.4): that is a server's own REST API (Orthanc's "
                f"/studies answers so), not its DICOMweb root; give the DICOMweb root, e.g. "
                f"--base-url={url}/dicom-web"
            )
        try:
            if "json" not in content_type:
                raise ProtocolError(content_type or "no Content-Type")
            json_array(response)
        except ProtocolError:
            return (
                f"{url} answered a search for studies with 200 but not DICOM JSON "
                f"(Content-Type {content_type or 'missing'}); {HINT_URL}"
            )

    if settings.article_uids:
        article_study = load(settings.samples).study_uid
        found = _search_study(client, article_study)
        if found.status_code == 200 and found.content.strip(b" []\r\n"):
            return (
                f"the article's study {article_study} is already on the server; this run did "
                "not create it and never deletes what it did not create: remove it yourself, "
                "or run without --dicomweb-article-uids"
            )
    return None


def _is_rest_listing(client: Client, settings: Settings, response: requests.Response) -> bool:
    """Whether a search answered with application/json came from a server's own REST API (its
    list of resources) rather than from a DICOMweb server that labels its JSON so, whose
    verdict the media type checks give. A list of anything but objects is such a listing
    (Orthanc's IDs); an empty one is, when a DICOMweb search answers below the URL (Orthanc's
    /dicom-web: the REST root of a server that stores nothing yet)."""
    if _media(response) != "application/json":
        return False
    try:
        listing = response.json()
    except ValueError:
        return False
    if not isinstance(listing, list):
        return False
    if listing:
        return not all(isinstance(item, dict) for item in listing)
    try:
        below = _search_study(
            client, _nobodys_uid(settings), f"{settings.base_url}/dicom-web/studies"
        )
    except Exception:
        return False
    return below.status_code == 204 or (below.status_code == 200 and _media(below) == DICOM_JSON)


def _media(response: requests.Response) -> str:
    return response.headers.get("Content-Type", "").split(";")[0].strip().lower()
