"""Independent requests asked at once (``Client.each``): a bounded pool of threads per process,
answers and evidence in the order asked, the first error in order raised.

A check that asks a chain of requests whose answers do not depend on each other (a study's
metadata, one search per series) waits the server's latency once per request when it asks them
one after another: at 50 ms from a cloud service that is most of a run. Here they go out
together on at most ``concurrency`` threads, and come back as if asked in turn:

- evidence: each call records its exchanges into a list of its own (``Sink``), and the client
  appends the lists in the order asked once all are done, so a check's exchanges stay in its
  index range (run/state.py own_exchanges) in an order that does not depend on the threads;
- deadlines: every request runs whole on one thread (conformance/deadline.py keeps the current
  deadline per thread), and the waiting thread ends those in flight once the check's or the
  run's deadline has passed (a SIGTERM moves the run's deadline to now);

One ``requests.Session`` serves every thread: its adapters' connection pools are thread-safe
queues (urllib3), its cookie jar locks itself, and the pool keeps as many connections to a host as
there are threads (``pool_size``); tests/test_concurrency.py measures the connections opened.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from .deadline import Deadline

T = TypeVar("T")

# requests' HTTPAdapter keeps at most 10 connections per host: a pool asking more at once would
# open and drop extra connections ("Connection pool is full, discarding connection").
ADAPTER_POOL = 10
# How often the thread waiting on a batch looks at the check's and the run's deadlines.
POLL_SECONDS = 0.05

_here = threading.local()  # on a pool thread: the Sink its current call records into


@dataclass
class Sink:
    """Where one call of a batch records its exchanges: into ``exchanges`` when they would go to
    ``owner`` (the client's list), in the order sent; other lists are appended to directly."""

    owner: list[Any]  # evidence.Exchange (the client, which imports this module, records them)
    writes: bool = False  # the call may write (Client.each(..., writes=True))
    exchanges: list[Any] = field(default_factory=list)
    flying: set[Deadline] = field(default_factory=set)


def current_sink() -> Sink | None:
    """The Sink of the call this thread runs (None: not on a pool thread, or between calls)."""
    sink = getattr(_here, "sink", None)
    return sink if isinstance(sink, Sink) else None


@dataclass
class Outcome(Generic[T]):
    """What one call gave: its value or its error, and its exchanges."""

    sink: Sink
    value: T | None = None
    error: BaseException | None = None


def _run(call: Callable[[], T], sink: Sink) -> Outcome[T]:
    _here.sink = sink
    try:
        return Outcome(sink, value=call())
    except BaseException as exc:  # handed to the caller, raised there in the order asked
        return Outcome(sink, error=exc)
    finally:
        _here.sink = None


class Pool:
    """At most ``size`` threads, made when first needed and shared by a client and the clients
    it makes for other credentials (``Client.as_other``): one pool per process."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        # Requests on the wire at once, and how many may be: the pool's size until the server
        # throttles (429/503), then one.
        self.limit = self.size
        self._active = 0
        self._alone = False  # a request asked alone is on the wire: no other is admitted
        self._gate = threading.Condition()

    def throttled(self) -> None:
        """The server answered 429 or 503: it limits what it answers at once (connections, a
        rate). Every later request of a batch waits for the one before, as in a serial run, so
        that the retries (after Retry-After) are not throttled again by their own burst."""
        with self._gate:
            self.limit = 1

    @contextmanager
    def admitted(self, passed: Callable[[], bool]) -> Iterator[None]:
        """One request of a batch on the wire: waits while ``limit`` are, or until ``passed()``
        (the check's or the run's deadline: the request is then refused, unsent, by the client)."""
        with self._gate:
            while (self._active >= self.limit or self._alone) and not passed():
                self._gate.wait(POLL_SECONDS)
            self._active += 1
        try:
            yield
        finally:
            with self._gate:
                self._active -= 1
                self._gate.notify_all()

    @contextmanager
    def alone(self, passed: Callable[[], bool]) -> Iterator[None]:
        """One request of a batch on the wire with no other: waits for those in flight to end
        (or until ``passed()``), and admits none while it is."""
        with self._gate:
            while (self._active > 0 or self._alone) and not passed():
                self._gate.wait(POLL_SECONDS)
            self._alone = True
        try:
            yield
        finally:
            with self._gate:
                self._alone = False
                self._gate.notify_all()

    def submit(
        self, call: Callable[[], T], owner: list[Any], writes: bool = False
    ) -> tuple[Future[Outcome[T]], Sink]:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.size, thread_name_prefix="dicomweb")
            executor = self._executor
        sink = Sink(owner, writes)
        return executor.submit(_run, call, sink), sink

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


def in_flight(sinks: list[Sink]) -> Iterator[Deadline]:
    """The deadlines of the requests these calls have in flight now."""
    for sink in sinks:
        yield from list(sink.flying)


def wait_all(
    futures: list[Future[Outcome[T]]],
    sinks: list[Sink],
    passed: Callable[[], bool],
) -> list[Outcome[T]]:
    """Every call's outcome, in the order asked. Once ``passed()`` (the check's or the run's
    deadline), the requests in flight end now (each raises DeadlineExceeded on its thread); an
    interrupt (KeyboardInterrupt) ends them too and cancels the calls not started."""
    try:
        for future in futures:
            while True:
                try:
                    future.result(timeout=POLL_SECONDS)
                    break
                except TimeoutError:
                    if passed():
                        _expire(in_flight(sinks))
    except BaseException:
        for future in futures:
            future.cancel()
        _expire(in_flight(sinks))
        raise
    return [future.result() for future in futures]


def _expire(deadlines: Iterator[Deadline]) -> None:
    for deadline in deadlines:
        deadline._expire()
