"""Our readers of what a server sends, fuzzed: multipart bodies, media types, DICOM JSON,
Warning headers, Retry-After, store bodies (the guard), evidence excerpts. Whatever the bytes,
a reader returns or raises its protocol error (a FAIL with evidence), nothing else: a crash of
a reader would be an ERROR of the suite where the server broke a rule.

Each test reads at least 1,500 inputs; together more than 10,000 a run.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance import multipart
from conformance.checks.test_http import WARNING, warning_values
from conformance.client import retry_after_seconds
from conformance.dicomweb import (
    ProtocolError,
    declared_media_type,
    failed_sop_uids,
    failure_reasons,
    failures,
    first_value,
    json_array,
    json_body,
    media_type,
    referenced_sop_uids,
    search_results,
    store_module,
    store_module_if_any,
    uids,
    values,
    warning_reasons,
)
from conformance.evidence import describe_body
from conformance.guard import stored_studies

MANY = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BOUNDARY = "b0undary"
MEDIA = st.sampled_from(
    [
        f"multipart/related; boundary={BOUNDARY}",
        f'multipart/related; type="application/dicom"; boundary="{BOUNDARY}"',
        "multipart/related",
        "application/dicom",
        "application/dicom+json",
        "text/plain",
        "",
    ]
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
TAGS = st.sampled_from(["0020000D", "00081199", "00081155", "00100020"])


def response(body: bytes, headers: dict[str, str] | None = None) -> requests.Response:
    answer = requests.Response()
    answer.status_code = 200
    answer._content = body
    answer.headers.update(headers or {})
    return answer


def multipart_like() -> st.SearchStrategy[bytes]:
    """Bytes that are often almost a multipart body: delimiters, headers and junk mixed."""
    pieces = st.sampled_from(
        [
            f"--{BOUNDARY}\r\n".encode(),
            f"\r\n--{BOUNDARY}".encode(),
            f"--{BOUNDARY}--".encode(),
            b"Content-Type: application/dicom\r\n\r\n",
            b"\r\n",
            b"\r\n\r\n",
            b"DICM",
            b"junk: \xff\r\n",
        ]
    )
    return st.lists(pieces | st.binary(max_size=16), max_size=12).map(b"".join)


@MANY
@given(body=multipart_like(), content_type=MEDIA, chunk=st.integers(1, 64))
def test_multipart_reader_returns_parts_or_a_multipart_error(
    body: bytes, content_type: str, chunk: int
) -> None:
    chunks = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    try:
        for part in multipart.iter_parts(chunks, content_type):
            assert isinstance(part.body, bytes)
    except multipart.MultipartError:
        pass


@MANY
@given(value=st.text(max_size=80))
def test_media_type_reader_returns_or_raises_its_error(value: str) -> None:
    try:
        kind, params = multipart.parse_media_type(value)
    except multipart.MultipartError:
        return
    assert "/" in kind and isinstance(params, dict)
    answer = response(b"", {"Content-Type": value})
    assert declared_media_type(answer) == kind
    assert media_type(answer) == (kind, params)


@MANY
@given(value=JSON, tag=TAGS)
def test_dicom_json_readers_return_or_raise_a_protocol_error(value: Any, tag: str) -> None:
    body = json.dumps(value).encode()
    for read in (
        lambda: json_array(response(body)),
        lambda: values(value, tag),
        lambda: first_value(value, tag),
        lambda: referenced_sop_uids(value),
        lambda: failed_sop_uids(value),
        lambda: failures(value),
        lambda: failure_reasons(value),
        lambda: warning_reasons(value),
        lambda: search_results(response(body)),
        lambda: store_module(response(body)),
        lambda: store_module_if_any(response(body)),
        lambda: uids(value if isinstance(value, list) else [value], tag),
    ):
        with contextlib.suppress(ProtocolError):
            read()


@MANY
@given(body=st.binary(max_size=64) | multipart_like())
def test_json_body_reader_takes_any_bytes(body: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        json_body(response(body))


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_json_nested_past_any_depth_is_a_protocol_error(depth: int) -> None:
    body = b"[" * depth + b"]" * depth
    with pytest.raises(ProtocolError, match="nested too deeply"):
        json_array(response(body))


@MANY
@given(value=st.text(max_size=60) | st.sampled_from(["120", "Wed, 21 Oct 2099 07:28:00 GMT"]))
def test_retry_after_reader_returns_seconds_or_nothing(value: str) -> None:
    seconds = retry_after_seconds(value, time.time())
    assert seconds is None or seconds >= 0


@MANY
@given(values_=st.lists(st.text(max_size=40), max_size=3))
def test_warning_reader_returns_each_value(values_: list[str]) -> None:
    headers = {"Warning": ", ".join(values_)} if values_ else {}
    for value in warning_values(response(b"", headers)):
        WARNING.fullmatch(value)


@MANY
@given(body=multipart_like() | st.binary(max_size=300), content_type=MEDIA)
def test_the_guards_reading_of_a_store_body_never_raises(body: bytes, content_type: str) -> None:
    assert isinstance(stored_studies(body, content_type), set)


@MANY
@given(body=st.binary(max_size=2000), content_type=st.none() | MEDIA | st.text(max_size=30))
def test_evidence_excerpts_take_any_body(body: bytes, content_type: str | None) -> None:
    assert isinstance(describe_body(body, content_type), str)
