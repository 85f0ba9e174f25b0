"""The map of what is read (issue 22): which check reads which part of which answer.

Off unless a run is started with ``DICOMWEB_CONFORMANCE_READ_MAP=<dir>`` (the run's set-up reads
it once and calls ``start``; no check ever reads it). Off, the hooks in the client and the
readers cost one test of ``on`` each. On, the client hands out answers that note what is read of
them: the status code (judged by ``expect`` against the codes it names, or compared by a check
itself), the response headers, each multipart part's headers, and each DICOM JSON object (search
results, metadata, the STOW answer and every sequence item in them), attribute by attribute.
Each record (transaction kind, part, item, how, against, check) is written once per process to
``<dir>/reads-<label>-<pid>.jsonl``; tests/whatisread.py turns them into docs/what-is-read.md.

Nothing here changes what a reader returns: a tracked object is a dict (a subclass) holding the
same keys and values, a tracked header mapping answers as the one it wraps.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import requests
from requests.structures import CaseInsensitiveDict

ENV = "DICOMWEB_CONFORMANCE_READ_MAP"

on = False  # the one flag every hook tests first

# How a part was read.
VALUE = "value"  # an attribute (or header) read by name: obj[tag], obj.get(tag)
PRESENT = "present"  # only whether it is there: tag in obj
KEYS = "keys"  # the names present, without their values: iter(obj), obj.keys()
ALL = "all"  # every attribute with its value: obj.items(), obj.values(), obj == other
JUDGED = "judged"  # a status code judged by expect against the codes it names
PRECONDITION = "precondition"  # a status code a check needs before its rule (expect.answered)
DIRECT = "direct"  # a status code a check compared itself (what against is not known)

STATUS = "status"
RESPONSE_HEADER = "response header"
PART_HEADER = "part header"
STORE_MODULE = "store answer"
OTHER = "other"
_CHECKS = "conformance.checks."


class _Sink:
    def __init__(self, directory: Path, label: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"reads-{label}-{os.getpid()}.jsonl"
        self.file: IO[str] = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        self.seen: set[tuple[Any, ...]] = set()
        self.check: str | None = None


_sink: _Sink | None = None


def start(directory: str | Path, label: str) -> Path:
    """Turn the map on for this process; return the file its records go to."""
    global on, _sink
    stop()
    _sink = _Sink(Path(directory), label)
    on = True
    return _sink.path


def stop() -> None:
    global on, _sink
    on = False
    if _sink is not None:
        _sink.file.close()
        _sink = None


def enter(check: str | None) -> None:
    """The check (its node id) whose reads follow; None: no check's (set-up, cleanup)."""
    if _sink is not None:
        _sink.check = check


def note(kind: str, part: str, item: str, how: str, against: Iterable[int] | None = None) -> None:
    """Record one read by the current check (nothing outside a check)."""
    sink = _sink
    if sink is None or sink.check is None:
        return
    codes = sorted(set(against)) if against is not None else None
    key = (kind, part, item, how, tuple(codes or ()), sink.check)
    if key in sink.seen:
        return
    sink.seen.add(key)
    record: dict[str, Any] = {
        "kind": kind,
        "part": part,
        "item": item,
        "how": how,
        "check": sink.check,
    }
    if codes is not None:
        record["against"] = codes
    sink.file.write(json.dumps(record) + "\n")


# --- what an answer answers ----------------------------------------------------------------------


def kind_of(method: str, url: str, base_url: str) -> str:
    """The transaction a request makes, from its method and its path under the base URL."""
    path = urlsplit(url).path
    base = urlsplit(base_url).path.rstrip("/")
    if base and path.startswith(base):
        path = path[len(base) :]
    segments = [s for s in path.split("/") if s]
    method = method.upper()
    kind = _resource(segments, method)
    if method in ("GET", "POST") or kind in ("store", "delete", OTHER):
        return kind
    return f"{kind} ({method})"


def _resource(segments: list[str], method: str) -> str:
    if method == "DELETE":
        return "delete"
    if not segments:
        return OTHER
    head, last, n = segments[0], segments[-1], len(segments)
    if head == "changefeed":
        return "changefeed"
    if head not in ("studies", "series", "instances"):
        return OTHER
    if method == "POST":
        return "store" if head == "studies" and n <= 2 else OTHER
    for name in ("rendered", "thumbnail", "frames", "bulkdata"):
        if name in segments:
            return name
    levels = {2: "study", 4: "series", 6: "instance"}
    if last == "metadata" and head == "studies" and n - 1 in levels:
        return f"{levels[n - 1]} metadata"
    if head == "studies" and n in levels:
        return f"retrieve {levels[n]}"
    if last in ("studies", "series", "instances") and n in (1, 3, 5):
        return f"search {last}"
    return OTHER


def level_of(kind: str) -> str:
    """What the DICOM JSON objects of an answer of ``kind`` are."""
    if kind.startswith("search "):
        return {"studies": "study", "series": "series", "instances": "instance"}.get(
            kind.split()[1], kind
        )
    if kind.endswith("metadata"):
        return "metadata"
    if kind == "store":
        return STORE_MODULE
    return kind


def _kind(response: requests.Response) -> str:
    found = response.__dict__.get("_readmap_kind")
    if isinstance(found, str):
        return found
    request = response.request
    if request is None:
        return OTHER
    return kind_of(str(request.method), str(request.url), "")


# --- tracked answers -----------------------------------------------------------------------------


class TrackedObject(dict[str, Any]):
    """A DICOM JSON object (or a part's headers) that notes each read of its keys."""

    _readmap_where: tuple[str, str] = (OTHER, OTHER)

    def _note(self, key: object, how: str) -> None:
        if on:
            kind, part = self._readmap_where
            note(kind, part, str(key), how)

    def __getitem__(self, key: str) -> Any:
        self._note(key, VALUE)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self._note(key, VALUE)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self._note(key, PRESENT)
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        self._note("*", KEYS)
        return super().__iter__()

    def keys(self) -> Any:
        self._note("*", KEYS)
        return super().keys()

    def items(self) -> Any:
        self._note("*", ALL)
        return super().items()

    def values(self) -> Any:
        self._note("*", ALL)
        return super().values()

    def __eq__(self, other: object) -> bool:
        self._note("*", ALL)
        return super().__eq__(other)

    def __ne__(self, other: object) -> bool:
        self._note("*", ALL)
        return super().__ne__(other)

    __hash__ = None  # as dict's


def _object(value: dict[str, Any], kind: str, part: str) -> TrackedObject:
    tracked = TrackedObject(value)
    tracked._readmap_where = (kind, part)
    return tracked


def tracked(value: Any, kind: str, part: str) -> Any:
    """``value`` (parsed JSON) with each object tracked as ``part`` of a ``kind`` answer, and
    each item of a sequence (an attribute of VR SQ) as ``part > tag``."""
    if isinstance(value, list):
        return [tracked(v, kind, part) for v in value]
    if not isinstance(value, dict):
        return value
    copied: dict[str, Any] = {}
    for key, attribute in value.items():
        if (
            isinstance(attribute, dict)
            and attribute.get("vr") == "SQ"
            and isinstance(attribute.get("Value"), list)
        ):
            attribute = dict(attribute)
            attribute["Value"] = [
                tracked(item, kind, f"{part} > {key}") if isinstance(item, dict) else item
                for item in attribute["Value"]
            ]
        copied[key] = attribute
    return _object(copied, kind, part)


def tracked_answer(response: requests.Response, value: Any) -> Any:
    """The parsed JSON body of ``response``, tracked at the level its transaction gives."""
    kind = _kind(response)
    return tracked(value, kind, level_of(kind))


class TrackedHeaders(CaseInsensitiveDict[str]):
    """A response's headers (the same ones, not a copy), noting each name read (lowercased)."""

    def __init__(self, original: CaseInsensitiveDict[str], kind: str) -> None:
        super().__init__()
        vars(self)["_store"] = vars(original)["_store"]
        self._readmap_kind = kind

    def _note(self, key: object, how: str) -> None:
        if on:
            note(self._readmap_kind, RESPONSE_HEADER, str(key).lower(), how)

    def __getitem__(self, key: str) -> str:
        self._note(key, VALUE)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self._note(key, PRESENT)
        try:
            super().__getitem__(str(key))
        except (KeyError, AttributeError):
            return False
        return True

    def get(self, key: str, default: Any = None) -> Any:
        self._note(key, VALUE)
        try:
            return super().__getitem__(key)
        except KeyError:
            return default

    def __iter__(self) -> Iterator[str]:
        self._note("*", KEYS)
        return super().__iter__()


class WatchedResponse(requests.Response):
    """A response whose status code notes a check comparing it itself, and whose JSON body is
    tracked."""

    @property
    def status_code(self) -> int:
        value: int = self.__dict__["status_code"]
        if on:
            caller = sys._getframe(1).f_globals.get("__name__", "")
            if caller.startswith(_CHECKS):
                note(_kind(self), STATUS, str(value), DIRECT)
        return value

    @status_code.setter
    def status_code(self, value: int) -> None:
        self.__dict__["status_code"] = value

    def json(self, **kwargs: Any) -> Any:
        value = super().json(**kwargs)
        return tracked_answer(self, value) if on else value


def watch(response: requests.Response, base_url: str) -> None:
    """Make ``response`` (just answered, its evidence taken) note what is read of it."""
    request = response.request
    kind = kind_of(str(request.method), str(request.url), base_url) if request else OTHER
    response.__dict__["_readmap_kind"] = kind
    response.headers = TrackedHeaders(response.headers, kind)
    if type(response) is requests.Response:
        response.__class__ = WatchedResponse


def unwatch(response: requests.Response) -> None:
    """Let ``response`` be read unnoted (the guard's reads before a change are no check's)."""
    if isinstance(response, WatchedResponse):
        object.__setattr__(response, "__class__", requests.Response)
    if isinstance(response.headers, TrackedHeaders):
        plain: CaseInsensitiveDict[str] = CaseInsensitiveDict()
        vars(plain)["_store"] = vars(response.headers)["_store"]
        response.headers = plain
    response.__dict__.pop("_readmap_kind", None)


def part_headers(headers: Mapping[str, str], response: requests.Response) -> dict[str, str]:
    """A multipart part's headers (names lowercased), noting each name read."""
    return _object(dict(headers), _kind(response), PART_HEADER)


def status(response: requests.Response, expected: Iterable[int], how: str = JUDGED) -> None:
    """``expect`` judged the response's status code against ``expected``."""
    note(_kind(response), STATUS, str(response.__dict__.get("status_code")), how, expected)
