"""A fault-injecting HTTP proxy between the suite and a real server.

Each fault (``tests/faults``) models a real server bug. The proxy forwards everything else
unchanged, so a run through it differs from a direct run only by the one broken rule: the checks
that fail are the ones that catch that fault. A repair (``tests/repairs.py``) is applied the same
way, and mends one rule instead.
"""

from __future__ import annotations

import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import urlsplit

import repairs  # noqa: F401  (registers the repairs next to the faults)
import requests
from faults import FAULTS, HOP_BY_HOP, Answer, Exchange


class FaultProxy:
    """A loopback proxy to ``upstream`` (a server root) applying at most one fault or repair."""

    def __init__(self, upstream: str, fault: str | None = None, *, forwarded: bool = False) -> None:
        """``forwarded``: say where the proxy is (RFC 7239 Forwarded), as a gateway in front of a
        server does, so that the URLs the server writes (BulkDataURI, RetrieveURL) lead back
        through the proxy rather than around it."""
        self.upstream = upstream.rstrip("/")
        self.forwarded = forwarded
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
                answer = proxy.answer(request)
                self.send_response(answer.status)
                for key, value in answer.headers.items():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = do_OPTIONS = _handle

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output readable

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def answer(self, request: Exchange) -> Answer:
        if self.fault is None:
            return self.forward(request)
        try:
            return self.fault(request, self.forward)
        except Exception:  # a bug of ours, not of the server: say so to the suite, loudly
            text = f"fault proxy error:\n{traceback.format_exc()}"
            return Answer(502, {"Content-Type": "text/plain"}, text.encode())

    def forward(self, request: Exchange) -> Answer:
        url = self.upstream + request.path + (f"?{request.query}" if request.query else "")
        headers = {k: v for k, v in request.headers.items() if k not in HOP_BY_HOP | {"host"}}
        if self.forwarded:
            headers["forwarded"] = f"host={self.url.removeprefix('http://')};proto=http"
        response = self._session.request(
            request.method, url, headers=headers, data=request.body or None, timeout=60
        )
        return Answer(response.status_code, dict(response.headers), response.content)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._session.close()
