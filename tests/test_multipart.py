"""Tests for the multipart/related codec: examples, error cases and Hypothesis properties."""

from __future__ import annotations

import itertools
import time
import tracemalloc
from collections.abc import Iterable, Iterator

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conformance.multipart import (
    MultipartError,
    Part,
    decode,
    encode_related,
    iter_parts,
    new_boundary,
    parse_media_type,
)

# No example database: these runs must not leave a .hypothesis directory behind.
PROPERTY = settings(database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CT = 'multipart/related; type="application/dicom"; boundary=abc'


def wire(*pieces: str) -> bytes:
    return "".join(pieces).encode("latin-1")


def every_split(data: bytes) -> Iterator[list[bytes]]:
    """The body cut once at each position, then byte by byte."""
    for cut in range(len(data) + 1):
        yield [data[:cut], data[cut:]]
    yield [data[i : i + 1] for i in range(len(data))]


class Explodes(Exception):
    """Raised by a chunk source that must not be read any further."""


def then_explode(chunks: Iterable[bytes]) -> Iterator[bytes]:
    yield from chunks
    raise Explodes("the decoder read past what it needed")


# --- parse_media_type ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            'multipart/related; type="application/dicom"; boundary=abc',
            ("multipart/related", {"type": "application/dicom", "boundary": "abc"}),
        ),
        (
            'multipart/related;boundary="a b";type=application/dicom',
            ("multipart/related", {"boundary": "a b", "type": "application/dicom"}),
        ),
        (
            '  Multipart/Related ;  TYPE = "application/dicom" ;Boundary=  XyZ  ;',
            ("multipart/related", {"type": "application/dicom", "boundary": "XyZ"}),
        ),
        (
            'multipart/related; boundary="x;y,z"; start="<a@b>"',
            ("multipart/related", {"boundary": "x;y,z", "start": "<a@b>"}),
        ),
        (
            r'multipart/related; boundary="say \"hi\" \\ ok"; type=a/b',
            ("multipart/related", {"boundary": 'say "hi" \\ ok', "type": "a/b"}),
        ),
        ("application/dicom", ("application/dicom", {})),
        ("application/dicom;;", ("application/dicom", {})),
        ('text/plain; a=""', ("text/plain", {"a": ""})),
    ],
)
def test_parse_media_type(value: str, expected: tuple[str, dict[str, str]]) -> None:
    assert parse_media_type(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "type/subtype"),
        ("multipart; boundary=a", "type/subtype"),
        ("multipart/related; boundary", "has no '='"),
        ("multipart/related; boundary; type=a/b", "has no '='"),
        ("multipart/related; =x", "empty name"),
        ('multipart/related; boundary="abc', "unterminated"),
        ('multipart/related; boundary="abc"def', "after the quoted value"),
    ],
)
def test_parse_media_type_errors(value: str, message: str) -> None:
    with pytest.raises(MultipartError, match=message):
        parse_media_type(value)


# --- Part, new_boundary ----------------------------------------------------------------------


def test_part_content_type() -> None:
    assert Part({"content-type": "application/dicom"}, b"x").content_type == "application/dicom"
    assert Part({}, b"x").content_type is None


def test_new_boundary_is_random_token() -> None:
    boundaries = {new_boundary() for _ in range(100)}
    assert len(boundaries) == 100
    for boundary in boundaries:
        assert 1 <= len(boundary) <= 70
        assert boundary.isascii() and boundary.isalnum()


# --- encode_related --------------------------------------------------------------------------


def test_encode_exact_bytes() -> None:
    body, content_type = encode_related([b"one", b"two"], boundary="abc")
    assert content_type == 'multipart/related; type="application/dicom"; boundary=abc'
    assert body == wire(
        "--abc\r\nContent-Type: application/dicom\r\n\r\none\r\n",
        "--abc\r\nContent-Type: application/dicom\r\n\r\ntwo\r\n",
        "--abc--\r\n",
    )


def test_encode_without_type_parameter_and_extra_headers() -> None:
    body, content_type = encode_related(
        [b"{}"],
        part_type="application/dicom+json",
        boundary="b",
        root_type=None,
        part_headers={"Content-Location": "/studies/1.2"},
    )
    assert content_type == "multipart/related; boundary=b"
    assert body == wire(
        "--b\r\nContent-Type: application/dicom+json\r\nContent-Location: /studies/1.2\r\n\r\n",
        "{}\r\n--b--\r\n",
    )
    [part] = decode(body, content_type)
    assert part.headers == {
        "content-type": "application/dicom+json",
        "content-location": "/studies/1.2",
    }


def test_encode_quotes_boundary_when_needed() -> None:
    body, content_type = encode_related([b"x"], boundary="a b:c")
    assert content_type.endswith('boundary="a b:c"')
    assert decode(body, content_type)[0].body == b"x"


def test_encode_random_boundary() -> None:
    body, content_type = encode_related([b"x"])
    boundary = parse_media_type(content_type)[1]["boundary"]
    assert body.startswith(f"--{boundary}\r\n".encode())


@pytest.mark.parametrize("bad", [b"--abc", b"x\r\n--abc", b"x\r\n--abc--\r\n", b"\r\n--abcd"])
def test_encode_rejects_body_containing_delimiter(bad: bytes) -> None:
    with pytest.raises(ValueError, match="contains the delimiter"):
        encode_related([b"fine", bad], boundary="abc")


@pytest.mark.parametrize("fine", [b"--ab", b"x--abc", b"x\n--abc", b"x\r--abc", b"\r\n-abc"])
def test_encode_accepts_near_misses(fine: bytes) -> None:
    body, content_type = encode_related([fine], boundary="abc")
    assert decode(body, content_type)[0].body == fine


def test_encode_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one part"):
        encode_related([])
    with pytest.raises(ValueError, match="part_type"):
        encode_related([b"x"], part_headers={"content-type": "a/b"})
    with pytest.raises(ValueError, match="CR or LF"):
        encode_related([b"x"], part_headers={"X-A": "1\r\nX-B: 2"})
    with pytest.raises(ValueError, match="boundary"):
        encode_related([b"x"], boundary="")
    with pytest.raises(ValueError, match="boundary"):
        encode_related([b"x"], boundary="a" * 71)


# --- decode: accepted inputs -----------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        'multipart/related; type="application/dicom"; boundary=abc',
        'multipart/related; type="application/dicom"; boundary="abc"',
        "multipart/related;boundary=abc;type=application/dicom",
        "multipart/related; boundary=abc",
        "Multipart/Related; BOUNDARY=abc",
    ],
)
def test_decode_content_type_variants(content_type: str) -> None:
    body = wire("--abc\r\nContent-Type: application/dicom\r\n\r\nDICM\r\n--abc--\r\n")
    assert decode(body, content_type) == [Part({"content-type": "application/dicom"}, b"DICM")]


def test_decode_boundary_with_space() -> None:
    body = wire("--a b\r\n\r\nx\r\n--a b--")
    assert decode(body, 'multipart/related; boundary="a b"') == [Part({}, b"x")]


# One message with a preamble, transport padding, several headers, a part without headers, an
# empty body, boundary look-alikes inside a body, and an epilogue.
RICH = wire(
    "This is the preamble. --abc is not a delimiter here.\r\n",
    "--abc \t \r\n",
    "Content-Type: application/dicom\r\n",
    "Content-Location:/studies/1/series/2/instances/3\r\n",
    "X-Custom:   spaced value  \r\n",
    "\r\n",
    "line1\r\n--abcd\r\n--abc-x\r\n--ab\r\n\r\n",
    "\r\n--abc\t\r\n",
    "\r\n",
    "no headers\x00\r",
    "\r\n--abc\r\n",
    "Content-Type: text/plain\r\n\r\n",
    "\r\n--abc-- \r\n",
    "Epilogue, ignored, may even contain --abc\r\n--abc\r\n",
)
RICH_PARTS = [
    Part(
        {
            "content-type": "application/dicom",
            "content-location": "/studies/1/series/2/instances/3",
            "x-custom": "spaced value",
        },
        b"line1\r\n--abcd\r\n--abc-x\r\n--ab\r\n\r\n",
    ),
    Part({}, b"no headers\x00\r"),
    Part({"content-type": "text/plain"}, b""),
]


def test_decode_rich_message() -> None:
    assert decode(RICH, CT) == RICH_PARTS


@pytest.mark.parametrize("chunks", list(every_split(RICH)), ids=lambda _: "")
def test_decode_rich_message_split_anywhere(chunks: list[bytes]) -> None:
    assert list(iter_parts(chunks, CT)) == RICH_PARTS


@pytest.mark.parametrize(
    "ending", ["--abc--", "--abc--\r\n", "--abc--  ", "--abc--\r\nepilogue", "--abc--epilogue"]
)
def test_decode_close_delimiter_endings(ending: str) -> None:
    # Orthanc ends a response at connection close, straight after the close delimiter.
    body = wire("--abc\r\nContent-Type: application/dicom\r\n\r\nDICM\r\n", ending)
    for chunks in every_split(body):
        assert [part.body for part in iter_parts(chunks, CT)] == [b"DICM"]


def test_decode_empty_part_and_empty_chunks() -> None:
    body = wire("--abc\r\n\r\n--abc\r\n\r\n\r\n--abc--")
    chunks = [b"", *(body[i : i + 1] for i in range(len(body))), b""]
    assert list(iter_parts(chunks, CT)) == [Part({}, b""), Part({}, b"")]


def test_decode_repeated_header_combines() -> None:
    body = wire("--abc\r\nX-A: 1\r\nx-a: 2\r\n\r\nbody\r\n--abc--")
    assert decode(body, CT)[0].headers == {"x-a": "1, 2"}


def test_iter_parts_checks_content_type_before_reading() -> None:
    with pytest.raises(MultipartError, match="boundary"):
        iter_parts(then_explode([]), "multipart/related")


# --- decode: errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ('application/dicom; boundary="abc"', "is not multipart"),
        ('multipart/related; type="application/dicom"', "has no boundary parameter"),
        ('multipart/related; boundary=""', "empty boundary"),
        ("multipart/related; boundary=é", "not ASCII"),
        ("multipart/related; boundary", "has no '='"),
    ],
)
def test_decode_content_type_errors(content_type: str, message: str) -> None:
    with pytest.raises(MultipartError, match=message):
        decode(b"--abc\r\n\r\nx\r\n--abc--", content_type)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("", "no opening delimiter '--abc' .* 0-byte body"),
        ("just text", "no opening delimiter"),
        ("--abc", "no opening delimiter"),
        ("--abcd\r\n\r\nx\r\n--abcd--", "no opening delimiter"),
        ("--abc\n\nx\n--abc--\n", "no opening delimiter"),  # bare LF is not a line end here
        ("--abc--\r\n", "no parts"),
        ("--abc\r\n\r\nx", "truncated: .* after 0 complete parts"),
        ("--abc\r\n\r\nx\r\n--abc\r\n\r\ny\r\n--abc", "truncated: .* after 1 complete parts"),
        ("--abc\r\n\r\nx\r\n--abc\r\n\r\ny\r\n--abc-", "truncated"),
        ("--abc\r\n\r\nx\r\n--abc\r\n\r\ny\r\n--abc \r", "truncated"),
        ("--abc\r\n\r\nx\r\n--abc\r\n", "truncated: .* after 1 complete parts"),
        ("--abc\r\nContent-Type: a/b\r\nx\r\n--abc--", "part 1: .* not ended by a blank line"),
        ("--abc\r\n\r\nx\r\n--abc\r\nno colon\r\n\r\nx\r\n--abc--", "part 2: .* no 'name:'"),
        ("--abc\r\n: empty name\r\n\r\nx\r\n--abc--", "part 1: .* no 'name:'"),
    ],
)
def test_decode_body_errors(body: str, message: str) -> None:
    with pytest.raises(MultipartError, match=message):
        decode(wire(body), CT)


def test_truncation_is_raised_after_complete_parts_are_yielded() -> None:
    parts = iter_parts([wire("--abc\r\n\r\nfirst\r\n--abc\r\n\r\nsecond")], CT)
    assert next(parts).body == b"first"
    with pytest.raises(MultipartError, match="truncated"):
        next(parts)


# --- laziness and large bodies ---------------------------------------------------------------


def test_first_part_yielded_before_more_is_read() -> None:
    first_and_delimiter = wire("--abc\r\n\r\nfirst\r\n--abc\r\n")
    parts = iter_parts(then_explode([first_and_delimiter]), CT)
    assert next(parts) == Part({}, b"first")
    with pytest.raises(Explodes):
        next(parts)


def test_epilogue_is_not_read() -> None:
    parts = iter_parts(then_explode([wire("--abc\r\n\r\nonly\r\n--abc--")]), CT)
    assert [part.body for part in parts] == [b"only"]


def test_fifty_megabytes_streamed_in_64k_chunks() -> None:
    part_count, part_size, chunk_size = 50, 1 << 20, 64 << 10
    boundary = new_boundary()
    payload = bytes(range(256)) * (part_size // 256)
    segment = f"--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n".encode()
    segment += payload + b"\r\n"
    close = f"--{boundary}--\r\n".encode()
    content_type = f"multipart/related; boundary={boundary}"
    pulled = 0

    def stream() -> Iterator[bytes]:
        # Produces the body lazily: one 1 MiB segment repeated, cut into 64 KiB chunks that
        # straddle part boundaries like a socket read would.
        nonlocal pulled
        pending = b""
        for piece in [segment] * part_count + [close]:
            pending += piece
            offset = 0
            while len(pending) - offset >= chunk_size:
                pulled += 1
                yield pending[offset : offset + chunk_size]
                offset += chunk_size
            pending = pending[offset:]
        pulled += 1
        yield pending

    started = time.perf_counter()
    tracemalloc.start()
    try:
        parts = iter_parts(stream(), content_type)
        first = next(parts)
        # Only about one part's worth of chunks has been read, not the whole body.
        assert pulled <= len(segment) // chunk_size + 2
        assert first.body == payload
        del first
        count = 1
        for part in parts:
            assert len(part.body) == part_size
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == part_count
    assert peak < 8 * part_size  # a few copies of one part, far below the 50 MiB body
    assert time.perf_counter() - started < 2.0


# --- properties ------------------------------------------------------------------------------

# Bodies made of the bytes that matter to framing, so CRLF, "--" and boundary look-alikes occur
# often; plus arbitrary binary.
framing_bytes = st.lists(
    st.sampled_from([b"\r", b"\n", b"-", b"\r\n", b"--", b"\x00", b"a", b"b", b" "]), max_size=40
).map(b"".join)
bodies = st.lists(st.one_of(st.binary(max_size=64), framing_bytes), min_size=1, max_size=5)
# Short boundaries from "ab-" collide with the bodies above now and then, exercising both the
# encoder's delimiter check and the decoder's look-alike handling.
boundaries = st.one_of(st.text(alphabet="ab-", min_size=1, max_size=4), st.just(new_boundary()))


def encode_or_reject(data: list[bytes], boundary: str) -> tuple[bytes, str]:
    try:
        return encode_related(data, boundary=boundary)
    except ValueError:
        delimiter = b"\r\n--" + boundary.encode()
        assert any(delimiter in b"\r\n" + body for body in data)
        assume(False)
        raise


def random_chunks(data: bytes, cuts: st.DataObject) -> list[bytes]:
    """``data`` cut at up to 20 random places; repeated cuts give empty chunks."""
    positions = sorted(cuts.draw(st.lists(st.integers(0, len(data)), max_size=20)))
    edges = [0, *positions, len(data)]
    return [data[start:end] for start, end in itertools.pairwise(edges)]


@PROPERTY
@given(data=bodies, boundary=boundaries)
def test_roundtrip(data: list[bytes], boundary: str) -> None:
    body, content_type = encode_or_reject(data, boundary)
    parts = decode(body, content_type)
    assert [part.body for part in parts] == data
    assert all(part.content_type == "application/dicom" for part in parts)


@PROPERTY
@given(data=st.lists(framing_bytes, min_size=1, max_size=3), boundary=boundaries)
def test_roundtrip_split_at_every_position(data: list[bytes], boundary: str) -> None:
    body, content_type = encode_or_reject(data, boundary)
    for chunks in every_split(body):
        assert [part.body for part in iter_parts(chunks, content_type)] == data


@PROPERTY
@given(data=bodies, boundary=boundaries, cuts=st.data())
def test_roundtrip_random_chunks(data: list[bytes], boundary: str, cuts: st.DataObject) -> None:
    body, content_type = encode_or_reject(data, boundary)
    chunks = random_chunks(body, cuts)
    assert [part.body for part in iter_parts(chunks, content_type)] == data


@PROPERTY
@given(data=bodies, boundary=boundaries, cuts=st.data())
def test_first_part_yielded_lazily(data: list[bytes], boundary: str, cuts: st.DataObject) -> None:
    body, content_type = encode_or_reject(data, boundary)
    delimiter = b"\r\n--" + boundary.encode()
    # The first part's closing delimiter line: "CRLF--b" then CRLF (or "--" if it is the last).
    delivered = body[: body.index(delimiter) + len(delimiter) + 2]
    chunks = random_chunks(delivered, cuts)
    parts = iter_parts(then_explode(chunks), content_type)
    assert next(parts).body == data[0]
