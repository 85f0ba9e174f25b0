"""A fault-injecting HTTP proxy between the suite and a real server.

Each fault models a real server bug. The proxy forwards everything else unchanged, so a run
through it differs from a direct run only by the one broken rule: the checks that fail are the
ones that catch that fault.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

import pydicom
import requests

from conformance import multipart

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
}
QIDO_PATH = re.compile(r"/(studies|series|instances)$")
STOW_PATH = re.compile(r"/studies(/[^/]+)?$")
RETRIEVE_PATH = re.compile(r"/studies/[^/]+(/series/[^/]+)?$")


@dataclass
class Exchange:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


Forward = Callable[[Exchange], Answer]
Fault = Callable[[Exchange, Forward], Answer]


def stow_stores_nothing(request: Exchange, forward: Forward) -> Answer:
    """A store answered 200, claiming every instance, with nothing stored."""
    if request.method != "POST" or not STOW_PATH.search(request.path):
        return forward(request)
    parts = multipart.decode(request.body, request.headers.get("content-type", ""))
    referenced = []
    for part in parts:
        ds = pydicom.dcmread(io.BytesIO(part.body), stop_before_pixels=True)
        referenced.append(
            {
                "00081150": {"vr": "UI", "Value": [str(ds.SOPClassUID)]},
                "00081155": {"vr": "UI", "Value": [str(ds.SOPInstanceUID)]},
            }
        )
    body = json.dumps({"00081199": {"vr": "SQ", "Value": referenced}}).encode()
    return Answer(200, {"Content-Type": "application/dicom+json"}, body)


def retrieve_drops_instance(request: Exchange, forward: Forward) -> Answer:
    """A study or series retrieve that leaves out its last instance."""
    answer = forward(request)
    if request.method != "GET" or not RETRIEVE_PATH.search(request.path) or answer.status != 200:
        return answer
    content_type = answer.headers.get("Content-Type", "")
    parts = multipart.decode(answer.body, content_type)
    boundary = multipart.parse_media_type(content_type)[1]["boundary"]
    body, _ = multipart.encode_related([p.body for p in parts[:-1]], boundary=boundary)
    return Answer(200, answer.headers, body)


def search_ignores_uid_filter(request: Exchange, forward: Forward) -> Answer:
    """A search that drops its UID matching keys and answers as if none were given."""
    if request.method == "GET" and QIDO_PATH.search(request.path):
        kept = [(k, v) for k, v in parse_qsl(request.query) if not k.endswith("UID")]
        request = Exchange(
            request.method, request.path, urlencode(kept), request.headers, request.body
        )
    return forward(request)


def _rewrite_parts(answer: Answer, change: Callable[[bytes], bytes]) -> Answer:
    """The same multipart answer, each part's body passed through ``change``."""
    content_type = answer.headers.get("Content-Type", "")
    media_type, params = multipart.parse_media_type(content_type)
    if answer.status != 200 or media_type != "multipart/related":
        return answer
    parts = multipart.decode(answer.body, content_type)
    root_type = params.get("type")
    part_type = parts[0].content_type or root_type or "application/octet-stream"
    body, _ = multipart.encode_related(
        [change(p.body) for p in parts],
        part_type=part_type,
        boundary=params["boundary"],
        root_type=root_type,
    )
    return Answer(200, answer.headers, body)


def retrieve_corrupts_pixels(request: Exchange, forward: Forward) -> Answer:
    """Retrieved instances whose last pixel bytes are flipped (a storage or transcoding bug)."""
    answer = forward(request)
    if request.method != "GET" or "/frames/" in request.path or request.path.endswith("metadata"):
        return answer
    return _rewrite_parts(answer, lambda body: body[:-8] + bytes(b ^ 0xFF for b in body[-8:]))


def frame_truncated(request: Exchange, forward: Forward) -> Answer:
    """Frames cut short by 1000 bytes."""
    answer = forward(request)
    if request.method != "GET" or "/frames/" not in request.path:
        return answer
    return _rewrite_parts(answer, lambda body: body[:-1000])


def metadata_drops_instance(request: Exchange, forward: Forward) -> Answer:
    """Metadata that leaves out its last instance."""
    answer = forward(request)
    if request.method != "GET" or not request.path.endswith("/metadata") or answer.status != 200:
        return answer
    objects = json.loads(answer.body)
    return Answer(200, answer.headers, json.dumps(objects[:-1]).encode())


FAULTS: dict[str, Fault] = {
    "frame-truncated": frame_truncated,
    "metadata-drops-instance": metadata_drops_instance,
    "retrieve-corrupts-pixels": retrieve_corrupts_pixels,
    "stow-stores-nothing": stow_stores_nothing,
    "retrieve-drops-instance": retrieve_drops_instance,
    "search-ignores-uid-filter": search_ignores_uid_filter,
}


class FaultProxy:
    """A loopback proxy to ``upstream`` (a server root) applying at most one fault."""

    def __init__(self, upstream: str, fault: str | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.fault = FAULTS[fault] if fault else None
        self._session = requests.Session()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                request = Exchange(
                    self.command,
                    parts.path,
                    parts.query,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                )
                fault = proxy.fault
                answer = fault(request, proxy.forward) if fault else proxy.forward(request)
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_DELETE = do_PUT = _handle

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output readable

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def forward(self, request: Exchange) -> Answer:
        url = self.upstream + request.path + (f"?{request.query}" if request.query else "")
        headers = {k: v for k, v in request.headers.items() if k not in HOP_BY_HOP | {"host"}}
        response = self._session.request(
            request.method, url, headers=headers, data=request.body or None, timeout=60
        )
        return Answer(response.status_code, dict(response.headers), response.content)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._session.close()
