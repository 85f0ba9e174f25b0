"""A stand-in for the Azure DICOM service's extensions, over a real Orthanc: test infrastructure.

No server that installs here has Azure's DELETE, change feed or single-part STOW, so this loopback
HTTP server adds them in front of an Orthanc, following Azure's documented behaviour (requirements
reference A.3, A.6, A.7; microsoft/dicom-server's source where the documents are silent):

- ``/v1/...`` and ``/v2/...`` map to Orthanc's DICOMweb root; any other path is 404. What the
  stand-in does not answer itself is forwarded unchanged and streamed back.
- STOW (``POST /vN/studies[/{study}]``), multipart/related (``type`` optional) or single-part
  ``application/dicom``: duplicates (45070), non-DICOM parts (43264) and study mismatches (43265)
  become FailedSOPSequence items; the rest is stored through Orthanc's native REST API.
- DELETE of a study, series or instance: 204, 404 when nothing matches, 400 for a UID outside
  the documented format (1 to 64 letters, digits, "." and "-": the conformance statement v2, and
  microsoft/dicom-server's DicomIdentifierValidator, ``^[A-Za-z0-9.-]{1,64}$`` in effect).
  ``AzureStandIn(orthanc, gone=410)`` answers what it deleted (a GET of the resource, a second
  DELETE) with 410 instead, as PS3.18 Table 8.5-1 asks of a server that knows: the other reading
  of what a deleted resource answers.
- A change feed (``/vN/changefeed``, ``/vN/changefeed/latest``) from the stand-in's own log of the
  creates and deletes it performed. Data stored in Orthanc by other means has no create entry.
- Metadata (``GET .../metadata`` of a study, series or instance) carries an ETag, a hash of the
  body Orthanc answers; ``If-None-Match`` naming it (weak comparison, or ``*``) answers 304 with
  the ETag and no body. Azure derives its ETag from the instances' versions instead: both change
  when the metadata does.

``AzureStandIn(orthanc, fault)`` may switch on one fault from ``FAULTS``; each models a real bug
(a plausible mistake in a server's code, not a different reading of the documents), so that the
suite's checks can be shown to catch it.

``AzureStandIn(orthanc, token=...)`` demands ``Authorization: Bearer <token>`` of every request
and answers any other with 401 and a Bearer challenge (as Azure does for a missing or invalid
Entra ID token; the token here is a plain shared string, not a JWT).

Not modelled: 403 (a valid token without the DICOM role), data partitions,
``api-deprecated-versions``, ``v1.0-prerelease``, ``api.yaml``, size limits (413), 45071, v2
warnings (202 with WarningReason for invalid optional attributes), zeroing the preamble,
implicit-VR rules, extended query tags, operations, bulk update,
UPS, ETags anywhere but metadata, If-Match. WADO, QIDO, metadata (but for its ETag) and rendered
answers are Orthanc's own, with all their differences from Azure (406 rules, QIDO 400s, default
attributes, 400 for malformed path UIDs). The change feed lives in memory; writes are serialized
by one lock.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import chain
from operator import le, lt
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, unquote, urlsplit

import pydicom
import requests

from conformance import multipart
from conformance.local.orthanc import LocalOrthanc

STAND_IN = "Azure stand-in over Orthanc, not Azure (dicomweb-conformance tests)"
SUPPORTED_VERSIONS = "1.0,2.0"
FAULTS = (
    "delete-keeps-data",  # DELETE answers 204 but deletes nothing
    "changefeed-misses-delete",  # delete events are not logged
    "changefeed-paging-skips",  # v2 applies the offset twice; v1 skips sequence offset + 2
    "duplicate-accepted",  # a duplicate is answered 200 and listed as referenced
    "single-part-ignored",  # single-part STOW answers 200 but stores nothing
    "changefeed-wrong-uids",  # create entries carry the series UID as SopInstanceUid
    "changefeed-latest-stale",  # changefeed/latest answers the first entry, not the last
    "changefeed-metadata-always",  # includeMetadata is validated, then ignored: always Metadata
    "changefeed-range-500",  # limit and offset out of range are not refused: 500, not a 4xx
    "changefeed-window-end-inclusive",  # the time window takes endTime as inclusive
    "changefeed-object-not-array",  # GET changefeed answers {"entries": [...]}, not an array
    "delete-unknown-204",  # DELETE of what is not there answers 204 (taken as "gone already")
    "delete-malformed-uid-404",  # DELETE does not validate UIDs: a malformed one is 404, not 400
    "etag-ignored",  # metadata carries an ETag, but If-None-Match is ignored: 200 with the body
    "search-cached-past-delete",  # searches are cached; a store clears the cache, a delete not
)
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host"})
VERSIONED = re.compile(r"/(v1|v2)(/.*)?")
STOW_PATH = re.compile(r"/studies(?:/([^/]+))?/?")
DELETE_PATH = re.compile(r"/studies/([^/]+)(?:/series/([^/]+)(?:/instances/([^/]+))?)?/?")
SEARCH_PATH = re.compile(
    r"/(?:studies(?:/[^/]+/(?:series(?:/[^/]+/instances)?|instances))?|series|instances)/?"
)
METADATA_PATH = re.compile(r"/studies/[^/]+(?:/series/[^/]+(?:/instances/[^/]+)?)?/metadata/?")
CONDITIONAL = frozenset({"if-none-match", "if-match", "if-modified-since", "if-unmodified-since"})
UID = re.compile(r"[A-Za-z0-9.-]{1,64}")  # Azure's documented format, not PS3.5's grammar
BULK_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})  # Azure's metadata leaves them out
PROCESSING_FAILURE, VALIDATION_FAILED, STUDY_MISMATCH, ALREADY_STORED = 272, 43264, 43265, 45070
FEED_LIMITS = {"v1": (10, 100), "v2": (100, 200)}  # (default, maximum) per API version
EARLIEST, LATEST = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)

Triple = tuple[str, str, str]  # (study, series, SOP instance) UIDs
Item = dict[str, Any]  # a DICOM JSON object
T = TypeVar("T")


@dataclass(frozen=True)
class Event:
    """One change feed entry; ``state`` as of the moment the view was taken."""

    sequence: int
    study: str
    series: str
    sop: str
    action: str  # "create" | "delete"
    timestamp: datetime
    state: str = "current"  # "current" | "replaced" | "deleted"

    @property
    def triple(self) -> Triple:
        return self.study, self.series, self.sop


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()  # any further headers, e.g. ETag


def text(status: int, message: str) -> Reply:
    return Reply(status, message.encode(), "text/plain; charset=utf-8")


# Azure's challenge names the token's issuer and audience; the stand-in's names itself.
UNAUTHORIZED = replace(
    text(401, "Authentication failed: no valid bearer token."),
    headers=(("WWW-Authenticate", 'Bearer realm="dicom-stand-in", error="invalid_token"'),),
)


def json_reply(status: int, value: object, content_type: str = "application/json") -> Reply:
    # sort_keys puts DICOM JSON attributes in ascending tag order (PS3.18 F.2).
    sort = content_type == "application/dicom+json"
    return Reply(status, json.dumps(value, sort_keys=sort).encode(), content_type)


def element(vr: str, value: object) -> Item:
    return {"vr": vr, "Value": [value]}


def query_value(params: dict[str, str], name: str, default: T, parse: Callable[[str], T]) -> T:
    """A parameter (names are case-insensitive, as in ASP.NET); ValueError with Azure-like text."""
    if name.lower() not in params:
        return default
    value = params[name.lower()]
    try:
        return parse(value)
    except ValueError:
        raise ValueError(f"The value '{value}' is not valid for {name}.") from None


def to_int(value: str) -> int:
    if not re.fullmatch(r"-?[0-9]{1,18}", value):
        raise ValueError(value)
    return int(value)


def to_bool(value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise ValueError(value)
    return value.lower() == "true"


def to_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:  # Azure answers 400 to a time without a zone
        raise ValueError(value)
    return moment


def etag_of(body: bytes) -> str:
    """A strong entity tag for a body: equal bodies, equal tags."""
    return f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def matches(if_none_match: str, etag: str) -> bool:
    """Whether an If-None-Match header names ``etag`` (RFC 9110 13.1.2: weak comparison)."""
    if if_none_match.strip() == "*":
        return True
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return etag.removeprefix("W/") in tags


def split_stow_body(content_type: str, body: bytes) -> list[bytes] | Reply:
    """The files of a STOW request, or the error answer (A.3: Azure's multipart reader)."""
    unsupported = text(415, f"The content type '{content_type}' is not supported.")
    try:
        media_type, params = multipart.parse_media_type(content_type)
    except multipart.MultipartError:
        return unsupported
    if media_type == "application/dicom":
        return [body] if body else []
    boundary = params.get("boundary")
    if media_type != "multipart/related" or not boundary:
        return unsupported
    if "start" in params:
        return text(400, "The start parameter in multipart/related is not supported.")
    if params.get("type", "application/dicom").lower() != "application/dicom":
        return unsupported
    if body.strip() in (b"", f"--{boundary}--".encode()):
        return []
    try:
        parts = multipart.decode(body, content_type)
        # A part without a Content-Type has the root type, application/dicom.
        types = {multipart.parse_media_type(p.content_type)[0] for p in parts if p.content_type}
    except multipart.MultipartError as error:
        return text(400, f"The multipart body is malformed: {error}")
    if not types <= {"application/dicom"}:
        return text(415, f"Every part must be application/dicom, not {', '.join(sorted(types))}.")
    return [part.body for part in parts]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, standin: AzureStandIn) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.standin = standin

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hanging up is no news
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        standin = cast(_Server, self.server).standin
        url = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        versioned = VERSIONED.fullmatch(url.path)
        if not versioned:
            self._send(text(404, "Routes without a version (/v1, /v2) are not supported."))
            return
        version, path = versioned.group(1), versioned.group(2) or ""
        if standin.token is not None and headers.get("authorization") != f"Bearer {standin.token}":
            self._send(UNAUTHORIZED)
            return
        try:
            reply = standin.dispatch(self.command, version, path, url.query, headers, body)
        except Exception as error:  # an answer beats a dropped connection in tests
            reply = text(500, f"stand-in error: {type(error).__name__}: {error}")
        if reply is not None:
            self._send(reply)
            return
        target = standin.orthanc.dicomweb_url + path + (f"?{url.query}" if url.query else "")
        self._forward(target, body)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = _handle

    def _forward(self, url: str, body: bytes) -> None:
        """Send the request on to Orthanc; stream its answer back."""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            upstream = requests.request(
                self.command, url, headers=headers, data=body or None, stream=True, timeout=60
            )
        except requests.RequestException as error:
            self._send(text(502, f"Orthanc did not answer: {error}"))
            return
        with upstream:
            self._stamp(upstream.status_code)
            for key, value in upstream.headers.items():
                if key.lower() not in HOP_BY_HOP | {"server"}:  # the stand-in's Server says it
                    self.send_header(key, value)
            if self.command == "HEAD" or upstream.status_code in (204, 304):
                self.end_headers()
                return
            # Orthanc may end a body by closing the connection: re-frame such a body as chunks.
            length = upstream.headers.get("Content-Length")
            self.send_header(
                *(("Content-Length", length) if length else ("Transfer-Encoding", "chunked"))
            )
            self.end_headers()
            for chunk in upstream.raw.stream(1 << 16, decode_content=False):
                self.wfile.write(chunk if length else b"%x\r\n%b\r\n" % (len(chunk), chunk))
            if not length:
                self.wfile.write(b"0\r\n\r\n")

    def version_string(self) -> str:
        """The Server header: the suite's reports show it, and must say this is not Azure."""
        return STAND_IN

    def _stamp(self, status: int) -> None:
        self.send_response(status)
        self.send_header("X-DICOMweb-Stand-In", STAND_IN)
        self.send_header("api-supported-versions", SUPPORTED_VERSIONS)

    def _send(self, reply: Reply) -> None:
        self._stamp(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        for key, value in reply.headers:
            self.send_header(key, value)
        if reply.status not in (204, 304):  # answers that never have a body
            self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output readable


class AzureStandIn:
    """The stand-in on ``127.0.0.1`` (a free port) over ``orthanc``; a context manager."""

    def __init__(
        self,
        orthanc: LocalOrthanc,
        fault: str | None = None,
        *,
        gone: int = 404,
        token: str | None = None,
    ) -> None:
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        if gone not in (404, 410):
            raise ValueError(f"a deleted resource answers 404 or 410, not {gone}")
        self.orthanc = orthanc
        self.fault = fault
        self.gone = gone  # what a resource deleted through the stand-in answers
        self.token = token  # the bearer token every request must carry (None: none needed)
        self._lock = threading.RLock()
        self._log: list[Event] = []
        self._current: dict[Triple, int | None] = {}  # sequence of the latest create; None: deleted
        self._metadata: dict[Triple, Item] = {}
        self._searches: dict[tuple[str, str, str], Reply] = {}  # search-cached-past-delete's
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def base_url(self, version: str = "v2") -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/{version}"

    def public_url(self, version: str, headers: dict[str, str]) -> str:
        """The stand-in's root as its client reaches it: through a gateway that says where it
        is (RFC 7239 Forwarded: host=...;proto=...), else directly."""
        forwarded = dict(
            pair.strip().split("=", 1)
            for pair in headers.get("forwarded", "").split(",")[0].split(";")
            if "=" in pair
        )
        if "host" not in forwarded:
            return self.base_url(version)
        return f"{forwarded.get('proto', 'http')}://{forwarded['host'].strip(chr(34))}/{version}"

    def reset(self) -> None:
        """Forget every event (purging Orthanc is the caller's business)."""
        with self._lock:
            self._log.clear()
            self._current.clear()
            self._metadata.clear()
            self._searches.clear()

    @property
    def events(self) -> tuple[Event, ...]:
        """The change log as it stands, each entry with its current State."""
        with self._lock:
            return tuple(replace(event, state=self._state(event)) for event in self._log)

    def __enter__(self) -> AzureStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def dispatch(
        self, method: str, version: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> Reply | None:
        """The stand-in's own answer to a request, or None to forward it to Orthanc."""
        if path.rstrip("/") in ("/changefeed", "/changefeed/latest"):
            if method != "GET":
                return text(405, f"{method} is not allowed on the change feed.")
            return self._changefeed(version, path.rstrip("/").endswith("latest"), query)
        if method == "POST" and (stow := STOW_PATH.fullmatch(path)):
            study = unquote(stow.group(1)) if stow.group(1) else None
            return self._store(version, study, headers, body)
        if method == "DELETE" and (target := DELETE_PATH.fullmatch(path)):
            study, series, sop = (unquote(uid) if uid else None for uid in target.groups())
            return self._delete(cast(str, study), series, sop)
        if method == "GET" and self.gone == 410 and (target := DELETE_PATH.fullmatch(path)):
            study, series, sop = (unquote(uid) if uid else None for uid in target.groups())
            if self._deleted(cast(str, study), series, sop):
                return text(410, "The resource has been deleted.")
        if method == "GET" and METADATA_PATH.fullmatch(path):
            return self._metadata_with_etag(version, path, query, headers)
        if method == "GET" and self.fault == "search-cached-past-delete":
            return (
                self._cached_search(path, query, headers) if SEARCH_PATH.fullmatch(path) else None
            )
        return None

    def _cached_search(self, path: str, query: str, headers: dict[str, str]) -> Reply:
        """The fault search-cached-past-delete: a search answer kept until the next store,
        which clears every one kept (the invalidation hooked to the store path only; compare
        dcm4chee-arc-light#2931, where a permanent delete left caches serving answers from
        before it, and Google's note that search results lag an instance's delete)."""
        key = (path, query, headers.get("accept", ""))
        with self._lock:
            if key not in self._searches:
                url = self.orthanc.dicomweb_url + path + (f"?{query}" if query else "")
                answer = requests.get(url, headers={"Accept": key[2]} if key[2] else {}, timeout=60)
                content_type = answer.headers.get("Content-Type")
                self._searches[key] = Reply(answer.status_code, answer.content, content_type)
            return self._searches[key]

    # --- Orthanc's native REST API ---------------------------------------------------------

    def _native(self, method: str, path: str, data: bytes | None = None) -> requests.Response:
        url = f"{self.orthanc.url}{path}"
        response = requests.request(method, url, data=data, auth=self.orthanc.auth, timeout=60)
        if response.status_code >= 500:
            response.raise_for_status()
        return response

    def _find(self, study: str, series: str | None, sop: str | None) -> dict[str, list[Triple]]:
        """Orthanc's resources at the level of the deepest UID given that really lie under the
        given parents: their paths, each with the UIDs of its instances."""
        level, uid = (
            ("Instance", sop) if sop else ("Series", series) if series else ("Study", study)
        )
        found: dict[str, list[Triple]] = {}
        for hit in self._native("POST", "/tools/lookup", uid.encode()).json():
            if hit["Type"] != level:
                continue
            tags_path = "/simplified-tags" if level == "Instance" else "/instances-tags?simplify"
            tags = self._native("GET", hit["Path"] + tags_path).json()
            triples = [
                (t.get("StudyInstanceUID"), t.get("SeriesInstanceUID"), t.get("SOPInstanceUID"))
                for t in ([tags] if level == "Instance" else tags.values())
            ]
            if triples and all(t[0] == study and series in (None, t[1]) for t in triples):
                found[hit["Path"]] = triples
        return found

    # --- metadata ETags ---------------------------------------------------------------------

    def _metadata_with_etag(
        self, version: str, path: str, query: str, headers: dict[str, str]
    ) -> Reply:
        """Orthanc's metadata answer, with an ETag when it is a 200; 304 when it is unchanged.
        The stand-in answers conditions itself: Orthanc sees none. Orthanc's BulkDataURIs lead
        to Orthanc itself: they are rewritten to lead through the stand-in, as Azure's lead to
        its own service (else they would go around the stand-in and its token)."""
        url = self.orthanc.dicomweb_url + path + (f"?{query}" if query else "")
        # Not its Forwarded either: Orthanc then writes its own root, which is rewritten below.
        forwarded = {
            k: v for k, v in headers.items() if k not in HOP_BY_HOP | CONDITIONAL | {"forwarded"}
        }
        upstream = requests.get(url, headers=forwarded, timeout=60)
        content_type = upstream.headers.get("Content-Type")
        if upstream.status_code != 200:
            return Reply(upstream.status_code, upstream.content, content_type)
        body = upstream.content.replace(
            f'"{self.orthanc.dicomweb_url}/'.encode(),
            f'"{self.public_url(version, headers)}/'.encode(),
        )
        etag = etag_of(body)
        if_none_match = headers.get("if-none-match")
        if if_none_match and matches(if_none_match, etag) and self.fault != "etag-ignored":
            return Reply(304, headers=(("ETag", etag),))
        return Reply(200, body, content_type, (("ETag", etag),))

    # --- STOW ------------------------------------------------------------------------------

    def _store(
        self, version: str, study: str | None, headers: dict[str, str], body: bytes
    ) -> Reply:
        accept = headers.get("accept")  # Azure's STOW answers application/dicom+json only
        if accept is not None and "application/dicom+json" not in [
            item.split(";")[0].strip().lower() for item in accept.split(",")
        ]:
            return text(406, "The request headers are not acceptable: use application/dicom+json.")
        if study is not None and not UID.fullmatch(study):
            return text(400, f"The study instance UID '{study}' is not valid.")
        self._searches.clear()
        content_type = headers.get("content-type", "")
        files = split_stow_body(content_type, body)
        if isinstance(files, Reply):
            return files
        if not files:
            return Reply(204)
        single = not content_type.lower().startswith("multipart/")
        referenced: list[Item] = []
        failed: list[Item] = []
        with self._lock:
            for data in files:
                stored, item = self._store_one(version, study, data, single)
                (referenced if stored else failed).append(item)
        answer: Item = {}
        if study is not None and referenced:
            answer["00081190"] = element("UR", f"{self.base_url(version)}/studies/{study}")
        if failed:
            answer["00081198"] = {"vr": "SQ", "Value": failed}
        if referenced:
            answer["00081199"] = {"vr": "SQ", "Value": referenced}
        status = 409 if not referenced else 202 if failed else 200
        return json_reply(status, answer, "application/dicom+json")

    def _store_one(
        self, version: str, path_study: str | None, data: bytes, single: bool
    ) -> tuple[bool, Item]:
        """Store one file: whether it counts as stored, and its response item."""
        try:
            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
            triple = (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID))
            identity = {"00081150": element("UI", str(ds.SOPClassUID))}
        except Exception:  # not DICOM, or a required attribute missing
            return False, {"00081197": element("US", VALIDATION_FAILED)}
        identity["00081155"] = element("UI", triple[2])

        def failure(reason: int) -> tuple[bool, Item]:
            return False, {**identity, "00081197": element("US", reason)}

        if not all(triple) or not str(ds.SOPClassUID):
            return failure(VALIDATION_FAILED)
        if path_study is not None and triple[0] != path_study:
            return failure(STUDY_MISMATCH)
        url = "{}/studies/{}/series/{}/instances/{}".format(self.base_url(version), *triple)
        stored = True, {**identity, "00081190": element("UR", url)}
        if single and self.fault == "single-part-ignored":
            return stored
        if self._find(*triple):
            return stored if self.fault == "duplicate-accepted" else failure(ALREADY_STORED)
        if self._native("POST", "/instances", data).status_code != 200:
            return failure(PROCESSING_FAILURE)
        metadata = ds.to_json_dict(suppress_invalid_tags=True)
        self._record(
            "create", triple, {k: v for k, v in metadata.items() if v["vr"] not in BULK_VRS}
        )
        return stored

    # --- DELETE ----------------------------------------------------------------------------

    def _delete(self, study: str, series: str | None, sop: str | None) -> Reply:
        for uid in (study, series, sop):
            malformed = uid is not None and not UID.fullmatch(uid)
            if malformed and self.fault != "delete-malformed-uid-404":  # the fault: no check
                return text(400, f"The UID '{uid}' is not valid.")
        with self._lock:
            found = self._find(study, series, sop)
            if not found and self.fault == "delete-unknown-204":
                return Reply(204)
            if not found and self.gone == 410 and self._deleted(study, series, sop):
                return text(410, "The resource has been deleted.")
            if not found:
                level = "instance" if sop else "series" if series else "study"
                return text(404, f"The specified {level} cannot be found.")
            if self.fault != "delete-keeps-data":
                for path in found:
                    self._native("DELETE", path).raise_for_status()
            if self.fault != "changefeed-misses-delete":
                for triple in sorted(set(chain.from_iterable(found.values()))):
                    self._record("delete", triple)
        return Reply(204)

    def _deleted(self, study: str, series: str | None, sop: str | None) -> bool:
        """Whether the stand-in deleted every instance it stored under these UIDs (and stored
        at least one): its own log, not Orthanc, knows what was deleted."""
        with self._lock:
            named = [
                sequence
                for (st, se, so), sequence in self._current.items()
                if st == study and series in (None, se) and sop in (None, so)
            ]
        return bool(named) and all(sequence is None for sequence in named)

    # --- change feed -----------------------------------------------------------------------

    def _record(self, action: str, triple: Triple, metadata: Item | None = None) -> None:
        with self._lock:
            now = datetime.now(UTC)
            if self._log and now <= self._log[-1].timestamp:  # keep timestamps strictly rising
                now = self._log[-1].timestamp + timedelta(microseconds=1)
            sequence = len(self._log) + 1
            self._log.append(Event(sequence, *triple, action, now))
            self._current[triple] = sequence if action == "create" else None
            if metadata is not None:
                self._metadata[triple] = metadata
            else:
                self._metadata.pop(triple, None)

    def _state(self, event: Event) -> str:
        """Azure's rule: every entry of a deleted instance is deleted; once an instance is
        stored anew, its earlier entries are replaced."""
        current = self._current.get(event.triple)
        if current is None:
            return "deleted"
        return "current" if current == event.sequence else "replaced"

    def _entry(self, event: Event, include_metadata: bool) -> Item:
        wrong = self.fault == "changefeed-wrong-uids" and event.action == "create"
        entry: Item = {
            "Sequence": event.sequence,
            "StudyInstanceUid": event.study,
            "SeriesInstanceUid": event.series,
            "SopInstanceUid": event.series if wrong else event.sop,
            "Action": event.action,
            "Timestamp": event.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "State": event.state,
        }
        metadata = self._metadata.get(event.triple)
        include_metadata = include_metadata or self.fault == "changefeed-metadata-always"
        if include_metadata and event.state != "deleted" and metadata is not None:
            entry["Metadata"] = metadata  # as Azure: the current version's metadata
        return entry

    def _changefeed(self, version: str, latest: bool, query: str) -> Reply:
        # A literal "+" (a time zone offset) stays a "+", not a space.
        params = {k.lower(): v for k, v in parse_qsl(query.replace("+", "%2B"))}
        default_limit, max_limit = FEED_LIMITS[version]
        events = self.events
        try:
            include = query_value(params, "includeMetadata", True, to_bool)
            if latest:  # Azure's entry is null for an empty feed, which ASP.NET Core answers 204
                if not events:
                    return Reply(204)
                stale = self.fault == "changefeed-latest-stale"
                return json_reply(200, self._entry(events[0] if stale else events[-1], include))
            limit = query_value(params, "limit", default_limit, to_int)
            offset = query_value(params, "offset", 0, to_int)
            start = query_value(params, "startTime", EARLIEST, to_time)
            end = query_value(params, "endTime", LATEST, to_time)
        except ValueError as error:
            return text(400, str(error))
        if self.fault == "changefeed-range-500" and not (1 <= limit <= max_limit and offset >= 0):
            # The fault: no validation here; the values reach the query, which throws (SQL
            # Server: "The offset specified in a OFFSET clause may not be negative.", Msg 10742;
            # "The number of rows provided for a FETCH clause must be greater then zero.", Msg
            # 10744), and the exception becomes a 500.
            return text(500, "An unexpected error occurred.")
        if not 1 <= limit <= max_limit:
            return text(400, f"The limit must be between 1 and {max_limit}")
        if offset < 0:
            return text(400, "The offset cannot be a negative value")
        skips = self.fault == "changefeed-paging-skips"
        if version == "v1":  # offset is a sequence number: Sequence in (offset, offset + limit]
            span = range(offset + 1, offset + limit + 1)
            page = [e for e in events if e.sequence in span]
            page = [e for e in page if not (skips and e.sequence == offset + 2)]
        else:  # offset counts entries within the time window [startTime, endTime)
            if start >= end:
                return text(400, "The startTime must be before the endTime.")
            before_end = le if self.fault == "changefeed-window-end-inclusive" else lt
            window = [e for e in events if start <= e.timestamp and before_end(e.timestamp, end)]
            skip = 2 * offset if skips else offset
            page = window[skip : skip + limit]
        answer = [self._entry(e, include) for e in page]
        if self.fault == "changefeed-object-not-array":
            return json_reply(200, {"entries": answer})
        return json_reply(200, answer)
