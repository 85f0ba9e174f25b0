"""A misbehaving server: a loopback proxy in front of a real one that answers some requests with
the network's and the servers' worst habits, to prove the suite bounds, survives and reports them.

Unlike the faults (``tests/faults``), which break a DICOMweb rule in a well-formed answer, these
break the transport and the suite's own readers: answers that hang, drip, stop half-way, reset,
promise more than they send, throttle, are huge or nested past any reader's depth. Every hang
ends when the proxy is closed, so no test can outlive it.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

# The DICOMweb retrieve and search resources, below the DICOMweb root.
RETRIEVE = re.compile(r"^studies/[^/]+(/series/[^/]+)?(/instances/[^/]+)?$")
SERIES_SEARCH = re.compile(r"^studies/[^/]+/series$")


@dataclass
class Seen:
    method: str
    path: str  # with the query
    resource: str | None  # the path below the DICOMweb root, without the query (None: outside)


@dataclass(frozen=True)
class Mode:
    """Which requests misbehave, and how the answer is sent (or not)."""

    applies: Callable[[Seen, int], bool]  # the request, and how many came before it
    send: Callable[[HostileHandler, int, dict[str, str], bytes], None]
    forwards: bool = True  # False: the server never sees the request (a gateway answers)


def _is_retrieve(seen: Seen, count: int) -> bool:
    return seen.method == "GET" and bool(RETRIEVE.match(seen.resource or ""))


def _is_series_search(seen: Seen, count: int) -> bool:
    return seen.method == "GET" and bool(SERIES_SEARCH.match(seen.resource or ""))


def _after_preflight(seen: Seen, count: int) -> bool:
    """Everything after the pre-flight's two searches (for a UID, for the run's marker)."""
    return count >= 2


def _is_lookup(seen: Seen, count: int) -> bool:
    return seen.method == "POST" and seen.path.startswith("/tools/lookup")


MODES: dict[str, Mode] = {}


Send = Callable[["HostileHandler", int, dict[str, str], bytes], None]


def mode(
    name: str, applies: Callable[[Seen, int], bool], forwards: bool = True
) -> Callable[[Send], Send]:
    def register(send: Send) -> Send:
        MODES[name] = Mode(applies, send, forwards)
        return send

    return register


@mode("hang-after-headers", _is_retrieve)
def hang_after_headers(
    h: HostileHandler, status: int, headers: dict[str, str], body: bytes
) -> None:
    h.head(status, headers, len(body))
    h.hang()


@mode("half-body-then-hang", _is_retrieve)
def half_body_then_hang(
    h: HostileHandler, status: int, headers: dict[str, str], body: bytes
) -> None:
    h.head(status, headers, len(body))
    h.raw(body[: len(body) // 2])
    h.hang()


@mode("reset", _is_retrieve)
def reset(h: HostileHandler, status: int, headers: dict[str, str], body: bytes) -> None:
    h.head(status, headers, len(body))
    h.raw(body[: len(body) // 3])
    h.reset()


@mode("drip", _is_retrieve)
def drip(h: HostileHandler, status: int, headers: dict[str, str], body: bytes) -> None:
    h.head(status, headers, len(body))
    for byte in body:
        if h.proxy.closing.wait(0.5):
            return
        h.raw(bytes([byte]))


@mode("content-length-too-large", _is_retrieve)
def content_length_too_large(
    h: HostileHandler, status: int, headers: dict[str, str], body: bytes
) -> None:
    h.head(status, headers, len(body) + 4096)
    h.raw(body)
    h.close_connection = True


@mode("broken-multipart", _is_retrieve)
def broken_multipart(h: HostileHandler, status: int, headers: dict[str, str], body: bytes) -> None:
    # The boundary announced is not the one in the body.
    content_type = headers.get("Content-Type", "")
    headers = {
        **headers,
        "Content-Type": re.sub(r"boundary=[^;]+", "boundary=elsewhere", content_type),
    }
    h.whole(status, headers, body)


@mode("throttled-429", _after_preflight, forwards=False)
def throttled_429(h: HostileHandler, status: int, headers: dict[str, str], body: bytes) -> None:
    h.whole(429, {"Retry-After": "1", "Content-Type": "text/plain"}, b"slow down")


@mode("unavailable-503", _after_preflight, forwards=False)
def unavailable_503(h: HostileHandler, status: int, headers: dict[str, str], body: bytes) -> None:
    h.whole(503, {"Retry-After": "1", "Content-Type": "text/plain"}, b"back soon")


def _always(seen: Seen, count: int) -> bool:
    return True


@mode("throttled-from-the-start", _always, forwards=False)
def throttled_from_the_start(
    h: HostileHandler, status: int, headers: dict[str, str], body: bytes
) -> None:
    h.whole(429, {"Retry-After": "1", "Content-Type": "text/plain"}, b"slow down")


@mode("every-answer-half-then-hang", _always)
def every_answer_half_then_hang(
    h: HostileHandler, status: int, headers: dict[str, str], body: bytes
) -> None:
    half_body_then_hang(h, status, headers, body)


HUGE = 50 * 1024 * 1024


@mode("huge-json", _is_series_search)
def huge_json(h: HostileHandler, status: int, headers: dict[str, str], body: bytes) -> None:
    item = json.dumps({"0020000E": {"vr": "UI", "Value": ["1.2.3"]}}).encode()
    count = HUGE // (len(item) + 1)
    h.head(200, {"Content-Type": "application/dicom+json"}, count * (len(item) + 1) + 1)
    h.raw(b"[")
    chunk = b",".join([item] * 1000) + b","
    for sent in range(0, count, 1000):
        n = min(1000, count - sent)
        piece = chunk if n == 1000 else b",".join([item] * n) + b","
        if sent + n == count:
            piece = piece[:-1] + b"]"
        if not h.raw(piece):
            return


@mode("deep-json", _is_series_search)
def deep_json(h: HostileHandler, status: int, headers: dict[str, str], body: bytes) -> None:
    h.whole(200, {"Content-Type": "application/dicom+json"}, b"[" * 100_000 + b"]" * 100_000)


def _every_third_after_preflight(seen: Seen, count: int) -> bool:
    return count >= 2 and count % 3 == 0


@mode("drop-every-third", _every_third_after_preflight, forwards=False)
def drop_every_third(h: HostileHandler, status: int, headers: dict[str, str], body: bytes) -> None:
    """A gateway restarting: the connection is reset before any answer."""
    h.reset()


def _is_delete(seen: Seen, count: int) -> bool:
    return seen.method == "DELETE"


@mode("slow-deletes", _is_delete)
def slow_deletes(h: HostileHandler, status: int, headers: dict[str, str], body: bytes) -> None:
    """Each delete answered a second late: a cleanup long enough to be interrupted."""
    if not h.proxy.closing.wait(1.0):
        h.whole(status, headers, body)


@mode("odd-cleanup-answer", _is_lookup)
def odd_cleanup_answer(
    h: HostileHandler, status: int, headers: dict[str, str], body: bytes
) -> None:
    h.whole(200, {"Content-Type": "application/json"}, b'{"ID": "not", "Type": "a list"}')


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer"}


class HostileHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: HostileProxy

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request_body = self.rfile.read(length) if length else b""
        path = self.path.split("?")[0]
        root = self.proxy.root + "/"
        seen = Seen(self.command, self.path, path[len(root) :] if path.startswith(root) else None)
        count = self.proxy.record(seen)
        behaviour = self.proxy.mode
        if behaviour is not None and behaviour.applies(seen, count):
            self.proxy.hits += 1
            if not behaviour.forwards:
                behaviour.send(self, 0, {}, b"")
                return
            upstream = self.proxy.forward(self.command, self.path, dict(self.headers), request_body)
            headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
            behaviour.send(self, upstream.status_code, headers, upstream.content)
            return
        upstream = self.proxy.forward(self.command, self.path, dict(self.headers), request_body)
        headers = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
        self.whole(upstream.status_code, headers, upstream.content)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = do_OPTIONS = _handle

    def head(self, status: int, headers: dict[str, str], length: int) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.flush()

    def whole(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.head(status, headers, len(body))
        if self.command != "HEAD":
            self.raw(body)

    def raw(self, data: bytes) -> bool:
        try:
            self.wfile.write(data)
            self.wfile.flush()
            return True
        except OSError:
            self.close_connection = True
            return False

    def hang(self) -> None:
        self.proxy.closing.wait()
        self.close_connection = True

    def reset(self) -> None:
        """Close with a TCP RST, as a gateway restarting does."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


class HostileProxy:
    """``with HostileProxy(upstream_root, "drip") as proxy: run against proxy.url``."""

    def __init__(self, upstream: str, mode: str | None = None, root: str = "/dicom-web") -> None:
        self.upstream = upstream.rstrip("/")
        self.root = root  # the DICOMweb root's path: where the modes look for resources
        self.mode = MODES[mode] if mode else None
        self.closing = threading.Event()
        self.seen: list[Seen] = []
        self.hits = 0
        self._lock = threading.Lock()
        self._session = requests.Session()
        handler = type("Handler", (HostileHandler,), {"proxy": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def record(self, seen: Seen) -> int:
        with self._lock:
            self.seen.append(seen)
            return len(self.seen) - 1

    def forward(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> requests.Response:
        sent = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
        return self._session.request(
            method, self.upstream + path, headers=sent, data=body or None, timeout=60
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def methods(self) -> set[str]:
        return {s.method for s in self.seen}

    def __enter__(self) -> HostileProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._session.close()
