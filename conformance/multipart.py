"""multipart/related codec (RFC 2046 section 5.1, RFC 2387) as used by DICOMweb (PS3.18).

STOW-RS requests and WADO-RS responses carry DICOM instances, frames or bulk data as the parts of
a ``multipart/related`` body. ``encode_related`` builds such a body; ``iter_parts`` walks one as a
stream of byte chunks, holding only the current part in memory, so a whole study can be checked
part by part. The module works on bytes only: it knows nothing about HTTP clients or pytest.

Wire format, for boundary ``b``::

    [preamble CRLF] --b [padding] CRLF headers CRLF body
    CRLF --b [padding] CRLF headers CRLF body ... CRLF --b-- [padding] [CRLF epilogue]

The delimiter is ``CRLF--b``: the CRLF before ``--b`` belongs to the delimiter, not to the body.
"""

from __future__ import annotations

import enum
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

# RFC 2045 token characters: a parameter value made only of these needs no quotes.
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
_TRANSPORT_PADDING = b" \t"


class MultipartError(ValueError):
    """Malformed multipart input (or media type); the message says what is wrong and where."""


@dataclass(frozen=True)
class Part:
    """One body part: its headers (names lowercased) and its body, byte-exact."""

    headers: dict[str, str]
    body: bytes

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")


def parse_media_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a Content-Type value into the lowercased media type and its parameters.

    Parameter names are lowercased and values unquoted (backslash escapes resolved); values keep
    their case, because boundaries are case-sensitive.
    """
    media_type, _, rest = value.partition(";")
    media_type = media_type.strip().lower()
    kind, slash, subtype = media_type.partition("/")
    if not (kind and slash and subtype):
        raise MultipartError(f"media type {value!r} is not of the form type/subtype")

    params: dict[str, str] = {}
    pos = 0
    while True:
        # Skip whitespace and empty parameters (";;" or a trailing ";").
        while pos < len(rest) and rest[pos] in " \t;":
            pos += 1
        if pos == len(rest):
            return media_type, params
        equals = rest.find("=", pos)
        semicolon = rest.find(";", pos)
        if equals == -1 or (semicolon != -1 and semicolon < equals):
            end = len(rest) if semicolon == -1 else semicolon
            raise MultipartError(f"parameter {rest[pos:end].strip()!r} in {value!r} has no '='")
        name = rest[pos:equals].strip().lower()
        if not name:
            raise MultipartError(f"parameter with an empty name in {value!r}")
        pos = equals + 1
        while pos < len(rest) and rest[pos] in " \t":
            pos += 1
        if rest.startswith('"', pos):
            params[name], pos = _read_quoted(rest, pos, value)
            while pos < len(rest) and rest[pos] in " \t":
                pos += 1
            if pos < len(rest) and rest[pos] != ";":
                raise MultipartError(
                    f"unexpected {rest[pos:]!r} after the quoted value of {name!r} in {value!r}"
                )
        else:
            end = rest.find(";", pos)
            end = len(rest) if end == -1 else end
            params[name] = rest[pos:end].strip()
            pos = end


def _read_quoted(text: str, start: int, whole: str) -> tuple[str, int]:
    """Read the quoted string opening at ``text[start]``; return its value and the index after."""
    chars: list[str] = []
    pos = start + 1
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text):
            chars.append(text[pos + 1])
            pos += 2
        elif char == '"':
            return "".join(chars), pos + 1
        else:
            chars.append(char)
            pos += 1
    raise MultipartError(f"unterminated quoted string in {whole!r}")


def _quoted(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _quote_if_needed(value: str) -> str:
    if value and all(char in _TOKEN_CHARS for char in value):
        return value
    return _quoted(value)


def new_boundary() -> str:
    """A random boundary of hex digits: token characters only, and 128 random bits make it
    vanishingly unlikely to occur inside any body."""
    return secrets.token_hex(16)


def encode_related(
    bodies: Sequence[bytes],
    part_type: str = "application/dicom",
    boundary: str | None = None,
    root_type: str | None = "application/dicom",
    part_headers: Mapping[str, str] | None = None,
) -> tuple[bytes, str]:
    """Encode ``bodies`` as a multipart/related body; return (body, Content-Type header value).

    Every part gets ``Content-Type: <part_type>`` plus ``part_headers``. With ``root_type`` None
    the Content-Type has no ``type`` parameter (some clients and examples send it that way).
    Raises ValueError for bodies that contain the delimiter, for no bodies at all (RFC 2046 needs
    at least one part) and for header text that would break the framing.
    """
    if not bodies:
        raise ValueError("a multipart body needs at least one part")
    if boundary is None:
        boundary = new_boundary()
    if not boundary or len(boundary) > 70 or boundary.endswith(" "):
        raise ValueError(f"boundary {boundary!r} must be 1 to 70 characters, not ending in space")
    extra = dict(part_headers or {})
    if any(name.lower() == "content-type" for name in extra):
        raise ValueError("give the part Content-Type as part_type, not in part_headers")
    lines = [f"Content-Type: {part_type}", *(f"{name}: {v}" for name, v in extra.items())]
    if any("\r" in line or "\n" in line for line in lines):
        raise ValueError(f"part headers must not contain CR or LF: {lines!r}")
    header_block = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")

    dash_boundary = b"--" + boundary.encode("ascii")
    delimiter = b"\r\n" + dash_boundary
    out = bytearray()
    for index, body in enumerate(bodies):
        # The header block ends in CRLF, so a body starting with --boundary would complete one.
        if body.startswith(dash_boundary) or delimiter in body:
            raise ValueError(f"body {index} contains the delimiter {delimiter!r}")
        out += dash_boundary + b"\r\n" + header_block + body + b"\r\n"
    out += dash_boundary + b"--\r\n"

    params = [] if root_type is None else [f"type={_quoted(root_type)}"]
    params.append(f"boundary={_quote_if_needed(boundary)}")
    return bytes(out), "; ".join(["multipart/related", *params])


class _Line(enum.Enum):
    """What follows a ``CRLF--boundary`` match in the buffer."""

    OPEN = "a delimiter line: another part follows"
    CLOSE = "the close delimiter"
    INCOMPLETE = "not enough bytes yet to tell"
    NOT_DELIMITER = "boundary text that is part of the content"


def _classify(buf: bytes | bytearray, after: int) -> tuple[_Line, int]:
    """Classify the bytes from ``after`` (just past ``CRLF--boundary``); for a delimiter also
    return the offset just past it (past its CRLF for OPEN, past the ``--`` for CLOSE)."""
    if buf[after : after + 2] == b"--":
        return _Line.CLOSE, after + 2
    if len(buf) == after + 1 and buf[after] == ord("-"):  # (never slice to the end: a copy)
        return _Line.INCOMPLETE, 0
    pos = after
    while pos < len(buf) and buf[pos] in _TRANSPORT_PADDING:
        pos += 1
    ending = buf[pos : pos + 2]
    if ending == b"\r\n":
        return _Line.OPEN, pos + 2
    # Shorter than 2 bytes only at the end of the buffer: the next chunk decides.
    if not ending or ending == b"\r":
        return _Line.INCOMPLETE, 0
    # Like Go's mime/multipart: "--boundaryX" at a line start is content, not a delimiter.
    return _Line.NOT_DELIMITER, 0


def _parse_part(buf: bytes | bytearray, start: int, end: int, number: int) -> Part:
    """Build part ``number`` (1-based) from ``buf[start:end]``: headers, blank line, body. The
    body is copied once (through a memoryview), the rest of the buffer never."""
    if end == start:
        return Part({}, b"")  # delimiter lines back to back: the CRLF between is the delimiter's
    view = memoryview(buf)
    if buf.startswith(b"\r\n", start, end):
        return Part({}, bytes(view[start + 2 : end]))  # no headers, just the blank line
    blank = buf.find(b"\r\n\r\n", start, end)
    if blank == -1:
        raise MultipartError(f"part {number}: headers are not ended by a blank line (CRLF CRLF)")
    headers: dict[str, str] = {}
    # latin-1 maps every byte, so odd header bytes reach the error message or value intact.
    for line in bytes(view[start:blank]).decode("latin-1").split("\r\n"):
        name, colon, field_value = line.partition(":")
        if not colon or not name.strip():
            raise MultipartError(f"part {number}: header line {line!r} has no 'name:' prefix")
        key = name.strip().lower()
        value = field_value.strip()
        # Repeated headers combine as in HTTP (RFC 9110 section 5.3).
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return Part(headers, bytes(view[blank + 4 : end]))


def iter_parts(chunks: Iterable[bytes], content_type: str) -> Iterator[Part]:
    """Decode a multipart body given as byte chunks, yielding each part once its closing
    delimiter has arrived.

    Chunks are pulled lazily and may split the body anywhere. Only the current part and at most
    one chunk beyond it are held. The Content-Type is checked now, before any chunk is read; body
    errors raise MultipartError as iteration reaches them. Nothing after the close delimiter (the
    epilogue) is read.
    """
    media_type, params = parse_media_type(content_type)
    if not media_type.startswith("multipart/"):
        raise MultipartError(f"Content-Type {content_type!r} is not multipart")
    boundary = params.get("boundary")
    if boundary is None:
        raise MultipartError(f"Content-Type {content_type!r} has no boundary parameter")
    if not boundary:
        raise MultipartError(f"Content-Type {content_type!r} has an empty boundary")
    try:
        delimiter = b"\r\n--" + boundary.encode("ascii")
    except UnicodeEncodeError:
        raise MultipartError(f"boundary {boundary!r} is not ASCII") from None
    return _walk(iter(chunks), delimiter)


def _next_chunk(chunks: Iterator[bytes]) -> bytes | None:
    chunk = next(chunks, None)
    while chunk is not None and not chunk:
        chunk = next(chunks, None)
    return chunk


def _walk(chunks: Iterator[bytes], delimiter: bytes) -> Iterator[Part]:
    first = _next_chunk(chunks)
    if first is None:
        raise _ended_early(delimiter, False, 0, 0)
    received = len(first)
    start = search_from = 0  # start: where the current part (or the preamble) begins in buf
    in_part = False  # False while in the preamble; then buf[start:] is the current part
    parts = 0
    dash_boundary = delimiter[2:]
    buf: bytes | bytearray = first  # a body given whole is searched where it is, never copied
    if first.startswith(dash_boundary):
        line, line_end = _classify(first, len(dash_boundary))
        if line is _Line.CLOSE:
            raise MultipartError("no parts: the first delimiter is the close delimiter")
        if line is _Line.OPEN:  # the usual body: no preamble, the first part follows
            in_part, start, search_from = True, line_end, line_end
    if not in_part and (first.startswith(dash_boundary) or dash_boundary.startswith(first)):
        # A delimiter at the very start, not yet decidable (or content that looks like one):
        # a virtual CRLF in front makes it match the same pattern as every later one.
        buf = bytearray(b"\r\n") + first
    while True:
        index = buf.find(delimiter, search_from)
        if index != -1:
            line, line_end = _classify(buf, index + len(delimiter))
            if line is _Line.NOT_DELIMITER:
                search_from = index + 1
                continue
            if line is not _Line.INCOMPLETE:
                if in_part:
                    parts += 1
                    yield _parse_part(buf, start, index, parts)
                    if line is _Line.CLOSE:
                        return
                elif line is _Line.CLOSE:
                    raise MultipartError("no parts: the first delimiter is the close delimiter")
                in_part = True
                # Move past the delimiter; the bytes before it are dropped only when the next
                # chunk arrives (deleting them here would copy the rest of a whole body, at
                # every part: quadratic).
                start = search_from = line_end
                continue
            search_from = index  # a delimiter, probably: look at it again with more bytes
        else:
            # A delimiter may straddle the next chunk: rescan only its possible start.
            search_from = max(search_from, len(buf) - len(delimiter) + 1)
            if not in_part:
                start = max(start, search_from)  # the preamble is discarded as it streams past

        chunk = _next_chunk(chunks)
        if chunk is None:
            raise _ended_early(delimiter, in_part, parts, received)
        received += len(chunk)
        # Once per chunk: keep only the part in progress, then append.
        if isinstance(buf, bytes):
            buf = bytearray(memoryview(buf)[start:])
        else:
            del buf[:start]
        search_from -= start
        start = 0
        buf += chunk


def _ended_early(delimiter: bytes, in_part: bool, parts: int, received: int) -> MultipartError:
    dash_boundary = delimiter[2:].decode("ascii")
    if not in_part:
        return MultipartError(
            f"no opening delimiter {dash_boundary!r} followed by CRLF in the {received}-byte body"
        )
    return MultipartError(
        f"truncated: no closing delimiter {dash_boundary + '--'!r}: body ended after {parts} "
        f"complete parts ({received} bytes) with part {parts + 1} unfinished"
    )


def decode(body: bytes, content_type: str) -> list[Part]:
    """Decode a whole multipart body held in memory."""
    return list(iter_parts([body], content_type))
