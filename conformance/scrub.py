"""Every text a report carries, redacted and bounded, before anything shows or stores it.

Our own evidence is redacted where it is recorded, but a report also carries what pytest and other
plugins wrote: tracebacks with the arguments and locals of every frame (``-l``), captured output,
assertion explanations. Any of it may hold a credential, or a repr of megabytes. So each report of
a check passes through ``scrub_report`` once it is made, on the worker that made it: the terminal,
JUnit XML, the HTML report and results.json all read the scrubbed one.
"""

from __future__ import annotations

from typing import Any

import pytest
from _pytest._code.code import TerminalRepr

from .evidence import Redactor

# The most characters any one piece of report text keeps (a line of a traceback, a section).
TEXT_LIMIT = 20_000
_FIELDS = ("longrepr", "sections", "user_properties", "wasxfail", "dicomweb_record")


def cut(text: str, limit: int = TEXT_LIMIT) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]} … [{len(text) - limit} more characters cut by dicomweb-conformance]"


def scrub_report(report: pytest.TestReport, redactor: Redactor) -> None:
    """Redact and bound, in place, every text of ``report`` a person or a file could see."""
    seen: set[int] = set()
    for name in _FIELDS:
        if name in vars(report):
            setattr(report, name, _clean(getattr(report, name), redactor, seen))


def _clean(value: Any, redactor: Redactor, seen: set[int]) -> Any:
    if isinstance(value, str):
        return cut(redactor.text(value))
    if isinstance(value, list):
        return [_clean(v, redactor, seen) for v in value]
    if isinstance(value, tuple):
        return tuple(_clean(v, redactor, seen) for v in value)
    if isinstance(value, dict):
        return {k: _clean(v, redactor, seen) for k, v in value.items()}
    if isinstance(value, TerminalRepr) and id(value) not in seen:
        seen.add(id(value))
        for name, inner in list(vars(value).items()):
            setattr(value, name, _clean(inner, redactor, seen))
    return value
