"""The HTTP client: one requests.Session, a timeout on every call, bounded retries, evidence.

Every exchange (method, URL, status, headers, body excerpt) is recorded, secrets redacted, so a
failing check can show exactly what it sent and what came back. The client knows nothing of pytest.
"""

from __future__ import annotations

import email.utils
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import quote

import requests
import urllib3.exceptions as urllib3_exceptions
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase

from . import batch, deadline, multipart, readmap
from .budget import Meter
from .errors import (
    BudgetSpent,
    ClosedWhileIdle,
    DeadlineExceeded,
    NoAnswer,
    Throttled,
    UnsafeRequestError,
)
from .evidence import Exchange, Redactor, describe_body
from .guard import SAFE_METHODS, Guard
from .settings import REDACTED

RETRY_STATUSES = (429, 503)
# What OpenSSL says when the other side answers a TLS hello in plain text (an http:// port).
_NOT_TLS = {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG"}
T = TypeVar("T")


def prepared(
    session: requests.Session,
    method: str,
    url: str,
    headers: Mapping[str, str | None],
    body: bytes | None,
) -> requests.PreparedRequest:
    """What ``session.request`` would send, made without its merging: for each request it
    merges the session's settings with the request's through isinstance checks against a
    typing Protocol (slow before Python 3.12) and copies the cookie jar twice, about a tenth of
    a local run's CPU. The client's sessions never read the environment (``trust_env`` off):
    the session's headers with the request's over them (None: left out, as requests does),
    its auth, its cookies (a copy: a redirect writes into the request's jar), its hooks."""
    merged: requests.structures.CaseInsensitiveDict[str | bytes | None]
    merged = requests.structures.CaseInsensitiveDict(session.headers)
    for name, value in headers.items():
        merged[name] = value
    request = requests.PreparedRequest()
    request.prepare(
        method=method.upper(),
        url=url,
        headers={k: v for k, v in merged.items() if v is not None},
        data=body,
        auth=session.auth,
        cookies=session.cookies.copy() if session.cookies else requests.cookies.RequestsCookieJar(),
        hooks=session.hooks,
    )
    return request


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception behind it (requests wraps urllib3, which wraps the socket's)."""
    found: list[BaseException] = []
    stack: list[object] = [exc]
    while stack:
        item = stack.pop()
        if not isinstance(item, BaseException) or any(item is f for f in found):
            continue
        found.append(item)
        stack += [getattr(item, "reason", None), item.__cause__, item.__context__, *item.args]
    return found


def _closed_before_answer(exc: BaseException) -> bool:
    """The connection was closed or reset before any byte of an answer came back."""
    return any(
        isinstance(c, ConnectionResetError | BrokenPipeError | ConnectionAbortedError)
        for c in _causes(exc)
    )  # http.client's RemoteDisconnected (no status line) is a ConnectionResetError


def no_answer_kind(exc: BaseException) -> str:
    """Where a request without an answer broke, for ``NoAnswer.kind``: "plain" (https:// to a
    port that does not speak TLS), "certificate" (not verified), "tls" (the handshake failed
    otherwise), "dns" (the host
    name does not resolve), "refused" (nothing listens on the port), "connect" (no connection
    otherwise: unreachable, timed out) or "broken" (the answer broke off)."""
    causes = _causes(exc)
    if any(isinstance(c, ssl.SSLError) and c.reason in _NOT_TLS for c in causes):
        return "plain"
    if any(isinstance(c, ssl.SSLCertVerificationError) for c in causes):
        return "certificate"
    if isinstance(exc, requests.exceptions.SSLError):
        return "tls"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError) or not isinstance(
        exc, requests.exceptions.ConnectionError | requests.Timeout
    ):
        return "broken"
    name_errors: tuple[type[BaseException], ...] = (
        socket.gaierror,
        *_optional(urllib3_exceptions, "NameResolutionError"),
    )
    if any(isinstance(c, name_errors) for c in causes):
        return "dns"
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return "refused"
    return "connect"


def _optional(module: Any, name: str) -> tuple[type[BaseException], ...]:
    """A class of ``module`` that older versions lack (urllib3 1.26 has no NameResolutionError)."""
    found = getattr(module, name, None)
    return (found,) if isinstance(found, type) and issubclass(found, BaseException) else ()


def build_query(params: Sequence[tuple[str, str]]) -> str:
    """Percent-encode a query exactly as a check means it.

    Keys and values are encoded byte by byte from UTF-8, except the characters DICOM gives a
    meaning to in query values (`*` and `?` wildcards, `,` lists, `-` ranges, `.` in UIDs and
    dotted sequence paths), which go on the wire as they are.
    """
    return "&".join(f"{quote(k, safe='.')}={quote(v, safe='*?,-.')}" for k, v in params)


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class Client:
    """A DICOMweb HTTP client bound to one base URL.

    Every request that could change data first passes the ``guard`` (the plugin always gives one).
    Every answer must arrive in full before the earliest of three deadlines: the request's
    (``timeout``), the current check's (``check_deadline``) and the run's (``run_deadline``).
    What goes wrong on the way is raised as a type of ``errors``, never as requests' own
    exceptions, whose tracebacks would show the headers (credentials) of the request.
    """

    def __init__(
        self,
        base_url: str,
        auth: AuthBase | None = None,
        timeout: float = 60.0,
        retries: int = 2,
        verify: bool = True,
        redactor: Redactor | None = None,
        max_retry_wait: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        guard: Guard | None = None,
        meter: Meter | None = None,
        concurrency: int = 1,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        deadline.install(self.session)
        # Requests of one batch (each) go out on at most this many threads; 1: one after another.
        self.concurrency = max(1, concurrency)
        self._pool = batch.Pool(self.concurrency)
        if self.concurrency > batch.ADAPTER_POOL:
            # A connection kept for each thread, not dropped after every answer (see batch.py).
            for prefix, adapter in list(self.session.adapters.items()):
                if isinstance(adapter, HTTPAdapter):
                    self.session.mount(prefix, type(adapter)(pool_maxsize=self.concurrency))
        self.session.auth = auth
        # The environment's proxies (HTTPS_PROXY, NO_PROXY) and CA bundle (REQUESTS_CA_BUNDLE)
        # for the server, read once: requests reads them again for every request, which was
        # most of our own time per exchange (issue 13). No ~/.netrc either: credentials go
        # only where --dicomweb-auth says, and are redacted.
        found = self.session.merge_environment_settings(self.base_url, {}, None, verify, None)
        self.session.proxies.update(found["proxies"])
        self.session.verify = found["verify"]
        self.session.trust_env = False
        self.timeout = timeout
        self.retries = retries
        self.redactor = redactor or Redactor()
        self.max_retry_wait = max_retry_wait
        self._sleep = sleep
        self.guard = guard
        # (time.monotonic() at which it passes, what it is): set by whoever runs checks.
        self.check_deadline: tuple[float, str] | None = None
        self.run_deadline: tuple[float, str] | None = None
        self.exchanges: list[Exchange] = []
        self._guard_reader: Client = self  # whose credentials the guard reads the server with
        # What this process has read, held to its share of the read budget (if any); counted
        # from the pool's threads too.
        self.meter = meter or Meter()

    def as_other(self, auth: AuthBase | None) -> Client:
        """The same server asked with other credentials (or none): the same evidence, redactor,
        deadlines and guard, and the guard still reads the server with this client's own
        credentials (what a request may change is decided by what the run's identity sees).
        Never retried: a refusal is the answer."""
        other = Client(
            self.base_url,
            auth=auth,
            timeout=self.timeout,
            retries=0,
            redactor=self.redactor,
            guard=self.guard,
            meter=self.meter,
        )
        other.concurrency, other._pool = self.concurrency, self._pool
        other.session.verify = self.session.verify
        other.session.proxies = self.session.proxies
        other.exchanges = self.exchanges
        other.check_deadline, other.run_deadline = self.check_deadline, self.run_deadline
        other._guard_reader = self._guard_reader
        return other

    def url(self, path: str, query: Sequence[tuple[str, str]] = ()) -> str:
        """The absolute URL for a path under the base URL (absolute URLs pass through)."""
        url = path if "://" in path else f"{self.base_url}/{path.lstrip('/')}"
        return f"{url}?{build_query(query)}" if query else url

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str | None] | None = None,
        body: bytes | None = None,
        stream: bool = False,
    ) -> requests.Response:
        """Send a request, retrying 429/503 a bounded number of times; record every attempt.

        A header given as None is left out, even one requests sends by default (Accept: */*):
        ``headers={"Accept": None}`` sends no Accept header at all. Raises ``UnsafeRequestError``
        (not sent), ``NoAnswer`` / ``DeadlineExceeded`` (no complete answer) or ``Throttled``
        (still 429/503 after the retries)."""
        __tracebackhide__ = True
        url = self.url(path, query)
        sent = {k: v for k, v in (headers or {}).items() if v is not None}
        sink = batch.current_sink()
        if method.upper() not in SAFE_METHODS and sink is not None and not sink.writes:
            # Reads are independent of each other; a write only where the caller says so.
            raise UnsafeRequestError(f"{method} {url} is not sent in a batch of reads (each)")
        if self.guard is not None and method.upper() not in SAFE_METHODS:
            try:
                self.guard.check(method, url, sent, body, self._read_for_guard)
            except UnsafeRequestError as exc:
                self._begin(method, url, sent, body).error = f"not sent: {exc}"
                raise type(exc)(str(exc)) from None
        for attempt in range(self.retries + 1):
            response = self._send(method, url, headers or {}, sent, body, stream)
            if response.status_code == 409 and sink is not None and method.upper() in SAFE_METHODS:
                # A read answered "Conflict" while others were asked at once: the server's own
                # writers collided (Orthanc 1.12 and 1.13 caching a study's metadata answer 409
                # "a bad revision number ... conflict between multiple writers" to concurrent
                # GETs). Asked again alone, once: a verdict must not depend on how many
                # requests are asked at once. Both answers stay in the evidence.
                response.close()
                response = self._send(method, url, headers or {}, sent, body, stream, alone=True)
            if response.status_code not in RETRY_STATUSES:
                if readmap.on:
                    readmap.watch(response, self.base_url)
                return response
            response.close()
            self._pool.throttled()
            asked = retry_after_seconds(response.headers.get("Retry-After"), time.time())
            wait = 2.0**attempt if asked is None else asked
            left, deadline_name = self._time_left(per_request=False)
            throttled = f"{method} {url}: {response.status_code} {response.reason}"
            if attempt == self.retries:
                raise Throttled(f"{throttled}, {attempt + 1} time(s) (--dicomweb-retries)")
            if wait > self.max_retry_wait:
                raise Throttled(
                    f"{throttled} with Retry-After {asked:g} s, longer than "
                    f"--dicomweb-max-retry-wait ({self.max_retry_wait:g} s)"
                )
            if wait >= left:
                raise Throttled(f"{throttled}; waiting {wait:g} s would pass {deadline_name}")
            self._sleep(wait)
        raise AssertionError("unreachable")  # the loop always returns or raises

    def each(self, calls: Iterable[Callable[[], T]], writes: bool = False) -> list[T]:
        """The values of ``calls``, each a GET (or HEAD) whose answer none of the others needs,
        in the order given: asked at once on at most ``concurrency`` threads. ``writes``: the
        calls may write too, each only what none of the others reads or writes (the cleanup's
        deletes, each of its own study). Their exchanges are
        recorded in the order given too, after the last one is done; the first error in that
        order is raised once every call has ended. At concurrency 1 (and inside a call) they are
        asked one after another and the first error is raised at once, as a loop would."""
        __tracebackhide__ = True
        asked = list(calls)
        if self.concurrency == 1 or len(asked) < 2 or readmap.on or batch.current_sink():
            # readmap (scripts/what-is-read) follows one answer at a time.
            return [call() for call in asked]
        submitted = [self._pool.submit(call, self.exchanges, writes) for call in asked]
        futures = [future for future, _ in submitted]
        sinks = [sink for _, sink in submitted]
        try:
            outcomes = batch.wait_all(
                futures, sinks, lambda: self._time_left(per_request=False)[0] <= 0
            )
        finally:
            for sink in sinks:
                self.exchanges.extend(sink.exchanges)
        for outcome in outcomes:
            if outcome.error is not None:
                raise outcome.error
        return [outcome.value for outcome in outcomes]  # type: ignore[misc]

    def _time_left(self, per_request: bool = True) -> tuple[float, str]:
        """Seconds until the earliest deadline (of a request, unless ``per_request`` is False:
        then of the check and the run), and which one it is."""
        now = time.monotonic()
        limits = [
            (self.timeout, f"the request deadline of {self.timeout:g} s (--dicomweb-timeout)")
            if per_request
            else (float("inf"), "no deadline")
        ]
        for other in (self.check_deadline, self.run_deadline):
            if other is not None:
                limits.append((other[0] - now, other[1]))
        return min(limits, key=lambda limit: limit[0])

    def _send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str | None],
        sent: Mapping[str, str],
        body: bytes | None,
        stream: bool,
        alone: bool = False,
    ) -> requests.Response:
        __tracebackhide__ = True
        sink = batch.current_sink()

        def once() -> requests.Response:
            if sink is None:
                return self._attempt(method, url, headers, sent, body, stream, None)
            passed = lambda: self._time_left(per_request=False)[0] <= 0  # noqa: E731
            with self._pool.alone(passed) if alone else self._pool.admitted(passed):
                return self._attempt(method, url, headers, sent, body, stream, sink)

        # A read that met a kept-alive connection closed while idle goes again on another: at
        # most once per connection the pool can hold (each such connection is dropped).
        for _ in range(batch.ADAPTER_POOL):
            try:
                return once()
            except ClosedWhileIdle:
                continue
        return once()

    def _attempt(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str | None],
        sent: Mapping[str, str],
        body: bytes | None,
        stream: bool,
        sink: batch.Sink | None,
    ) -> requests.Response:
        __tracebackhide__ = True
        exchange = self._begin(method, url, sent, body)
        left, what = self._time_left()
        if left <= 0:
            exchange.error = f"not sent: {what} has passed"
            raise DeadlineExceeded(f"{method} {url} was not sent: {what} has passed")
        try:
            self.meter.ask(method, url)
        except BudgetSpent as exc:
            exchange.error = "not sent: the read budget is spent"
            raise BudgetSpent(self.redactor.text(str(exc))) from None
        watch = deadline.Deadline(left, what).start()
        if sink is not None:
            sink.flying.add(watch)  # ended by the waiting thread once the check's time is up
        started = time.monotonic()
        try:
            response = self.session.send(
                prepared(self.session, method, url, headers, body),
                # The socket timeout only backs the deadline up: the deadline fires first.
                timeout=left + 1,
                allow_redirects=True,
                stream=True,
                verify=self.session.verify,
                cert=self.session.cert,
                proxies=dict(self.session.proxies),
            )
            watch.watch(response)
            self.meter.watch(response)
            self._finish(exchange, response, stream)
        except BudgetSpent as exc:
            watch.cancel()
            response.close()
            exchange.error = "the read budget is spent: the answer was not read further"
            exchange.elapsed = time.monotonic() - started
            raise BudgetSpent(self.redactor.text(str(exc))) from None
        except (requests.RequestException, DeadlineExceeded) as exc:
            watch.cancel()
            if watch.expired:
                error: NoAnswer = watch.error()
            elif watch.reused and method.upper() in SAFE_METHODS and _closed_before_answer(exc):
                error = ClosedWhileIdle(
                    f"{method} {url}: no answer on a connection kept open from an earlier "
                    "exchange: the server closed it while idle (as it may), and the request "
                    "crossed the close; asked again on another connection"
                )
            else:
                error = self._no_answer(method, url, exc)
            exchange.error = str(error)
            exchange.elapsed = time.monotonic() - started
            raise error from None
        finally:
            if sink is not None:
                sink.flying.discard(watch)
        exchange.elapsed = time.monotonic() - started
        return response

    def _no_answer(self, method: str, url: str, exc: BaseException) -> NoAnswer:
        if isinstance(exc, DeadlineExceeded):
            return exc
        detail = self.redactor.text(f"{type(exc).__name__}: {exc}")
        return NoAnswer(f"{method} {url}: no complete answer: {detail}", no_answer_kind(exc))

    @contextmanager
    def brief(self, timeout: float) -> Iterator[None]:
        """Requests inside are sent once (no retry) with at most ``timeout`` seconds each: for
        questions the run can do without (what the server calls itself)."""
        saved = self.timeout, self.retries
        self.timeout, self.retries = min(self.timeout, timeout), 0
        try:
            yield
        finally:
            self.timeout, self.retries = saved

    def _read_for_guard(
        self, url: str, query: Sequence[tuple[str, str]], headers: Mapping[str, str]
    ) -> requests.Response:
        response = self._guard_reader.request("GET", url, query=query, headers=headers)
        if readmap.on:
            readmap.unwatch(response)  # what the guard reads is no check's
        return response

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def iter_parts(self, response: requests.Response) -> Iterator[multipart.Part]:
        """Stream the parts of a multipart response, noting in the evidence what arrived."""
        __tracebackhide__ = True
        exchange = self._exchange_for(response)
        summary: list[str] = []
        try:
            for part in multipart.iter_parts(
                response.iter_content(chunk_size=1 << 16),
                response.headers.get("Content-Type", ""),
            ):
                summary.append(f"{part.content_type or 'no Content-Type'} {len(part.body)} B")
                if exchange is not None:
                    exchange.response_body = f"[{len(summary)} part(s): {'; '.join(summary)}]"
                if readmap.on:
                    part = replace(part, headers=readmap.part_headers(part.headers, response))
                yield part
        except (requests.RequestException, DeadlineExceeded) as exc:
            request = response.request
            error = self._no_answer(str(request.method), str(request.url), exc)
            if exchange is not None:
                exchange.error = f"after {len(summary)} part(s): {error}"
            raise error from None
        except BudgetSpent as exc:
            if exchange is not None:
                exchange.error = f"after {len(summary)} part(s): the read budget is spent"
            raise BudgetSpent(self.redactor.text(str(exc))) from None
        finally:
            response.close()

    def _begin(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> Exchange:
        shown = dict(headers)
        if self.session.auth is not None:
            shown["Authorization"] = REDACTED
        exchange = Exchange(
            method=method,
            url=self.redactor.text(url),
            request_headers=self.redactor.headers(shown),
            request_body=self.redactor.text(describe_body(body, headers.get("Content-Type"))),
        )
        sink = batch.current_sink()
        if sink is not None and sink.owner is self.exchanges:
            sink.exchanges.append(exchange)  # appended to self.exchanges in the order asked
        else:
            self.exchanges.append(exchange)
        return exchange

    def _finish(self, exchange: Exchange, response: requests.Response, stream: bool) -> None:
        exchange.status = response.status_code
        exchange.reason = response.reason or ""
        exchange.response_headers = self.redactor.headers(dict(response.headers))
        if stream and response.ok:
            exchange.response_body = "[streamed]"
        else:
            # An error answer is small and is the evidence a person needs: read it even when
            # the caller asked to stream.
            exchange.response_body = self.redactor.text(
                describe_body(response.content, response.headers.get("Content-Type"))
            )
        response.__dict__["_dicomweb_exchange"] = exchange

    def _exchange_for(self, response: requests.Response) -> Exchange | None:
        found = response.__dict__.get("_dicomweb_exchange")
        return found if isinstance(found, Exchange) else None
