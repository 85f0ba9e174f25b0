"""Evidence a person reads: each exchange a check made (``Exchange``), its secrets removed
(``Redactor``), answers' bodies compact, and cut to a few lines where they are shown.

A server may write its JSON one value per line (Orthanc does): a search of three studies is then
150 lines of evidence. Re-serialised compactly, one result per line, the same answer is three
lines, and its cut keeps whole results. results.json keeps the (compact) excerpt the client
recorded; the terminal and the HTML report show its first lines and say how many more there are.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .settings import REDACTED

SHOWN_LINES = 8  # lines of a body the terminal and the HTML report show
EXCERPT_CHARS = 1500
# JSON bodies up to this size are re-serialised compactly before the excerpt is cut; a larger one
# is cut as it came (parsing megabytes for 1,500 characters of evidence is not worth it).
COMPACT_BYTES = 256 * 1024
SECRET_HEADERS = ("authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key")
_TEXTUAL = re.compile(r"json|xml|text|html|javascript", re.IGNORECASE)
_BEARER = re.compile(r"(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


def compact_json(text: str) -> str | None:
    """``text`` as compact JSON, each element of a top-level array (each result of a search, each
    instance of metadata) on a line of its own; None when ``text`` is not whole JSON."""
    try:
        value: Any = json.loads(text)
    except (ValueError, RecursionError):
        return None
    dump = json.dumps
    try:
        if isinstance(value, list) and value:
            inner = ",\n".join(dump(v, ensure_ascii=False, separators=(",", ":")) for v in value)
            return f"[\n{inner}\n]"
        return dump(value, ensure_ascii=False, separators=(",", ":"))
    except (ValueError, RecursionError):  # nested too deeply to write back
        return None


def shown(body: str, lines: int = SHOWN_LINES) -> str:
    """The first ``lines`` lines of a body, and how many more results.json has."""
    kept = body.splitlines()
    if len(kept) <= lines:
        return body
    return "\n".join(kept[:lines]) + f"\n… ({len(kept) - lines} more lines in results.json)"


class Redactor:
    """Removes secrets from anything the suite shows or stores."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        """Also hide this value (tokens read from files or fetched from Azure during the run)."""
        if secret and secret not in self._secrets:
            # Longest first, so a secret containing another is replaced whole.
            self._secrets = sorted([*self._secrets, secret], key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            value = value.replace(secret, REDACTED)
        return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", value)

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {
            k: REDACTED if k.lower() in SECRET_HEADERS else self.text(v) for k, v in headers.items()
        }


@dataclass
class Exchange:
    """One request and its answer (or the error that replaced the answer), redacted."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: str
    status: int | None = None
    reason: str = ""
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""
    error: str | None = None
    elapsed: float = 0.0

    def render(self) -> str:
        """The exchange as a person reads it: each body cut to its first lines (results.json
        keeps the whole excerpt)."""
        lines = [f"> {self.method} {self.url}"]
        lines += [f"> {k}: {v}" for k, v in self.request_headers.items()]
        if self.request_body:
            lines.append(f"> {shown(self.request_body)}")
        if self.status is not None:
            lines.append(f"< {self.status} {self.reason}  ({self.elapsed:.3f} s)")
            lines += [f"< {k}: {v}" for k, v in self.response_headers.items()]
            if self.response_body:
                lines.append(f"< {shown(self.response_body)}")
        if self.error:
            lines.append(f"< no complete answer: {self.error}")
        return "\n".join(lines)


def describe_body(body: bytes | None, content_type: str | None) -> str:
    """A short, safe description of a body: text excerpts for text, sizes for binary. JSON is
    re-serialised compactly first (a result per line), so that the excerpt holds more of it:
    a server writing one value per line (Orthanc) fills 1,500 characters with three results."""
    if not body:
        return ""
    head = body[:EXCERPT_CHARS]
    textual = _TEXTUAL.search(content_type) if content_type else _looks_like_text(head)
    if not textual:
        return f"[{len(body)} bytes of {content_type or 'unknown type'}]"
    compact = None
    if len(body) <= COMPACT_BYTES and head.lstrip()[:1] in (b"{", b"["):
        compact = compact_json(body.decode("utf-8", "replace"))
    if compact is None:
        text = head.decode("utf-8", "replace")
        return text + (f" … ({len(body)} bytes)" if len(body) > EXCERPT_CHARS else "")
    if len(compact) > EXCERPT_CHARS:
        return compact[:EXCERPT_CHARS] + f" … ({len(body)} bytes)"
    return compact


def _looks_like_text(head: bytes) -> bool:
    """For answers without a Content-Type (Orthanc's errors): is this readable text?"""
    try:
        # Incremental: a character cut in two at the excerpt's end is not a decoding error.
        decoded = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\r\n\t" for c in decoded)
