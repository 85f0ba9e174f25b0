"""What the local server launchers (``orthanc.py``, ``tinypacs.py``) share.

Each launcher runs a real DICOMweb server as our own child process, on a free loopback port, with
its files in a temporary directory. Picking that port, stopping exactly that process, reading the
end of its log and running a command against it are the same for every server, so they live here.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Self

POLL_INTERVAL = 0.1
STOP_GRACE = 10.0
LOG_TAIL_LINES = 25


def free_port(avoid: Collection[int] = ()) -> int:
    """A loopback port nobody listens on now (it may be taken again before a server binds it)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in avoid:
            return port


def stop_process(process: subprocess.Popen[bytes], grace: float = STOP_GRACE) -> None:
    """End one child process: SIGTERM, up to ``grace`` seconds, then SIGKILL; always reaped.

    Popen.terminate/kill signal exactly this PID, which cannot have been reused: it is our child
    and has not been reaped yet. Nothing else (no process group, no name) is ever signalled.
    """
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def read_log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str | None:
    """The last ``lines`` lines of a log file, or None when it cannot be read."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    return "\n".join(text.splitlines()[-lines:])


def exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """A SIGTERM handler that raises SystemExit, so ``finally`` blocks stop the server."""
    raise SystemExit(128 + signum)


def run_command(command: Sequence[str], env: Mapping[str, str]) -> int:
    """Run ``command`` in the environment ``env``; its exit status, as a shell reports it.

    A Ctrl-C reaches the command too (it is in our process group): we wait for it to finish its
    own cleanup. A SIGTERM to us (see ``exit_on_sigterm``) is passed on, so the command does not
    outlive the server it was started against.
    """
    try:
        child = subprocess.Popen(list(command), env=dict(env))
    except OSError as error:
        print(f"cannot run {command[0]!r}: {error}", file=sys.stderr)
        return 127
    try:
        status = child.wait()
    except KeyboardInterrupt:
        status = child.wait()
    except SystemExit:
        child.terminate()
        child.wait()
        raise
    # A command killed by a signal exits like a shell reports it: 128 + signal number.
    return status if status >= 0 else 128 - status


class LocalServer:
    """What the throwaway local servers share: a context manager around start() and stop(),
    and the loopback port, URLs and process of the running server."""

    name = "the server"
    error: type[Exception] = RuntimeError
    dicomweb_path = ""  # the DICOMweb root under the server root
    _port: int | None
    _process: subprocess.Popen[bytes] | None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise self.error(f"{self.name} has no port yet: call start() first")
        return self._port

    @property
    def url(self) -> str:
        """The server root on loopback."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}{self.dicomweb_path}"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise self.error(f"{self.name} is not running: call start() first")
        return self._process.pid
