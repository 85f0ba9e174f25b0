"""What the kernel says about the processes and ports of the servers our tests start."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def pid_exists(pid: int) -> bool:
    """Whether process ``pid`` runs: a zombie (exited, not reaped yet) is gone."""
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            return stat.read_text().split(")")[-1].split()[0] != "Z"
        except (FileNotFoundError, ProcessLookupError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def port_is_free(port: int, host: str = "0.0.0.0") -> bool:
    """Whether a new server could listen on ``host``:``port`` now (the default: all interfaces,
    as Orthanc does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Closed connections linger in TIME_WAIT; a server ignores them with SO_REUSEADDR, and
        # bind still fails while anything listens on the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen()
        except OSError:
            return False
    return True
