"""A server our tests start never outlives the process that started it: stopped by Ctrl-C,
SIGTERM (`timeout`, a CI cancel) or SIGKILL, the process takes its server with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conformance.orthanc import is_installed

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="the kernel's parent-death signal"),
    pytest.mark.skipif(
        not is_installed(), reason="Orthanc is not installed: run scripts/bootstrap"
    ),
]

HOLDER = """
import sys, time
from conformance.orthanc import LocalOrthanc
with LocalOrthanc() as server:
    print(server.pid, flush=True)
    time.sleep(600)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"  # a zombie is gone
    except FileNotFoundError:
        return False


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name
)
def test_a_stopped_process_takes_its_server_with_it(signum: signal.Signals) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    server = int(holder.stdout.readline())
    assert alive(server)
    os.kill(holder.pid, signum)
    holder.wait(30)
    deadline = time.monotonic() + 20
    while alive(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(server):
        os.kill(server, signal.SIGKILL)
        pytest.fail(f"Orthanc {server} outlived the process that started it ({signum.name})")
