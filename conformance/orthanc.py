"""A throwaway local Orthanc with its DICOMweb plugin, for tests and for running the suite.

Orthanc runs as our own child process with a config file, database and log in a fresh temporary
directory, so it never touches a packaged service or a previous run's data, and ``stop()`` removes
every trace. Used from Python as a context manager::

    with LocalOrthanc() as orthanc:
        requests.get(f"{orthanc.dicomweb_url}/studies")

or from the shell: ``python -m conformance.orthanc -- pytest`` (see ``--help``).

Orthanc 1.10 has no bind-address option: it listens on all interfaces, and
``RemoteAccessAllowed: false`` makes it refuse every client that is not on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import requests

from conformance import localserver
from conformance.localserver import POLL_INTERVAL

ORTHANC_BINARY = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
# The packaged service's default port: never pick it, a system Orthanc may be there.
PACKAGED_PORT = 8042
# Orthanc's log line when its HTTP port is taken; with an automatically chosen port that is a
# race lost to another process, worth another try with a new port.
PORT_IN_USE = "already in use"


class OrthancError(RuntimeError):
    """Orthanc could not be started, or answered in a way the launcher cannot work with."""


def is_installed(binary: str = ORTHANC_BINARY, plugin: str = DICOMWEB_PLUGIN) -> bool:
    """Whether the Orthanc binary and its DICOMweb plugin are present."""
    return os.access(binary, os.X_OK) and os.path.isfile(plugin)


def orthanc_config(
    workdir: Path, port: int, plugin: str, users: Mapping[str, str]
) -> dict[str, Any]:
    """Orthanc's configuration: minimal, quiet, local-only, everything inside ``workdir``."""
    storage = str(workdir / "db")
    return {
        # A name unique to this instance lets start() check that the server answering on the
        # port is ours and not another Orthanc that got there first.
        "Name": workdir.name,
        "StorageDirectory": storage,
        "IndexDirectory": storage,
        "Plugins": [plugin],
        "HttpServerEnabled": True,
        "HttpPort": port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": bool(users),
        "RegisteredUsers": dict(users),
        "HttpDescribeErrors": True,
        "HttpCompressionEnabled": False,
        "OrthancExplorerEnabled": False,
        "WebDavEnabled": False,
        "DicomServerEnabled": False,
        "StableAge": 1,
        "SaveJobs": False,
        "DicomWeb": {
            "Enable": True,
            "Root": "/dicom-web/",
            "EnableWado": True,
            "WadoRoot": "/wado",
            "Ssl": False,
            "StudiesMetadata": "Full",
            "SeriesMetadata": "Full",
        },
    }


class LocalOrthanc(localserver.LocalServer):
    """A local Orthanc with the DICOMweb plugin, in its own temporary directory."""

    name = "Orthanc"
    error = OrthancError
    dicomweb_path = "/dicom-web"
    log_name = "orthanc.log"
    workdir_prefix = "conformance-orthanc-"
    port_in_use = PORT_IN_USE
    reserved_ports = frozenset({PACKAGED_PORT})

    def __init__(
        self,
        port: int | None = None,
        users: Mapping[str, str] | None = None,
        binary: str = ORTHANC_BINARY,
        plugin: str = DICOMWEB_PLUGIN,
        *,
        timeout: float = 20.0,
    ) -> None:
        super().__init__(port, timeout)
        self.users = dict(users or {})
        self.binary = binary
        self.plugin = plugin

    is_installed = staticmethod(is_installed)

    @property
    def auth(self) -> tuple[str, str] | None:
        """Credentials for the launcher's own requests: the first registered user, if any."""
        return next(iter(self.users.items()), None)

    # --- life cycle ------------------------------------------------------------------------

    def _check_installed(self) -> None:
        for path, what in ((self.binary, "binary"), (self.plugin, "DICOMweb plugin")):
            if not os.path.exists(path):
                raise OrthancError(
                    f"Orthanc is not installed: run scripts/bootstrap (no {what} at {path})"
                )

    def _launch(self, port: int) -> None:
        workdir = self._new_workdir(port)
        config_path = workdir / "orthanc.json"
        config = orthanc_config(workdir, port, self.plugin, self.users)
        config_path.write_text(json.dumps(config, indent=2))
        self._spawn([self.binary, "--no-jobs", str(config_path)])
        ready = {200, 401} if self.users else {200}
        self._poll_until_ready(lambda: self._answers_studies(ready), POLL_INTERVAL)
        # Something answered, but on a port chosen in advance it may be another server.
        system = self._native("GET", "/system")
        try:
            answered_name = system.json().get("Name")
        except ValueError:
            answered_name = None
        if system.status_code != 200 or answered_name != config["Name"]:
            raise OrthancError(
                f"port {self._port} is answered by another server, not the Orthanc just "
                f"started (GET /system: HTTP {system.status_code}).\n{self.log_tail()}"
            )

    # --- helpers ---------------------------------------------------------------------------

    def _native(self, method: str, path: str) -> requests.Response:
        """A request to Orthanc's native REST API, with credentials when auth is on."""
        return requests.request(method, f"{self.url}{path}", auth=self.auth, timeout=30)

    def purge(self) -> None:
        """Delete every patient (and so everything stored): a cheap reset between tests."""
        patients = self._native("GET", "/patients")
        patients.raise_for_status()
        for patient_id in patients.json():
            self._native("DELETE", f"/patients/{patient_id}").raise_for_status()


# --- command line ----------------------------------------------------------------------------

DESCRIPTION = """\
Start a throwaway local Orthanc with its DICOMweb plugin (empty database in a temporary
directory, loopback clients only), then either run COMMAND against it or serve until Ctrl-C.

COMMAND runs with PYTEST_BASE_URL set to the DICOMweb root (http://127.0.0.1:PORT/dicom-web)
and DICOMWEB_ORTHANC_URL set to the server root (Orthanc's native REST API). Orthanc is stopped
and its directory deleted when COMMAND ends, fails or is interrupted; the exit status is
COMMAND's.
"""

EPILOG = """\
examples:
  python -m conformance.orthanc -- pytest -q
  python -m conformance.orthanc --user alice:s3cret -- pytest -q -k auth
  python -m conformance.orthanc --port 18042      # serve until Ctrl-C
"""


def parse_user(value: str) -> tuple[str, str]:
    name, sep, password = value.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME:PASSWORD, got {value!r}")
    return name, password


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m conformance.orthanc",
        usage="%(prog)s [--port N] [--user NAME:PASSWORD] [--timeout S] [-- COMMAND [ARGS...]]",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--port", type=int, metavar="N", help="HTTP port (default: a free one, never 8042)"
    )
    parser.add_argument(
        "--user",
        type=parse_user,
        action="append",
        default=[],
        metavar="NAME:PASSWORD",
        help="turn on HTTP Basic auth with this user (repeatable)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=20.0,
        metavar="S",
        help="seconds to wait for Orthanc to start",
    )
    # Everything after "--" is the command, options included (argparse drops the "--").
    parser.add_argument(
        "command",
        nargs="*",
        metavar="COMMAND",
        help="command to run, after --; without one, serve until Ctrl-C",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    orthanc = LocalOrthanc(port=args.port, users=dict(args.user), timeout=args.timeout)
    return localserver.run_or_serve(
        orthanc,
        args.command,
        lambda: dict(
            os.environ, PYTEST_BASE_URL=orthanc.dicomweb_url, DICOMWEB_ORTHANC_URL=orthanc.url
        ),
        lambda: [
            f"Orthanc DICOMweb root: {orthanc.dicomweb_url}",
            f"Orthanc REST API:      {orthanc.url}  (pid {orthanc.pid}); Ctrl-C to stop",
        ],
    )


if __name__ == "__main__":
    sys.exit(main())
