"""Evidence a person reads: answers' bodies compact, and cut to a few lines where they are shown.

A server may write its JSON one value per line (Orthanc does): a search of three studies is then
150 lines of evidence. Re-serialised compactly, one result per line, the same answer is three
lines, and its cut keeps whole results. results.json keeps the (compact) excerpt the client
recorded; the terminal and the HTML report show its first lines and say how many more there are.
"""

from __future__ import annotations

import json
from typing import Any

SHOWN_LINES = 8  # lines of a body the terminal and the HTML report show


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
