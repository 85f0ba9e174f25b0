"""A throwaway local Orthanc with its DICOMweb plugin, for tests and for running the suite.

Orthanc runs as our own child process with a config file, database and log in a fresh temporary
directory, so it never touches a packaged service or a previous run's data, and ``stop()`` removes
every trace. Used from Python as a context manager::

    with LocalOrthanc() as orthanc:
        requests.get(f"{orthanc.dicomweb_url}/studies")

or from the shell: ``python -m conformance.local.orthanc -- pytest`` (see ``--help``).

By default the machine's packaged Orthanc (1.10 on Debian 12) runs; ``LocalOrthanc(root=...)``
runs an unpacked newer one fetched by ``conformance.local.orthancbuilds`` (1.12, 1.13), through that
folder's own loader. Orthanc before 1.13 has no bind-address option: it listens on all
interfaces, and ``RemoteAccessAllowed: false`` makes it refuse every client that is not on this
machine. Orthanc 1.13 is told ``HttpBindAddresses: ["127.0.0.1"]`` and listens on loopback only.
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

from conformance.cleanup import orthanc_name
from conformance.local import localserver, orthancbuilds
from conformance.local.localserver import POLL_INTERVAL

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


def build_root(choice: str) -> Path | None:
    """The unpacked root for ``--orthanc`` CHOICE: None for the machine's own Orthanc (1.10),
    the fetched folder for 1.12 or 1.13, or CHOICE itself as a path to an unpacked root."""
    build = orthancbuilds.BUILDS.get(choice)
    if build is not None:
        return None if build.suite is None else orthancbuilds.root_of(build)
    if "/" in choice or Path(choice).is_dir():
        return Path(choice).resolve()
    known = ", ".join(orthancbuilds.BUILDS)
    raise OrthancError(f"no Orthanc {choice!r}: choose {known}, or a path to an unpacked root")


def orthanc_config(
    workdir: Path,
    port: int,
    plugin: str,
    users: Mapping[str, str],
    loopback_only: bool = False,
) -> dict[str, Any]:
    """Orthanc's configuration: minimal, quiet, local-only, everything inside ``workdir``."""
    storage = str(workdir / "db")
    # Only Orthanc 1.13+ honours it (older ones ignore it): say it only where it is true.
    binding = {"HttpBindAddresses": ["127.0.0.1"]} if loopback_only else {}
    return {
        **binding,
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
        root: Path | None = None,
        timeout: float = 20.0,
    ) -> None:
        super().__init__(port, timeout)
        self.users = dict(users or {})
        self.binary = binary
        self.plugin = plugin
        self.root = root  # an unpacked newer Orthanc (conformance.local.orthancbuilds), or None

    is_installed = staticmethod(is_installed)

    @property
    def auth(self) -> tuple[str, str] | None:
        """Credentials for the launcher's own requests: the first registered user, if any."""
        return next(iter(self.users.items()), None)

    # --- life cycle ------------------------------------------------------------------------

    def _check_installed(self) -> None:
        if self.root is not None:
            problem = orthancbuilds.problem(self.root)
            if problem is not None:
                raise OrthancError(
                    f"cannot run Orthanc from {problem}. Run scripts/bootstrap: it fetches and "
                    f"unpacks it again (python -m conformance.local.orthancbuilds list shows each)"
                )
            return
        for path, what in ((self.binary, "binary"), (self.plugin, "DICOMweb plugin")):
            if not os.path.exists(path):
                raise OrthancError(
                    f"Orthanc is not installed: run scripts/bootstrap (no {what} at {path})"
                )

    def _launch(self, port: int) -> None:
        workdir = self._new_workdir(port)
        config_path = workdir / "orthanc.json"
        if self.root is None:
            config = orthanc_config(workdir, port, self.plugin, self.users)
            argv, env = [self.binary, "--no-jobs", str(config_path)], None
        else:
            built = orthancbuilds.manifest_of(self.root)
            loopback = orthancbuilds.binds_loopback(built["orthanc"])
            plugin = str(self.root / built["plugin"])
            config = orthanc_config(workdir, port, plugin, self.users, loopback)
            argv, env = orthancbuilds.command(self.root, "--no-jobs", str(config_path))
        config_path.write_text(json.dumps(config, indent=2))
        ready = {200, 401} if self.users else {200}
        try:
            self._spawn(argv, env)
            self._poll_until_ready(lambda: self._answers_studies(ready), POLL_INTERVAL)
        except OrthancError as error:
            if self.root is None or self.port_in_use in str(error):
                raise
            raise OrthancError(
                f"{error}\nIf the unpacked Orthanc in {self.root} is damaged, remove that folder "
                f"and run scripts/bootstrap."
            ) from None
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
        self.product = orthanc_name(str(system.json().get("Version")), self._plugin_version())

    def _plugin_version(self) -> str | None:
        """The version of the DICOMweb plugin the started Orthanc loaded, as it says."""
        try:
            version = self._native("GET", "/plugins/dicom-web").json().get("Version")
        except (requests.RequestException, ValueError, AttributeError):
            return None
        return version if isinstance(version, str) else None

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

COMMAND runs with PYTEST_BASE_URL set to the DICOMweb root (http://127.0.0.1:PORT/dicom-web),
DICOMWEB_ORTHANC_URL set to the server root (Orthanc's native REST API) and DICOMWEB_SERVER_NAME
to what the started Orthanc says it is ("Orthanc 1.10.1 with the DICOMweb plugin 1.7"; a
--dicomweb-server-name given to the command wins). Orthanc is stopped
and its directory deleted when COMMAND ends, fails or is interrupted; the exit status is
COMMAND's.

Which Orthanc (--orthanc) and where it listens:
  1.10  the machine's packaged Orthanc (Debian 12); listens on every interface, refuses clients
        that are not on this machine (it has no bind-address option)
  1.12  Debian 13's, fetched by scripts/bootstrap; the same as 1.10 about its address
  1.13  Debian testing's, fetched by scripts/bootstrap; listens on 127.0.0.1 only
`python -m conformance.local.orthancbuilds list` shows the pinned versions and whether each is
ready.
"""

EPILOG = """\
examples:
  python -m conformance.local.orthanc -- pytest -q
  python -m conformance.local.orthanc --orthanc 1.13 -- pytest -q
  python -m conformance.local.orthanc --user alice:s3cret -- pytest -q -k auth
  python -m conformance.local.orthanc --port 18042      # serve until Ctrl-C
"""


def parse_user(value: str) -> tuple[str, str]:
    name, sep, password = value.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME:PASSWORD, got {value!r}")
    return name, password


def build_parser() -> argparse.ArgumentParser:
    parser = localserver.launcher_parser(
        "orthanc",
        "Orthanc",
        "[--orthanc VERSION] [--user NAME:PASSWORD]",
        DESCRIPTION,
        EPILOG,
        port_help="HTTP port (default: a free one, never 8042)",
    )
    parser.add_argument(
        "--orthanc",
        default=orthancbuilds.DEFAULT,
        metavar="VERSION|ROOT",
        help=f"which Orthanc: {', '.join(orthancbuilds.BUILDS)} (default {orthancbuilds.DEFAULT}, "
        "the machine's own), or a folder unpacked by python -m conformance.local.orthancbuilds",
    )
    parser.add_argument(
        "--user",
        type=parse_user,
        action="append",
        default=[],
        metavar="NAME:PASSWORD",
        help="turn on HTTP Basic auth with this user (repeatable)",
    )
    return parser


def command_environment(orthanc: LocalOrthanc) -> dict[str, str]:
    """This process's environment plus what points the suite at ``orthanc`` and names it."""
    env = dict(os.environ, PYTEST_BASE_URL=orthanc.dicomweb_url, DICOMWEB_ORTHANC_URL=orthanc.url)
    if orthanc.product:
        env["DICOMWEB_SERVER_NAME"] = orthanc.product
    return env


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        root = build_root(args.orthanc)
    except OrthancError as error:
        parser.error(str(error))
    orthanc = LocalOrthanc(port=args.port, users=dict(args.user), root=root, timeout=args.timeout)
    return localserver.run_or_serve(
        orthanc,
        args.command,
        lambda: command_environment(orthanc),
        lambda: [
            f"Orthanc DICOMweb root: {orthanc.dicomweb_url}",
            f"Orthanc REST API:      {orthanc.url}  (pid {orthanc.pid}); Ctrl-C to stop",
        ],
    )


if __name__ == "__main__":
    sys.exit(main())
