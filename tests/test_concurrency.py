"""Independent requests asked at once (Client.each, conformance/batch.py): answers and evidence in
the order asked, never more than the pool in flight, 1 strictly one after another, deadlines and
the read budget still bound every request, 429/503 retried after Retry-After and the rest of the
batch then asked one at a time; and, through a proxy that answers one request at a time, the
verdicts of the checks that use it the same at --dicomweb-concurrency=1 and the default."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest
import requests
from faultproxy import FaultProxy
from faults import Answer as ProxyAnswer
from faults import Exchange
from faults.wado import STUDY, rewrite
from scriptedserver import Answer, Received, ScriptedServer
from suiterun import RunSuite, SuiteRun
from test_hostile import marked_studies_on
from test_read_only import stored_directly

from conformance.budget import Budget, Meter
from conformance.cleanup import Cleaner
from conformance.client import Client
from conformance.errors import BudgetSpent, DeadlineExceeded, NoAnswer, UnsafeRequestError
from conformance.guard import Registry
from conformance.local.orthanc import LocalOrthanc
from conformance.settings import SettingsError, resolve

Make = Callable[..., Client]


class Watched:
    """Counts the handlers of ``server`` answering at once and the connections it accepted; each
    answer waits ``delay`` seconds (``delays`` by path) and is ``answer(path)``."""

    def __init__(self, server: ScriptedServer) -> None:
        self.active = 0
        self.peak = 0
        self.connections = 0
        self.delay = 0.1
        self.delays: dict[str, float] = {}
        self.answers: dict[str, list[Answer]] = {}
        self.company: list[tuple[str, int]] = []  # each path asked, with how many were in hand
        self._lock = threading.Lock()
        accept = server.get_request

        def counted_accept() -> Any:
            with self._lock:
                self.connections += 1
            return accept()

        server.get_request = counted_accept  # type: ignore[method-assign]
        server.next_answer = self._next  # type: ignore[method-assign]
        self.server = server

    def _next(self, received: Received) -> Answer:
        with self._lock:
            self.server.received.append(received)
            self.active += 1
            self.peak = max(self.peak, self.active)
            path = received.path.rsplit("/", 1)[-1]
            self.company.append((path, self.active))
            script = self.answers.get(path, [])
            answer = script.pop(0) if script else Answer(200, {"Content-Type": "text/plain"})
        if not answer.body and answer.status == 200 and not answer.hang:
            answer = Answer(200, {"Content-Type": "text/plain"}, path.encode())
        time.sleep(self.delays.get(path, self.delay))
        with self._lock:
            self.active -= 1
        return answer


@pytest.fixture
def watched(server: ScriptedServer) -> Watched:
    return Watched(server)


@pytest.fixture
def make(server: ScriptedServer) -> Iterator[Make]:
    made: list[Client] = []
    sleeps: list[float] = []

    def build(concurrency: int = 4, **kwargs: Any) -> Client:
        client = Client(
            server.url, timeout=5.0, concurrency=concurrency, sleep=sleeps.append, **kwargs
        )
        client.sleeps = sleeps  # type: ignore[attr-defined]
        made.append(client)
        return client

    yield build
    for client in made:
        client._pool.close()
        client.session.close()


def _body(client: Client, path: str) -> str:
    return client.get(path).text


def test_answers_and_evidence_come_in_the_order_asked(watched: Watched, make: Make) -> None:
    """The first asked answers last: the values and the exchanges are still in the order asked,
    and they follow the exchanges recorded before the batch (a check's index range)."""
    client = make(4)
    client.get("before")
    paths = [f"p{n}" for n in range(8)]
    watched.delays = {path: 0.02 * (8 - n) for n, path in enumerate(paths)}
    assert client.each(partial(_body, client, path) for path in paths) == paths
    assert [e.url.rsplit("/", 1)[-1] for e in client.exchanges] == ["before", *paths]
    assert all(e.status == 200 for e in client.exchanges)
    assert watched.peak == 4


@pytest.fixture
def kept_alive(server: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """The scripted server answering in HTTP/1.1, keeping its connections: so that the
    connections it accepts are the ones the client opens."""
    monkeypatch.setattr(server.RequestHandlerClass, "protocol_version", "HTTP/1.1")


@pytest.mark.usefixtures("kept_alive")
def test_never_more_than_the_pool_in_flight(watched: Watched, make: Make) -> None:
    client = make(3)
    started = time.monotonic()
    client.each(partial(_body, client, f"p{n}") for n in range(12))
    elapsed = time.monotonic() - started
    assert watched.peak == 3
    assert 0.4 <= elapsed < 1.1, elapsed  # 4 rounds of 0.1 s, not 12 (1.2 s)
    # One connection per thread, kept across batches (the session's pool holds them).
    client.each(partial(_body, client, f"q{n}") for n in range(12))
    assert watched.connections <= 3, watched.connections


@pytest.mark.usefixtures("kept_alive")
def test_more_threads_than_requests_default_pool_keep_their_connections(
    watched: Watched, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    """Past requests' 10 connections per host, the adapters keep one per thread: none opened
    and dropped ("Connection pool is full")."""
    watched.delay = 0.05
    client = make(12)
    with caplog.at_level(logging.WARNING, logger="urllib3"):
        for _ in range(3):
            client.each(partial(_body, client, f"p{n}") for n in range(24))
    assert watched.peak == 12
    assert watched.connections <= 12, watched.connections
    assert "pool is full" not in caplog.text


def test_concurrency_1_asks_one_after_another_and_stops_at_the_first_error(
    watched: Watched, make: Make
) -> None:
    client = make(1)
    watched.delay = 0.01

    def second_breaks(path: str) -> str:
        if path == "p1":
            raise ValueError("p1 broke")
        return _body(client, path)

    with pytest.raises(ValueError, match="p1 broke"):
        client.each(partial(second_breaks, f"p{n}") for n in range(4))
    assert watched.peak == 1
    assert [r.path.rsplit("/", 1)[-1] for r in watched.server.received] == ["p0"]


def test_the_first_error_in_order_is_raised_once_every_call_has_ended(
    watched: Watched, make: Make
) -> None:
    client = make(4)
    watched.delays = {"p1": 0.3}

    def breaks(path: str) -> str:
        text = _body(client, path)
        if path in ("p1", "p3"):
            raise ValueError(f"{path} broke")
        return text

    with pytest.raises(ValueError, match="p1 broke"):
        client.each(partial(breaks, f"p{n}") for n in range(6))
    assert len(watched.server.received) == 6
    assert [e.url.rsplit("/", 1)[-1] for e in client.exchanges] == [f"p{n}" for n in range(6)]


def test_the_checks_deadline_stops_the_batch(
    server: ScriptedServer, watched: Watched, make: Make
) -> None:
    """Answers that never come end at the check's deadline, those in flight and those waiting
    for a thread; each is in the evidence, and nothing is sent after it."""
    client = make(2)
    watched.answers = {f"p{n}": [Answer(hang=True)] for n in range(6)}
    watched.delay = 0.0
    client.check_deadline = (time.monotonic() + 0.5, "the check's deadline of 0.5 s")
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match="check's deadline"):
        client.each(partial(_body, client, f"p{n}") for n in range(6))
    assert time.monotonic() - started < 1.5
    assert len(client.exchanges) == 6
    assert all(e.error and "check's deadline" in e.error for e in client.exchanges)
    assert len(server.received) == 2  # the others were never sent
    server.released.set()


def test_the_run_moved_to_its_end_stops_the_requests_in_flight(
    server: ScriptedServer, watched: Watched, make: Make
) -> None:
    """A SIGTERM sets the run's deadline to now (run/lifecycle.py): the requests a batch has in
    flight end then, not at their own deadline."""
    client = make(3)
    watched.answers = {f"p{n}": [Answer(hang=True)] for n in range(3)}
    watched.delay = 0.0
    timer = threading.Timer(0.3, lambda: setattr(client, "run_deadline", (0.0, "the run stopped")))
    timer.start()
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        client.each(partial(_body, client, f"p{n}") for n in range(3))
    assert time.monotonic() - started < 1.5
    server.released.set()


def test_a_429_with_retry_after_is_retried_and_the_rest_asked_one_at_a_time(
    watched: Watched, make: Make
) -> None:
    client = make(4)
    watched.answers = {"p0": [Answer(429, {"Retry-After": "0"}, b"slow down")]}
    watched.delays = {"p0": 0.0}
    assert client.each(partial(_body, client, f"p{n}") for n in range(8)) == [
        f"p{n}" for n in range(8)
    ]
    assert client.sleeps == [0.0]  # type: ignore[attr-defined]
    # The 429 and its retry are the first two exchanges: in the order asked, retries included.
    assert [(e.url.rsplit("/", 1)[-1], e.status) for e in client.exchanges[:3]] == [
        ("p0", 429),
        ("p0", 200),
        ("p1", 200),
    ]
    assert client._pool.limit == 1


def test_a_read_answered_409_in_a_batch_is_asked_again_alone(watched: Watched, make: Make) -> None:
    """Orthanc 1.12 and 1.13 answer concurrent metadata GETs 409 (their writers of a metadata
    cache collide): the read is asked again with nothing else in flight, once; both exchanges
    are the evidence; the others of the batch keep going at once."""
    client = make(4)
    watched.answers = {"p0": [Answer(409, {"Content-Type": "text/plain"}, b"conflict")]}
    watched.delays = {"p0": 0.01}  # its 409 comes back while the others are in hand
    paths = [f"p{n}" for n in range(8)]
    assert client.each(partial(_body, client, path) for path in paths) == paths
    asked = [(path, alongside) for path, alongside in watched.company if path == "p0"]
    assert len(asked) == 2 and asked[1][1] == 1, watched.company
    assert [e.status for e in client.exchanges if e.url.endswith("/p0")] == [409, 200]
    assert watched.peak > 1
    # The pool is not left one at a time (as after a 429): the next batch goes out at once.
    watched.peak = 0
    assert client.each(partial(_body, client, path) for path in paths[1:]) == paths[1:]
    assert watched.peak > 1


def test_a_409_asked_in_turn_is_the_answer(watched: Watched, make: Make) -> None:
    client = make(1)
    watched.answers = {"p0": [Answer(409, {"Content-Type": "text/plain"}, b"conflict")]}
    assert client.each(partial(_body, client, p) for p in ("p0", "p1")) == ["conflict", "p1"]


def test_the_read_budget_counts_exactly_across_threads(watched: Watched, make: Make) -> None:
    watched.delay = 0.0
    client = make(8)
    client.each(partial(_body, client, f"p{n}") for n in range(200))
    assert client.meter.requests == 200
    assert client.meter.bytes == sum(len(f"p{n}") for n in range(200))


def test_past_the_read_budget_nothing_more_is_sent(
    server: ScriptedServer, watched: Watched, make: Make
) -> None:
    watched.delay = 0.02
    client = make(4, meter=Meter(Budget(5, 10**6), "--dicomweb-read-budget 5,1MB"))
    with pytest.raises(BudgetSpent):
        client.each(partial(_body, client, f"p{n}") for n in range(8))
    assert len(server.received) == 5
    assert client.meter.requests == 5
    assert len(client.exchanges) == 8


def test_a_write_is_never_asked_in_a_batch(watched: Watched, make: Make) -> None:
    client = make(2)
    with pytest.raises(UnsafeRequestError, match="batch"):
        client.each([lambda: client.delete("studies/1"), lambda: client.get("p0")])
    assert [r.method for r in watched.server.received] == ["GET"]


@pytest.mark.parametrize("concurrency", [1, 4])
def test_the_cleanup_deletes_the_studies_at_once_and_reports_them_in_order(
    watched: Watched, make: Make, concurrency: int
) -> None:
    """Each study's delete is a write of its own (Client.each(..., writes=True)): asked
    together on the pool, one at a time at concurrency 1; the report in the registry's order."""
    client = make(concurrency)
    studies = [f"2.25.{n}" for n in range(8)]
    report = Cleaner(client, Registry(), mode="dicomweb").run(studies)
    assert report.removed == studies and not report.leftovers
    assert [r.method for r in watched.server.received] == ["DELETE"] * 8
    assert watched.peak == concurrency
    assert [e.url.rsplit("/", 1)[-1] for e in client.exchanges] == studies


def test_a_batch_inside_a_batch_is_asked_in_turn(watched: Watched, make: Make) -> None:
    """A call that batches too asks on its own thread, never waiting on the pool it holds."""
    client = make(2)
    watched.delay = 0.01

    def inner(n: int) -> list[str]:
        return client.each(partial(_body, client, f"p{n}{m}") for m in range(3))

    assert client.each(partial(inner, n) for n in range(4)) == [
        [f"p{n}{m}" for m in range(3)] for n in range(4)
    ]
    assert watched.peak <= 2


def test_no_answer_is_raised_as_itself() -> None:
    client = Client("http://127.0.0.1:9/dicom-web", timeout=2.0, concurrency=3)
    with pytest.raises(NoAnswer):
        client.each(partial(_body, client, f"p{n}") for n in range(3))
    assert len(client.exchanges) == 3
    client.session.close()


def test_the_concurrency_is_a_setting() -> None:
    settings = resolve("http://x/dicom-web", {}, env={})
    assert settings.concurrency == 4
    given = resolve("http://x/dicom-web", {"concurrency": "1"}, env={})
    assert given.concurrency == 1
    with pytest.raises(SettingsError, match="1 or more"):
        resolve("http://x/dicom-web", {"concurrency": "0"}, env={})


def test_one_session_serves_the_threads(watched: Watched, make: Make) -> None:
    """What batch.py relies on: requests' Session shared by the pool's threads answers each
    request with its own answer (measured here: 400 requests on 8 threads)."""
    watched.delay = 0.0
    client = make(8)
    paths = [f"p{n}" for n in range(400)]
    assert client.each(partial(_body, client, path) for path in paths) == paths
    assert isinstance(client.session, requests.Session)


# --- a server that answers one request at a time --------------------------------------------


class OneAtATime(FaultProxy):
    """A proxy in front of a real server that answers one request at a time and 429 (Retry-After:
    1) to any request arriving while one is in hand: a burst is throttled."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.throttled = 0
        self.seen = 0
        self._busy = threading.Lock()
        self._count = threading.Lock()

    def answer(self, request: Exchange) -> ProxyAnswer:
        with self._count:
            self.seen += 1
        if not self._busy.acquire(blocking=False):
            with self._count:
                self.throttled += 1
            return ProxyAnswer(429, {"Retry-After": "1"}, b"")
        try:
            return self.forward(request)
        finally:
            self._busy.release()


# The checks that batch (test_existing), and those that read the held study's sample, which
# heldstudy.read builds with batched metadata reads.
BATCHING = "test_existing or test_qido_attributes or test_wado"


@pytest.mark.server
def test_read_only_verdicts_do_not_depend_on_the_concurrency(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    """Through a proxy that throttles every burst, a read-only run at the default concurrency
    judges each check as one asking strictly one request at a time does."""
    existing = stored_directly(orthanc)
    runs: dict[str, SuiteRun] = {}
    throttled: dict[str, int] = {}
    for concurrency in ("1", "4"):
        with OneAtATime(orthanc.url) as proxy:
            runs[concurrency] = run_suite(
                f"{proxy.url}/dicom-web",
                "--dicomweb-read-only",
                f"--dicomweb-studies={existing}",
                f"--dicomweb-concurrency={concurrency}",
                "-k",
                BATCHING,
            )
        throttled[concurrency] = proxy.throttled
    # And straight to Orthanc, never throttled: every batch asked at once.
    direct = run_suite(
        orthanc.dicomweb_url,
        "--dicomweb-read-only",
        f"--dicomweb-studies={existing}",
        "-k",
        BATCHING,
    )
    orthanc.purge()
    serial, default = runs["1"], runs["4"]
    assert throttled["1"] == 0  # one at a time: never a burst
    assert throttled["4"] > 0  # the default asked at once, was throttled, and backed off
    judged = {c: v for c, v in serial.verdicts.items() if v not in ("DISABLED",)}
    assert len(judged) > 30, serial.stdout
    assert "ERROR" not in serial.verdicts.values(), serial.stdout
    assert default.verdicts == serial.verdicts, default.stdout
    assert direct.verdicts == serial.verdicts, direct.stdout


# A writing run's batches: test_existing's, the property checks' (examples asked first, the round
# trips stored in one STOW ahead, every level read together) and the cleanup's deletes.
WRITING = "test_existing or test_properties and not stateful"


@pytest.mark.server
def test_writing_run_verdicts_do_not_depend_on_the_concurrency(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    """The same in a writing run of test_existing (its study has two series) and the property
    checks, failures and shrinking included (Orthanc fails several)."""
    verdicts: dict[str, dict[str, str]] = {}
    throttled: dict[str, int] = {}
    for concurrency in ("1", "4"):
        orthanc.purge()
        with OneAtATime(orthanc.url) as proxy:
            run = run_suite(
                f"{proxy.url}/dicom-web",
                f"--dicomweb-concurrency={concurrency}",
                "--dicomweb-profile=orthanc",
                "-k",
                WRITING,
            )
        verdicts[concurrency] = run.verdicts
        throttled[concurrency] = proxy.throttled
        assert "ERROR" not in run.verdicts.values(), run.stdout
        assert marked_studies_on(orthanc) == [], "the cleanup's deletes left studies behind"
    orthanc.purge()
    direct = run_suite(orthanc.dicomweb_url, "--dicomweb-profile=orthanc", "-k", WRITING)
    orthanc.purge()
    assert (throttled["1"], throttled["4"] > 0) == (0, True), throttled
    assert len(verdicts["1"]) > 15 and "FAIL" in verdicts["1"].values(), verdicts
    assert verdicts["1"] == verdicts["4"] == direct.verdicts, direct.stdout


class KeepsOnlyTheFirst(FaultProxy):
    """A study retrieve that sends only its first instance, while each instance's own retrieve
    sends it: test_existing asks the left-out instances' own retrieves, in one batch."""

    def answer(self, request: Exchange) -> ProxyAnswer:
        if request.method == "GET" and STUDY.search(request.path):
            return rewrite(self.forward(request), lambda found: found[:1])
        return self.forward(request)


@pytest.mark.server
def test_what_a_retrieve_leaves_out_is_found_by_batched_retrieves_at_any_concurrency(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    study, series = (
        "test_existing.py::test_a_study_retrieve_sends_the_instances_searches_list",
        "test_existing.py::test_each_series_retrieve_sends_the_instances_searches_list_in_it",
    )
    for concurrency in ("1", "4"):
        orthanc.purge()
        with KeepsOnlyTheFirst(orthanc.url) as proxy:
            run = run_suite(
                f"{proxy.url}/dicom-web",
                f"--dicomweb-concurrency={concurrency}",
                "--dicomweb-profile=orthanc",
                "-k",
                "test_existing",
            )
        assert run.verdicts == {study: "FAIL", series: "PASS"}, run.stdout
        message = next(c["message"] for c in run.results["checks"] if c["check"] == study)
        assert "leaves out instances" in message and message.count("2.25.") >= 3, message
    orthanc.purge()


ROUND_TRIPS = (
    "test_metadata_of_a_generated_instance_is_what_was_stored"
    " or test_a_generated_instance_is_retrieved_as_it_was_stored"
)


@pytest.mark.server
def test_a_store_ahead_that_loses_instances_leaves_the_round_trips_judged_as_in_turn(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    """The round trips store their examples ahead in one STOW. A server that keeps only the first
    part of a store and answers 200 for it (the registry's stow-keeps-first-part-only, a
    streaming parser that stops early) lists one instance as stored: only that one is read back
    as stored ahead, every other example is stored on its own, and the round trips are judged as
    they are directly (the store's own checks catch the fault)."""
    orthanc.purge()
    with FaultProxy(orthanc.url, "stow-keeps-first-part-only") as proxy:
        through = run_suite(
            f"{proxy.url}/dicom-web", "--dicomweb-profile=orthanc", "-k", ROUND_TRIPS
        )
    orthanc.purge()
    direct = run_suite(orthanc.dicomweb_url, "--dicomweb-profile=orthanc", "-k", ROUND_TRIPS)
    orthanc.purge()
    assert len(direct.verdicts) == 2 and set(direct.verdicts.values()) == {"PASS"}, direct.stdout
    assert through.verdicts == direct.verdicts, through.stdout
