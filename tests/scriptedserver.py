"""A real HTTP server on loopback that answers from a script (``server``), and clients bound to
it (``clients``): for the client's own tests (test_client.py, test_budget.py). The fixtures are
registered in conftest.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast

import pytest
from requests.auth import AuthBase

from conformance.client import Client
from conformance.evidence import Redactor


@dataclass
class Answer:
    """What the server sends for one request."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    hang: bool = False  # never answer (until the fixture's teardown)
    drip: float = 0.0  # seconds between the body's bytes
    cut_after: int | None = None  # close the connection after this many bytes of the body


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class ScriptedServer(ThreadingHTTPServer):
    """Answers requests in turn from a script; the last answer repeats once the script ends."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers: list[Answer] = [Answer()]
        self.received: list[Received] = []
        self.released = threading.Event()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}/dicom-web"

    def script(self, *answers: Answer) -> None:
        self.answers = list(answers)

    def next_answer(self, received: Received) -> Answer:
        with self._lock:
            self.received.append(received)
            return self.answers[min(len(self.received), len(self.answers)) - 1]


class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        server = cast(ScriptedServer, self.server)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        answer = server.next_answer(Received(self.command, self.path, dict(self.headers), body))
        if answer.hang:
            server.released.wait(10)
            return
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        if answer.cut_after is not None:
            self.wfile.write(answer.body[: answer.cut_after])
            self.wfile.flush()
            self.close_connection = True
            return
        if not answer.drip:
            self.wfile.write(answer.body)
            return
        for byte in answer.body:
            if server.released.wait(answer.drip):
                return
            try:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
            except OSError:
                return

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the test output clean


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    httpd = ScriptedServer()
    # A short poll interval: shutdown() waits for the serving loop to look at its flag.
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield httpd
    httpd.released.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


@dataclass
class Clients:
    """Makes clients for the scripted server and closes their sessions afterwards."""

    server: ScriptedServer
    sleeps: list[float] = field(default_factory=list)
    made: list[Client] = field(default_factory=list)

    def __call__(
        self,
        *,
        auth: AuthBase | None = None,
        redactor: Redactor | None = None,
        timeout: float = 5.0,
        retries: int = 2,
        max_retry_wait: float = 30.0,
    ) -> Client:
        client = Client(
            self.server.url,
            auth=auth,
            redactor=redactor,
            timeout=timeout,
            retries=retries,
            max_retry_wait=max_retry_wait,
            sleep=self.sleeps.append,
        )
        self.made.append(client)
        return client


@pytest.fixture
def clients(server: ScriptedServer) -> Iterator[Clients]:
    made = Clients(server)
    yield made
    for client in made.made:
        client.session.close()
