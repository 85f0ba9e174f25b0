"""The local Orthanc launcher starts, isolates, authenticates and stops real Orthanc processes.

Every stop costs Orthanc about 1-3 s, so one module-wide instance serves the tests that need any
Orthanc, and only the tests about a second instance, auth or the CLI start their own.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from paths import newer_orthanc_root
from processes import pid_exists, port_is_free

from conformance.local import orthancbuilds
from conformance.local.orthanc import PACKAGED_PORT, LocalOrthanc, OrthancError, is_installed

pytestmark = pytest.mark.skipif(
    not is_installed(),
    reason="Orthanc and its DICOMweb plugin are not installed: run scripts/bootstrap",
)

PROJECT = Path(__file__).resolve().parents[1]
SAMPLE = PROJECT / "fixtures" / "red-triangle.dcm"


# Its own instance rather than conftest's session-wide one: this module tests the launcher, and
# must not depend on the fixture built from it.
@pytest.fixture(scope="module")
def orthanc_here() -> Iterator[LocalOrthanc]:
    with LocalOrthanc() as server:
        yield server


def test_starts_and_answers_dicomweb(orthanc_here: LocalOrthanc) -> None:
    assert orthanc_here.url == f"http://127.0.0.1:{orthanc_here.port}"
    assert orthanc_here.dicomweb_url == f"{orthanc_here.url}/dicom-web"
    assert orthanc_here.port != PACKAGED_PORT
    assert pid_exists(orthanc_here.pid)

    response = requests.get(f"{orthanc_here.dicomweb_url}/studies", timeout=10)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/dicom+json")
    assert response.json() == []


def test_purge_deletes_everything_stored(orthanc_here: LocalOrthanc) -> None:
    stored = requests.post(f"{orthanc_here.url}/instances", data=SAMPLE.read_bytes(), timeout=30)
    stored.raise_for_status()
    assert requests.get(f"{orthanc_here.url}/patients", timeout=10).json() != []

    orthanc_here.purge()

    assert requests.get(f"{orthanc_here.url}/patients", timeout=10).json() == []
    assert requests.get(f"{orthanc_here.dicomweb_url}/studies", timeout=10).json() == []


def test_second_instance_has_its_own_port_and_stop_ends_only_it(orthanc_here: LocalOrthanc) -> None:
    second = LocalOrthanc()
    second.start()
    try:
        pid, port, workdir = second.pid, second.port, second.log_path.parent
        assert port != orthanc_here.port
        assert pid != orthanc_here.pid
        assert requests.get(f"{second.dicomweb_url}/studies", timeout=10).status_code == 200
    finally:
        second.stop()

    assert not pid_exists(pid)
    assert port_is_free(port)
    assert not workdir.exists()
    second.stop()  # a second stop is harmless
    assert pid_exists(orthanc_here.pid)
    assert requests.get(f"{orthanc_here.dicomweb_url}/studies", timeout=10).status_code == 200


@pytest.mark.server  # starts a server itself
def test_basic_auth_mode() -> None:
    with LocalOrthanc(users={"alice": "s3cret"}) as server:
        studies = f"{server.dicomweb_url}/studies"
        anonymous = requests.get(studies, timeout=10)
        wrong = requests.get(studies, auth=("alice", "wrong"), timeout=10)
        right = requests.get(studies, auth=("alice", "s3cret"), timeout=10)
        server.purge()  # the launcher's own requests carry the credentials

    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert wrong.status_code == 401
    assert right.status_code == 200


@pytest.mark.server  # starts a server itself
def test_cli_runs_command_with_urls_and_returns_its_status() -> None:
    check = (
        "import os, sys, requests\n"
        "base = os.environ['PYTEST_BASE_URL']\n"
        "root = os.environ['DICOMWEB_ORTHANC_URL']\n"
        "assert base == root + '/dicom-web', (base, root)\n"
        "assert os.environ['DICOMWEB_SERVER_NAME'].startswith('Orthanc 1.'), os.environ\n"
        "assert requests.get(base + '/studies', timeout=10).status_code == 200\n"
        "sys.exit(3)\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "conformance.local.orthanc", "--", sys.executable, "-c", check],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 3, result.stderr
    started = re.search(r"\(pid (\d+)\)", result.stderr)
    assert started, result.stderr
    assert not pid_exists(int(started.group(1)))


def pinned_name(version: str) -> str:
    """ "Orthanc 1.10.1 with the DICOMweb plugin 1.7": the versions orthancbuilds pins."""
    build = orthancbuilds.BUILDS[version]
    orthanc, dicomweb = (v.split("+")[0] for v in (build.orthanc, build.dicomweb))
    return f"Orthanc {orthanc} with the DICOMweb plugin {dicomweb}"


def test_the_launcher_knows_what_it_started(orthanc_here: LocalOrthanc) -> None:
    assert orthanc_here.product == pinned_name("1.10")


@pytest.mark.server  # starts a server itself
def test_a_run_through_the_launcher_names_the_orthanc_it_started(tmp_path: Path) -> None:
    """Command 1's launcher passes the exact product and version (DICOMWEB_SERVER_NAME): the
    title and the Server row of every report, and the terminal's server line, name it."""
    results = tmp_path / "results.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DICOMWEB_")}
    result = subprocess.run(
        [sys.executable, "-m", "conformance.local.orthanc", "--", sys.executable, "-m", "pytest",
         "--pyargs", "conformance.checks", "-k", "store_one_instance", "-p", "no:cacheprovider",
         "--dicomweb-profile=orthanc", f"--dicomweb-results={results}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    name = pinned_name("1.10")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(results.read_text())["server_name"] == name
    assert f"server: {name}; no Server header" in result.stdout
    assert f"{name} ready at http://127.0.0.1:" in result.stderr
    assert (
        f"<title>DICOMweb conformance: {name}</title>"
        in (tmp_path / "conformance.html").read_text()
    )


def test_cli_rejects_a_malformed_user() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "conformance.local.orthanc", "--user", "nopassword", "--", "true"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 2
    assert "NAME:PASSWORD" in result.stderr


def test_missing_binary_says_how_to_install() -> None:
    with pytest.raises(OrthancError, match=r"not installed: run scripts/bootstrap"):
        LocalOrthanc(binary="/nonexistent/Orthanc").start()


@pytest.mark.server  # starts a server itself
def test_process_that_exits_early_is_reported_with_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "Orthanc"
    fake.write_text("#!/bin/sh\necho 'E1124 something went wrong' >&2\nexit 1\n")
    fake.chmod(0o755)
    server = LocalOrthanc(binary=str(fake))

    with pytest.raises(OrthancError, match=r"exited with status 1") as raised:
        server.start()

    assert "something went wrong" in str(raised.value)
    assert not server.running


# --- the newer Orthancs (conformance/local/orthancbuilds.py) --------------------------------------


def can_connect(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return False
    return True


@pytest.mark.server  # starts a server itself
@pytest.mark.parametrize("version", ["1.12", "1.13"])
def test_a_newer_orthanc_runs_from_its_unpacked_folder(version: str) -> None:
    with LocalOrthanc(root=newer_orthanc_root(version)) as server:
        system = requests.get(f"{server.url}/system", timeout=10).json()
        studies = requests.get(f"{server.dicomweb_url}/studies", timeout=10)
        # 1.13 is told to listen on 127.0.0.1 only; 1.12, like 1.10, cannot be: it listens on
        # every address (and refuses clients that are not on this machine).
        elsewhere = can_connect("127.0.0.2", server.port)
        pid = server.pid

    assert system["Version"] == orthancbuilds.BUILDS[version].orthanc.split("+")[0]
    assert server.product == pinned_name(version)
    assert studies.status_code == 200
    assert elsewhere == (version == "1.12")
    assert not pid_exists(pid)


@pytest.mark.server  # starts a server itself
def test_a_port_asked_for_and_taken_is_one_clear_message() -> None:
    root = newer_orthanc_root("1.13")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        with pytest.raises(OrthancError, match=f"could not bind port {busy}: another program"):
            LocalOrthanc(port=busy, root=root).start()


def fake_root(tmp_path: Path) -> Path:
    """An unpacked folder with a manifest, as a fetch leaves it (no real Orthanc in it)."""
    root = tmp_path / "orthanc-9.9"
    (root / "usr/sbin").mkdir(parents=True)
    (root / "usr/sbin/Orthanc").write_bytes(b"\x7fELF" + bytes(100))
    manifest = {"orthanc": "9.9.0-1", "plugin": "usr/lib/p.so", "files": {"usr/sbin/Orthanc": 104}}
    (root / ".manifest.json").write_text(json.dumps(manifest))
    return root


def test_a_damaged_unpacked_orthanc_is_refused_saying_what_to_do(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    (root / "usr/sbin/Orthanc").write_bytes(b"truncated")

    with pytest.raises(OrthancError) as raised:
        LocalOrthanc(root=root).start()

    said = str(raised.value)
    assert "is damaged: 1 file(s) missing or changed, e.g. usr/sbin/Orthanc" in said
    assert "Run scripts/bootstrap" in said


def test_an_unfinished_unpacked_orthanc_is_refused(tmp_path: Path) -> None:
    root = fake_root(tmp_path)
    (root / ".manifest.json").unlink()

    with pytest.raises(OrthancError, match=r"incomplete \(no readable .manifest.json"):
        LocalOrthanc(root=root).start()


@pytest.mark.server  # starts a server itself
def test_an_unpacked_orthanc_that_will_not_start_names_its_folder(tmp_path: Path) -> None:
    root = fake_root(tmp_path)  # whole by its manifest, but with no loader to start it

    with pytest.raises(OrthancError, match="could not be started") as raised:
        LocalOrthanc(root=root, timeout=5).start()

    assert "scripts/bootstrap" in str(raised.value)


@pytest.mark.parametrize(
    ("choice", "said"),
    [("1.9", "no Orthanc '1.9': choose 1.10, 1.12, 1.13"), ("/nonexistent", "does not exist")],
)
def test_cli_says_which_orthancs_there_are(choice: str, said: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "conformance.local.orthanc", "--orthanc", choice, "--", "true"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode in (1, 2)
    assert said in result.stderr
