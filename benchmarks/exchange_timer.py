"""A pytest plugin for benchmarks/suite_time.py (``-p exchange_timer``): every HTTP exchange
the run makes, timed from sending the request to the last byte of the answer, with the bytes
each way; written per process (controller or xdist worker) to $EXCHANGE_TIMER_DIR at the end.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import requests

_exchanges: list[tuple[str, int, int, float]] = []  # method, bytes sent, received, seconds
_send = requests.Session.send


def _timed_send(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> Any:
    started = time.perf_counter()
    response = _send(self, request, **kwargs)
    if not kwargs.get("stream"):
        received = len(response.content)
    else:  # a streamed body is read by the check: counted by its length, if it says one
        received = int(response.headers.get("Content-Length") or 0)
    body = request.body
    sent = len(body) if isinstance(body, bytes | str) else 0
    _exchanges.append((request.method or "", sent, received, time.perf_counter() - started))
    return response


requests.Session.send = _timed_send  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = os.environ.get("EXCHANGE_TIMER_DIR")
    if folder:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "controller")
        Path(folder, f"{worker}.json").write_text(json.dumps(_exchanges))
