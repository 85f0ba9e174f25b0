"""A pytest plugin for benchmarks/suite_time.py (``-p exchange_timer``): every HTTP exchange
the run makes, timed from sending the request to the last byte of the answer, with the bytes
each way, when it started and ended, and which check asked it (its setup included); written per
process (controller or xdist worker) to $EXCHANGE_TIMER_DIR at the end.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest
import requests

# method, bytes sent, received, seconds, started (perf_counter), check (node id, or "" outside one)
_exchanges: list[tuple[str, int, int, float, float, str]] = []
_lock = threading.Lock()
_check = [""]  # the check this process runs now (one at a time; its batch threads share it)
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
    took = time.perf_counter() - started
    with _lock:
        _exchanges.append((request.method or "", sent, received, took, started, _check[0]))
    return response


requests.Session.send = _timed_send  # type: ignore[method-assign]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    _check[0] = item.nodeid
    try:
        return (yield)
    finally:
        _check[0] = ""


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = os.environ.get("EXCHANGE_TIMER_DIR")
    if folder:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "controller")
        Path(folder, f"{worker}.json").write_text(json.dumps(_exchanges))
