"""A throwaway local tiny-pacs with its DICOMweb front end, a second real server for tests and runs.

tiny-pacs (PyPI ``tiny-pacs`` + ``tiny-pacs-dicomweb``, pure Python) runs as our own child process
with a JSON config and its log in a fresh temporary directory; ``stop()`` removes every trace.
Everything it stores is in memory, so ``reset()`` (a restart on the same port) empties it. Used
from Python as a context manager::

    with LocalTinyPacs() as pacs:
        requests.get(f"{pacs.dicomweb_url}/studies")

or from the shell: ``python -m conformance.local.tinypacs -- pytest`` (see ``--help``).

Its HTTP server binds 127.0.0.1 only. Its DIMSE listener cannot be switched off and always binds
all interfaces: it gets port 0, so the kernel gives it a port nobody uses (nothing here talks
DIMSE to it). scripts/bootstrap installs it into ``.venv-tinypacs`` next to this checkout; the
environment variable ``TINYPACS_BIN`` names another ``tiny-pacs`` executable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from conformance.local import localserver

BINARY_ENV = "TINYPACS_BIN"
DEFAULT_BINARY = Path(__file__).resolve().parents[2] / ".venv-tinypacs" / "bin" / "tiny-pacs"
DICOMWEB_PREFIX = "/dicomweb"
# tiny-pacs answers an empty search with 204, a non-empty one with 200.
READY_STATUSES = frozenset({200, 204})
# Its log lines (HttpServer component) once the HTTP port is bound, or could not be. On a port
# conflict it does not exit: the DIMSE side keeps running and only the HTTP server is off.
LISTENING = "Shared HTTP server listening on http://127.0.0.1:{port} "
PORT_IN_USE = "Cannot bind the shared HTTP server"
# It is ready about 0.2 s after launch: poll often enough not to add much to that.
READY_POLL = 0.05
# Set in its environment, tiny-pacs would bind no HTTP port at all.
HEADLESS_ENV = "TINY_PACS_HEADLESS"


class TinyPacsError(RuntimeError):
    """tiny-pacs could not be started, or answered in a way the launcher cannot work with."""


def default_binary() -> str:
    """``$TINYPACS_BIN`` if set, else ``.venv-tinypacs/bin/tiny-pacs`` in this checkout."""
    return os.environ.get(BINARY_ENV) or str(DEFAULT_BINARY)


def is_installed(binary: str | None = None) -> bool:
    """Whether the ``tiny-pacs`` executable (default: ``default_binary()``) is present."""
    path = binary or default_binary()
    return os.path.isfile(path) and os.access(path, os.X_OK)


def check_token(token: str) -> str:
    """The token, if tiny-pacs can take it as a bearer token: printable ASCII, no white space."""
    # Printable ASCII without white space: "!" (0x21) to "~" (0x7e).
    if not token or not all("!" <= char <= "~" for char in token):
        raise ValueError("a bearer token must be non-empty printable ASCII without white space")
    return token


def tinypacs_config(port: int, token: str | None) -> dict[str, Any]:
    """tiny-pacs's configuration: in-memory, HTTP on loopback, DICOMweb at /dicomweb, quiet log.

    Components not named here keep tiny-pacs's defaults: Database (in-memory SQLite), Devices,
    PACS and InMemoryStorage. tiny-pacs reads JSON as well as YAML (by the file's extension).
    """
    return {
        # Port 0: the kernel picks a free port for the DIMSE listener, which binds all interfaces.
        "ae": {"ae_title": ["TINY_PACS"], "port": 0, "dump_ds": False},
        "log": {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
            "handlers": {
                "console": {
                    "class": "logging.StreamHandler",
                    "level": "INFO",
                    "formatter": "plain",
                    "stream": "ext://sys.stdout",
                }
            },
            "root": {"level": "INFO", "handlers": ["console"]},
        },
        "components": {
            "HttpServer": {"on": True, "host": "127.0.0.1", "port": port, "allow_remote": False},
            "DICOMWeb": {
                "on": True,
                "prefix": DICOMWEB_PREFIX,
                "auth": "token" if token else "none",
                "tokens": [token] if token else [],
            },
        },
    }


def installed_product(binary: str) -> str | None:
    """ "tiny-pacs 0.4.1 with tiny-pacs-dicomweb 0.1.0": the packages installed beside the
    executable (in its virtual environment), or None when they cannot be found there."""
    prefix = Path(binary).parent.parent
    paths = [str(p) for p in prefix.glob("lib/python*/site-packages")]
    found = {
        str(d.metadata["Name"]).lower().replace("_", "-"): d.version
        for d in metadata.distributions(path=paths)
    }
    if not paths or "tiny-pacs" not in found:
        return None
    front = found.get("tiny-pacs-dicomweb")
    return f"tiny-pacs {found['tiny-pacs']}" + (
        f" with tiny-pacs-dicomweb {front}" if front else ""
    )


class LocalTinyPacs(localserver.LocalServer):
    """A local tiny-pacs with its DICOMweb front end, in its own temporary directory."""

    name = "tiny-pacs"
    error = TinyPacsError
    dicomweb_path = DICOMWEB_PREFIX
    log_name = "tiny-pacs.log"
    workdir_prefix = "conformance-tinypacs-"
    port_in_use = PORT_IN_USE

    def __init__(
        self,
        port: int | None = None,
        token: str | None = None,
        binary: str | None = None,
        *,
        timeout: float = 20.0,
    ) -> None:
        super().__init__(port, timeout)
        self.token = None if token is None else check_token(token)
        self.binary = binary or default_binary()

    is_installed = staticmethod(is_installed)

    @property
    def headers(self) -> dict[str, str]:
        """Headers the launcher's own requests carry: the bearer token, when auth is on."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    # --- life cycle ------------------------------------------------------------------------

    def _check_installed(self) -> None:
        if not os.path.exists(self.binary):
            raise TinyPacsError(
                f"tiny-pacs is not installed: run scripts/bootstrap (no executable at "
                f"{self.binary}; ${BINARY_ENV} names another one)"
            )

    def restart(self) -> None:
        """Stop it and start a fresh one on the same port: same URLs, new PID, nothing stored."""
        port = self._port
        self.stop()
        if port is None:
            self.start()
            return
        try:
            self._launch(port)
        except BaseException:
            self.stop()
            raise

    def reset(self) -> None:
        """Empty it. tiny-pacs keeps everything in memory, so this is ``restart()``."""
        self.restart()

    def _launch(self, port: int) -> None:
        self.product = installed_product(self.binary)
        config_path = self._new_workdir(port) / "tiny-pacs.json"
        # The token is in this file: mkdtemp's directory is private (0700), the file too.
        config_path.touch(mode=0o600)
        config_path.write_text(json.dumps(tinypacs_config(port, self.token), indent=2))
        env = {key: value for key, value in os.environ.items() if key != HEADLESS_ENV}
        # Unbuffered, so the log file shows each line as it is written: readiness reads it.
        env["PYTHONUNBUFFERED"] = "1"
        self._spawn([self.binary, "run", "-c", str(config_path)], env)
        self._poll_until_ready(self._bound_and_answering, READY_POLL)

    def _bound_and_answering(self) -> str | None:
        """A probe: its log says it bound our port, then ``GET /studies`` answers."""
        log = self._read_log()
        if PORT_IN_USE in log:
            raise TinyPacsError(
                f"tiny-pacs could not bind port {self._port} ({PORT_IN_USE}).\n{self.log_tail()}"
            )
        # Only the log tells that the server answering on the port is this one.
        if LISTENING.format(port=self.port) not in log:
            return "its HTTP port is not bound yet"
        return self._answers_studies(READY_STATUSES, headers=self.headers)

    def _read_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


# --- command line ----------------------------------------------------------------------------

DESCRIPTION = """\
Start a throwaway local tiny-pacs with its DICOMweb front end (in memory, HTTP on 127.0.0.1
only), then either run COMMAND against it or serve until Ctrl-C.

COMMAND runs with PYTEST_BASE_URL set to the DICOMweb root (http://127.0.0.1:PORT/dicomweb),
DICOMWEB_SERVER_NAME to the versions installed ("tiny-pacs 0.4.1 with tiny-pacs-dicomweb 0.1.0"),
and with --token also DICOMWEB_AUTH=bearer and DICOMWEB_TOKEN. tiny-pacs is stopped and its
directory deleted when COMMAND ends, fails or is interrupted; the exit status is COMMAND's.
"""

EPILOG = f"""\
examples:
  python -m conformance.local.tinypacs -- pytest -q
  python -m conformance.local.tinypacs --token s3cret-token -- pytest -q
  python -m conformance.local.tinypacs --port 18080      # serve until Ctrl-C

The executable is ${BINARY_ENV}, or .venv-tinypacs/bin/tiny-pacs (installed by scripts/bootstrap).
A token given with --token is visible to other local users in the process list.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = localserver.launcher_parser(
        "tinypacs", "tiny-pacs", "[--token T]", DESCRIPTION, EPILOG
    )
    parser.add_argument(
        "--token",
        type=_token_argument,
        metavar="T",
        help="turn on bearer-token auth with this token",
    )
    return parser


def _token_argument(value: str) -> str:
    try:
        return check_token(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def command_environment(pacs: LocalTinyPacs) -> dict[str, str]:
    """This process's environment plus what points the suite at ``pacs``."""
    env = dict(os.environ, PYTEST_BASE_URL=pacs.dicomweb_url)
    if pacs.product:
        env["DICOMWEB_SERVER_NAME"] = pacs.product
    if pacs.token:
        env.update(DICOMWEB_AUTH="bearer", DICOMWEB_TOKEN=pacs.token)
    return env


def banner(pacs: LocalTinyPacs) -> list[str]:
    auth = "bearer token (as given)" if pacs.token else "none"
    return [
        f"tiny-pacs DICOMweb root: {pacs.dicomweb_url}  (auth: {auth})",
        f"pid {pacs.pid}; Ctrl-C to stop",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    pacs = LocalTinyPacs(port=args.port, token=args.token, timeout=args.timeout)
    return localserver.run_or_serve(
        pacs, args.command, lambda: command_environment(pacs), lambda: banner(pacs)
    )


if __name__ == "__main__":
    sys.exit(main())
