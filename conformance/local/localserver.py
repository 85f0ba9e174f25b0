"""What the local server launchers (``orthanc.py``, ``tinypacs.py``) share.

Each launcher runs a real DICOMweb server as our own child process, on a free loopback port, with
its files in a temporary directory. Picking that port, stopping exactly that process, reading the
end of its log, their command line and running a command against it are the same for every
server, so they live here.

With ``CONFORMANCE_NO_LOCAL_SERVERS`` set (to a reason), no launcher starts a server: it fails
saying that reason. Our fast tests set it, so a test that starts a server unannounced fails.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Self

import requests

REFUSE_ENV = "CONFORMANCE_NO_LOCAL_SERVERS"
POLL_INTERVAL = 0.1
STOP_GRACE = 10.0
LOG_TAIL_LINES = 25
# With an automatically chosen port, a port taken between picking and binding is a race lost to
# another process, worth another try with a new port.
PORT_ATTEMPTS = 3


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


def _die_with_parent() -> None:
    """In the server's process, before it starts (Linux): the kernel sends it SIGTERM when the
    process that started it dies, however it dies. atexit and ``finally`` do not run on SIGTERM
    or SIGKILL, and a test run stopped by `timeout` once left seven Orthancs behind."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


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


def launcher_parser(
    module: str,
    name: str,
    options: str,
    description: str,
    epilog: str,
    port_help: str = "HTTP port (default: a free one)",
) -> argparse.ArgumentParser:
    """The command line every launcher shares (``python -m conformance.local.MODULE``): --port,
    --timeout and the COMMAND after "--"; the launcher adds its own ``options`` (as its usage
    line shows them) to the parser returned."""
    parser = argparse.ArgumentParser(
        prog=f"python -m conformance.local.{module}",
        usage=f"%(prog)s [--port N] {options} [--timeout S] [-- COMMAND [ARGS...]]",
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, metavar="N", help=port_help)
    parser.add_argument(
        "--timeout",
        type=float,
        default=20.0,
        metavar="S",
        help=f"seconds to wait for {name} to start",
    )
    # Everything after "--" is the command, options included (argparse drops the "--").
    parser.add_argument(
        "command",
        nargs="*",
        metavar="COMMAND",
        help="command to run, after --; without one, serve until Ctrl-C",
    )
    return parser


def run_or_serve(
    server: LocalServer,
    command: Sequence[str],
    environment: Callable[[], Mapping[str, str]],
    banner: Callable[[], list[str]],
) -> int:
    """The launchers' command line: start ``server``, then run ``command`` in ``environment()``
    (pointing at the server) or, without one, print ``banner()`` and serve until Ctrl-C. The
    server is stopped in every case, also on SIGTERM; the exit status is the command's."""
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    try:
        server.start()
        if command:
            print(
                f"{server.product or server.name} ready at {server.dicomweb_url} "
                f"(pid {server.pid})",
                file=sys.stderr,
            )
            return run_command(command, environment())
        print("\n".join(banner()), flush=True)
        try:
            status = server.wait()
        except KeyboardInterrupt:
            return 0
        print(f"{server.name} exited by itself with status {status}.", file=sys.stderr)
        print(server.log_tail(), file=sys.stderr)
        return 1
    except server.error as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        server.stop()


class LocalServer:
    """What the throwaway local servers share: starting one on a free loopback port (another
    port when a race for it is lost), waiting until it answers, a context manager around start()
    and stop(), its URLs, process and log, and stopping exactly that process."""

    name = "the server"
    error: type[Exception] = RuntimeError
    dicomweb_path = ""  # the DICOMweb root under the server root
    log_name = "server.log"
    workdir_prefix = "conformance-server-"
    port_in_use = "address already in use"  # what its error says when the port is taken
    reserved_ports: frozenset[int] = frozenset()  # never picked (a packaged service's port)

    def __init__(self, port: int | None, timeout: float) -> None:
        self.requested_port = port
        self.timeout = timeout
        # The product and version started ("Orthanc 1.10.1 with the DICOMweb plugin 1.7"), as
        # reports should name it; None until started, or when it cannot be told.
        self.product: str | None = None
        self._port: int | None = port
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: Path | None = None

    # --- what each server does its own way ---------------------------------------------------

    def _check_installed(self) -> None:
        """Raise ``error`` saying what to install when the server is missing."""
        raise NotImplementedError

    def _launch(self, port: int) -> None:
        """Start the process on ``port`` (``_spawn``) and wait until it is ready."""
        raise NotImplementedError

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Launch the server and return once it answers DICOMweb requests."""
        if self._process is not None:
            return
        self._check_installed()
        attempts = PORT_ATTEMPTS if self.requested_port is None else 1
        for attempt in range(1, attempts + 1):
            try:
                self._launch(self.requested_port or free_port(self.reserved_ports))
                return
            except self.error as error:
                self.stop()
                taken = self.port_in_use in str(error)
                if taken and self.requested_port is not None:
                    raise self.error(
                        f"{self.name} could not bind port {self.requested_port}: another program "
                        f"listens there. Choose another --port, or leave it out to get a free one."
                    ) from None
                if attempt == attempts or not taken:
                    raise
            except BaseException:
                # Also on Ctrl-C: __exit__ does not run when __enter__ fails.
                self.stop()
                raise

    def stop(self) -> None:
        """Stop the process this object started and delete its directory; safe to repeat."""
        process, self._process = self._process, None
        if process is not None:
            atexit.unregister(self.stop)
            stop_process(process, STOP_GRACE)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def wait(self) -> int:
        """Block until the server exits by itself; its exit status."""
        if self._process is None:
            raise self.error(f"{self.name} is not running: call start() first")
        return self._process.wait()

    def _new_workdir(self, port: int) -> Path:
        self._port = port
        self._workdir = Path(tempfile.mkdtemp(prefix=self.workdir_prefix))
        return self._workdir

    def _spawn(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        """Run ``command`` in the working directory, its output into the log."""
        refused = os.environ.get(REFUSE_ENV)
        if refused:
            raise self.error(f"{self.name} was not started ({REFUSE_ENV}): {refused}")
        with self.log_path.open("wb") as log:
            try:
                self._process = subprocess.Popen(
                    list(command),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self._workdir,
                    env=None if env is None else dict(env),
                    # Its own session: a Ctrl-C in the terminal must not stop the server behind
                    # our back; stop() does that, after the command using it has finished. But it
                    # never outlives us: the kernel stops it when we die (Linux).
                    start_new_session=True,
                    preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                )
            except OSError as error:
                raise self.error(f"{self.name} could not be started: {error}") from None
        atexit.register(self.stop)

    def _poll_until_ready(self, probe: Callable[[], str | None], interval: float) -> None:
        """Call ``probe`` until it answers None (ready); else it says what it saw, for the error
        raised when the process exits or the timeout passes first."""
        assert self._process is not None
        deadline = time.monotonic() + self.timeout
        while True:
            status = self._process.poll()
            if status is not None:
                raise self.error(
                    f"{self.name} exited with status {status} before it was ready "
                    f"on port {self._port}.\n{self.log_tail()}"
                )
            last = probe()
            if last is None:
                return
            if time.monotonic() > deadline:
                raise self.error(
                    f"{self.name} did not answer GET {self.dicomweb_url}/studies within "
                    f"{self.timeout:g} s (last: {last}).\n{self.log_tail()}"
                )
            time.sleep(interval)

    def _answers_studies(self, ready: Collection[int], **kwargs: Any) -> str | None:
        """A probe: None when ``GET {dicomweb}/studies`` answers one of ``ready``."""
        try:
            response = requests.get(f"{self.dicomweb_url}/studies", timeout=1, **kwargs)
        except requests.RequestException as error:
            return type(error).__name__
        return None if response.status_code in ready else f"HTTP {response.status_code}"

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

    # --- where it is ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

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

    @property
    def log_path(self) -> Path:
        if self._workdir is None:
            raise self.error(f"{self.name} has no working directory: call start() first")
        return self._workdir / self.log_name

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        tail = None if self._workdir is None else read_log_tail(self.log_path, lines)
        if tail is None:
            return f"(no {self.name} log)"
        return f"Last lines of {self.name}'s log:\n{tail}"
