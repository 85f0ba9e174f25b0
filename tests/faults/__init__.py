"""Faults for the fault-injecting proxy: each one models a real server bug.

A fault is a function ``(request, forward) -> answer``: it may change the request before
forwarding it to the real server, or the answer after. It is registered, in ``proof.PROOFS``,
with the checks it must catch, by check name (``test_x.py::test_y[param]``), and the test that
asserts it (by default test_catalog_faults.py, which runs those checks through the proxy with the
fault and requires each to fail)::

    @fault("search-ignores-limit", catches=["test_qido_paging.py::test_limit_caps_results"])
    def search_ignores_limit(request: Exchange, forward: Forward) -> Answer: ...

Modules here hold the faults of one transaction each; importing this package registers them all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from proof import PROXY, register

from conformance import multipart
from conformance.client import build_query

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


FAULTS: dict[str, Fault] = {}  # the proxy's behaviours by name: its faults and (repairs.py) repairs


def behaviour(
    name: str,
    checks: Iterable[str],
    *,
    test: str,
    where: str = PROXY,
    kind: Any = "fault",
    readings: dict[str, str] | None = None,
) -> Callable[[Fault], Fault]:
    """Register a proxy behaviour under ``name`` and its proof (see ``proof.register``)."""

    def registered(function: Fault) -> Fault:
        register(name, checks, test=test, where=where, kind=kind, readings=readings)
        FAULTS[name] = function
        return function

    return registered


def fault(
    name: str,
    catches: Iterable[str] = (),
    *,
    test: str = "test_catalog_faults.py",
    where: str = PROXY,
) -> Callable[[Fault], Fault]:
    """Register a fault under ``name``, with the checks that must fail when it is injected and
    the test that injects it."""
    return behaviour(name, catches, test=test, where=where)


def rewrite_parts(answer: Answer, change: Callable[[bytes], bytes]) -> Answer:
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


# --- headers and JSON bodies ------------------------------------------------------------------

JSON_TYPES = ("application/dicom+json", "application/json")


def header(headers: dict[str, str], name: str) -> str:
    """A header's value, whatever the case of its name ("" when absent)."""
    return next((v for k, v in headers.items() if k.lower() == name.lower()), "")


def is_dicom_json(answer: Answer) -> bool:
    media = header(answer.headers, "Content-Type").split(";")[0].strip().lower()
    return answer.status == 200 and media in JSON_TYPES and bool(answer.body.strip())


def json_changed(answer: Answer, change: Callable[[Any], Any]) -> Answer:
    """The answer with its DICOM JSON body passed through ``change`` (other answers as they are)."""
    if not is_dicom_json(answer):
        return answer
    body = json.dumps(change(json.loads(answer.body)), ensure_ascii=False).encode()
    return Answer(answer.status, answer.headers, body)


JsonObject = dict[str, Any]


def rewrite_json(
    request: Exchange,
    forward: Forward,
    change: Callable[[Any], Any],
    only: Callable[[Exchange], bool] = lambda request: True,
) -> Answer:
    """Forward the request; pass the DICOM JSON body of a successful answer through ``change``."""
    answer = forward(request)
    return json_changed(answer, change) if only(request) else answer


def is_metadata(request: Exchange) -> bool:
    return request.method == "GET" and request.path.endswith("/metadata")


def each_object(body: Any, change: Callable[[JsonObject], JsonObject]) -> Any:
    """``change`` applied to every DICOM JSON object, sequence items first."""

    def fix(obj: JsonObject) -> JsonObject:
        for attribute in obj.values():
            if isinstance(attribute, dict) and attribute.get("vr") == "SQ":
                items = attribute.get("Value")
                if isinstance(items, list):
                    attribute["Value"] = [fix(i) if isinstance(i, dict) else i for i in items]
        return change(obj)

    if isinstance(body, list):
        return [fix(o) if isinstance(o, dict) else o for o in body]
    return fix(body) if isinstance(body, dict) else body


def each_attribute(body: Any, change: Callable[[str, JsonObject], None]) -> Any:
    """``change(tag, attribute)`` applied in place to every attribute object."""

    def fix(obj: JsonObject) -> JsonObject:
        for tag, attribute in obj.items():
            if isinstance(attribute, dict):
                change(tag, attribute)
        return obj

    return each_object(body, fix)


def of_vr(vrs: set[str], change: Callable[[JsonObject], None]) -> Callable[[str, JsonObject], None]:
    def apply(tag: str, attribute: JsonObject) -> None:
        if attribute.get("vr") in vrs and isinstance(attribute.get("Value"), list):
            change(attribute)

    return apply


# --- searches ---------------------------------------------------------------------------------

DICOM_JSON = "application/dicom+json"


def is_search(request: Exchange) -> bool:
    return request.method == "GET" and QIDO_PATH.search(request.path) is not None


def query_pairs(request: Exchange) -> list[tuple[str, str]]:
    return parse_qsl(request.query, keep_blank_values=True)


def with_query(
    request: Exchange, pairs: list[tuple[str, str]], path: str | None = None
) -> Exchange:
    return Exchange(
        request.method, path or request.path, build_query(pairs), request.headers, request.body
    )


def search_results(answer: Answer) -> list[Any] | None:
    """The results of a search answer (None when it is not a 200 JSON array)."""
    if answer.status != 200:
        return None
    try:
        body = json.loads(answer.body or b"[]")
    except ValueError:
        return None
    return body if isinstance(body, list) else None


def json_answer(answer: Answer, objects: list[Any], content_type: str = DICOM_JSON) -> Answer:
    headers = {
        k: v
        for k, v in answer.headers.items()
        if k.lower() not in ("content-type", "content-encoding", "content-length")
    }
    headers["Content-Type"] = content_type
    return Answer(200, headers, json.dumps(objects).encode())


# Importing the modules registers their faults.
from . import (  # noqa: E402
    auth,
    azure,
    dicomjson,
    heldsearch,
    http,
    properties,
    qido,
    resources,
    state,
    stow,
    wado,
    walkthrough,
)

__all__ = ["FAULTS", "Answer", "Exchange", "Forward", "JsonObject", "behaviour", "fault"]
__all__ += ["each_attribute", "each_object", "header", "is_dicom_json", "is_metadata"]
__all__ += ["is_search", "json_answer", "json_changed", "of_vr", "query_pairs", "rewrite_json"]
__all__ += ["search_results", "with_query"]
__all__ += ["auth", "azure", "dicomjson", "heldsearch", "http", "properties", "qido", "resources"]
__all__ += ["state"]
__all__ += ["stow", "wado", "walkthrough"]
