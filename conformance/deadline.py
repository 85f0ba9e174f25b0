"""Deadlines on whole answers, not on single socket reads.

requests' ``timeout`` bounds each read from the socket: a server that drips one byte every half
second never trips it, and a 3 MB answer then takes weeks. Here every request runs under a
``Deadline``: a timer that, when it fires, shuts the request's socket down, so whatever read is
blocked returns at once and the client raises ``DeadlineExceeded``. The socket is known because the
session's connections tell the deadline of the current thread which one they are (``install``).
One thread per process watches every deadline (``_Watcher``): a timer thread of its own for each
request cost a thread's start on every request, and on a loaded machine (eight xdist workers on
two cores) the wait for that thread to be scheduled before the request could go out.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection

from .errors import DeadlineExceeded

_current = threading.local()


class Deadline:
    """One request's time limit; ``start()`` arms it, ``cancel()`` disarms it."""

    def __init__(self, seconds: float, what: str) -> None:
        self.seconds = seconds
        self.what = what  # e.g. "the request deadline of 60 s (--dicomweb-timeout)"
        self.expired = False
        self._connection: Any = None
        self._sock: socket.socket | None = None
        # The request went out on a connection already open (kept alive from an earlier one).
        self.reused = False
        self.cancelled = False

    def start(self) -> Deadline:
        _current.deadline = self
        _watcher.add(time.monotonic() + max(self.seconds, 0.0), self)
        return self

    def cancel(self) -> None:
        self.cancelled = True  # the watcher drops it when it comes up
        if getattr(_current, "deadline", None) is self:
            _current.deadline = None

    def error(self) -> DeadlineExceeded:
        return DeadlineExceeded(f"no complete answer within {self.what}")

    def attach(self, connection: Any) -> None:
        self._connection = connection
        self.reused = getattr(connection, "sock", None) is not None
        connection._dicomweb_deadline = self

    def sent(self, connection: Any) -> None:
        """The request is sent: keep its socket, which the connection lets go of when the
        answer is to end with the connection (the answer still reads from it)."""
        self._sock = connection.sock

    def _expire(self) -> None:
        self.expired = True
        connection = self._connection
        # Only while the connection still serves this request: it may be back in the pool,
        # serving another.
        if connection is None or getattr(connection, "_dicomweb_deadline", None) is not self:
            return
        sock = self._sock or getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def watch(self, response: requests.Response) -> None:
        """Keep the deadline over the body of ``response``, read later (a streamed answer)."""
        raw = response.raw
        stream = raw.stream
        deadline = self

        def watched(*args: Any, **kwargs: Any) -> Iterator[bytes]:
            try:
                for chunk in stream(*args, **kwargs):
                    if deadline.expired:
                        raise deadline.error()
                    yield chunk
            except DeadlineExceeded:
                raise
            except Exception:
                if deadline.expired:
                    raise deadline.error() from None
                raise
            finally:
                deadline.cancel()
            if deadline.expired:  # the socket was shut: the end seen was ours, not the server's
                raise deadline.error()

        raw.stream = watched  # type: ignore[method-assign]


class _Watcher:
    """The deadlines of the process's requests, the earliest first, and the thread (made when
    first needed) that ends each request whose deadline passes before it is cancelled."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Deadline]] = []  # a heap: (when, order, deadline)
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, when: float, deadline: Deadline) -> None:
        with self._wake:
            heapq.heappush(self._due, (when, next(self._order), deadline))
            if self._thread is None or not self._thread.is_alive():  # not yet, or not here
                # (a forked process has the watcher's object but not its thread)
                self._thread = threading.Thread(
                    target=self._run, name="dicomweb-deadlines", daemon=True
                )
                self._thread.start()
            elif self._due[0][2] is deadline:  # earlier than what the thread waits for
                self._wake.notify()

    def _run(self) -> None:
        while True:
            passed: list[Deadline] = []
            with self._wake:
                now = time.monotonic()
                while self._due and (self._due[0][2].cancelled or self._due[0][0] <= now):
                    deadline = heapq.heappop(self._due)[2]
                    if not deadline.cancelled:
                        passed.append(deadline)
                if not passed:
                    # A thread waits at most TIMEOUT_MAX (about 292 years): a deadline further
                    # away (any finite timeout is a valid setting) is waited for in steps.
                    until = self._due[0][0] - now if self._due else threading.TIMEOUT_MAX
                    self._wake.wait(min(until, threading.TIMEOUT_MAX))
            for deadline in passed:
                deadline._expire()


_watcher = _Watcher()


def expire_current() -> None:
    """End the request in flight on this thread now (from a signal handler: stop at once)."""
    current = getattr(_current, "deadline", None)
    if current is not None:
        current._expire()


class _Watched:
    """Mixed into urllib3's connections: on each request, join the current thread's deadline."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.attach(self)
        result = super().request(*args, **kwargs)  # type: ignore[misc]
        if deadline is not None:
            deadline.sent(self)
        return result


class _HTTPConnection(_Watched, HTTPConnection):
    pass


class _HTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


def install(session: requests.Session) -> None:
    """Make the session's connections answer to the current thread's deadline."""
    session.mount("http://", _Adapter())
    session.mount("https://", _Adapter())
