"""The servers our tests start cannot be reached from outside the machine.

scripts/selftest runs these tests through scripts/isolated: a network namespace whose only
interface is loopback, so whatever a server binds to (Orthanc 1.10 binds every interface,
tiny-pacs' DIMSE listener too) nothing outside can reach it. Where the machine refuses
namespaces the script says so and runs the tests on the host; this test then skips, loudly.
"""

from __future__ import annotations

import os
import socket

import pytest


def test_our_servers_live_where_only_loopback_reaches() -> None:
    if os.environ.get("CONFORMANCE_ISOLATED") != "1":
        pytest.skip("not run through scripts/isolated: servers share the host's network")
    # The kernel's answer for this process's namespace (/sys/class/net shows the host's until
    # sysfs is mounted again, so it would lie here).
    interfaces = sorted(name for _, name in socket.if_nameindex())
    assert interfaces == ["lo"], f"a namespace of our own has only loopback, not {interfaces}"
    # And loopback works there: the servers and the suite talk over it.
    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))  # as Orthanc 1.10 does
        listener.listen(1)
        port = listener.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
