"""A server our tests start never outlives the process that started it: stopped by Ctrl-C,
SIGTERM (`timeout`, a CI cancel) or SIGKILL, the process takes its server with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from processes import pid_exists

from conformance.local.orthanc import is_installed

pytestmark = [
    pytest.mark.server,  # starts Orthanc itself, in a process of its own
    pytest.mark.skipif(sys.platform != "linux", reason="the kernel's parent-death signal"),
    pytest.mark.skipif(
        not is_installed(), reason="Orthanc is not installed: run scripts/bootstrap"
    ),
]

HOLDER = """
import sys, time
from conformance.local.orthanc import LocalOrthanc
with LocalOrthanc() as server:
    print(server.pid, flush=True)
    time.sleep(600)
"""


@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name
)
def test_a_stopped_process_takes_its_server_with_it(signum: signal.Signals) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    server = int(holder.stdout.readline())
    assert pid_exists(server)
    os.kill(holder.pid, signum)
    holder.wait(30)
    deadline = time.monotonic() + 20
    while pid_exists(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_exists(server):
        os.kill(server, signal.SIGKILL)
        pytest.fail(f"Orthanc {server} outlived the process that started it ({signum.name})")
