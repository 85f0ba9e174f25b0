"""The local tiny-pacs launcher starts, isolates, authenticates, resets and stops real tiny-pacs.

tiny-pacs starts in about 0.25 s and stops at once, so tests about auth, a second instance or the
CLI start their own; the rest share one module-wide instance.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from processes import pid_exists, port_is_free

from conformance.local import localserver, tinypacs
from conformance.local.tinypacs import (
    BINARY_ENV,
    DEFAULT_BINARY,
    LocalTinyPacs,
    TinyPacsError,
    default_binary,
    is_installed,
)
from conformance.multipart import encode_related

PROJECT = Path(__file__).resolve().parents[1]
SAMPLE = PROJECT / "fixtures" / "red-triangle.dcm"
TOKEN = "t0ken-for-tests"


@pytest.fixture(scope="module")
def installed() -> None:
    """Skip when tiny-pacs is not installed, except in CI, which installs it: fail there."""
    if is_installed():
        return
    message = f"tiny-pacs is not installed at {default_binary()}: run scripts/bootstrap"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def pacs(installed: None) -> Iterator[LocalTinyPacs]:
    with LocalTinyPacs() as server:
        yield server


def listening_addresses(port: int) -> set[str]:
    """The IPv4 and IPv6 addresses something listens on at ``port``, from /proc/net/tcp{,6}."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def non_loopback_address() -> str | None:
    """An IPv4 address of this machine that is not loopback, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent on a UDP connect
            address: str = sock.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def store_sample(server: LocalTinyPacs) -> requests.Response:
    body, content_type = encode_related([SAMPLE.read_bytes()])
    headers = {"Content-Type": content_type, "Accept": "application/dicom+json", **server.headers}
    return requests.post(f"{server.dicomweb_url}/studies", data=body, headers=headers, timeout=30)


# --- without a server --------------------------------------------------------------------------


def test_executable_defaults_to_the_checkouts_venv_or_the_env_var(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(BINARY_ENV, raising=False)
    assert default_binary() == str(PROJECT / ".venv-tinypacs" / "bin" / "tiny-pacs")
    assert str(DEFAULT_BINARY) == default_binary()

    fake = tmp_path / "tiny-pacs"
    monkeypatch.setenv(BINARY_ENV, str(fake))
    assert LocalTinyPacs().binary == str(fake)
    assert not is_installed()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert is_installed()


@pytest.mark.parametrize("token", ["", "two words", "tab\there", "caf\u00e9", "new\nline"])
def test_unusable_token_is_refused(token: str) -> None:
    with pytest.raises(ValueError, match="printable ASCII"):
        LocalTinyPacs(token=token)


def test_config_turns_on_http_on_loopback_dicomweb_and_token_auth() -> None:
    config = tinypacs.tinypacs_config(18080, "abc")

    assert config["ae"]["port"] == 0  # DIMSE: any free port, it binds all interfaces
    assert config["components"]["HttpServer"] == {
        "on": True,
        "host": "127.0.0.1",
        "port": 18080,
        "allow_remote": False,
    }
    assert config["components"]["DICOMWeb"]["prefix"] == "/dicomweb"
    assert config["components"]["DICOMWeb"]["auth"] == "token"
    assert config["components"]["DICOMWeb"]["tokens"] == ["abc"]
    assert tinypacs.tinypacs_config(18080, None)["components"]["DICOMWeb"]["auth"] == "none"


def test_missing_executable_says_how_to_install() -> None:
    with pytest.raises(TinyPacsError, match=r"not installed: run scripts/bootstrap"):
        LocalTinyPacs(binary="/nonexistent/tiny-pacs").start()


@pytest.mark.server  # starts a server itself
def test_process_that_exits_early_is_reported_with_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "tiny-pacs"
    fake.write_text("#!/bin/sh\necho 'pydantic: something went wrong' >&2\nexit 1\n")
    fake.chmod(0o755)
    server = LocalTinyPacs(binary=str(fake))

    with pytest.raises(TinyPacsError, match=r"exited with status 1") as raised:
        server.start()

    assert "something went wrong" in str(raised.value)
    assert not server.running


# --- with real tiny-pacs -----------------------------------------------------------------------


def test_starts_and_answers_dicomweb(pacs: LocalTinyPacs) -> None:
    assert pacs.url == f"http://127.0.0.1:{pacs.port}"
    assert pacs.dicomweb_url == f"{pacs.url}/dicomweb"
    assert pacs.token is None
    assert pid_exists(pacs.pid)

    response = requests.get(f"{pacs.dicomweb_url}/studies", timeout=10)

    assert response.status_code == 204  # tiny-pacs's answer to a search that matches nothing
    assert response.content == b""


def test_the_launcher_names_the_versions_it_started(pacs: LocalTinyPacs) -> None:
    """The packages installed beside the executable: reports name them (the command's
    DICOMWEB_SERVER_NAME)."""
    name = pacs.product
    assert name is not None and re.fullmatch(
        r"tiny-pacs \d+\.\d+\.\d+ with tiny-pacs-dicomweb \d+\.\d+\.\d+", name
    ), name
    assert tinypacs.command_environment(pacs)["DICOMWEB_SERVER_NAME"] == name


def test_an_executable_without_its_packages_beside_it_is_not_named(tmp_path: Path) -> None:
    assert tinypacs.installed_product(str(tmp_path / "bin" / "tiny-pacs")) is None


def test_http_listens_on_loopback_only(pacs: LocalTinyPacs) -> None:
    if not Path("/proc/net/tcp").exists():
        pytest.skip("no /proc/net/tcp to read listening sockets from")

    assert listening_addresses(pacs.port) == {"0100007F"}  # 127.0.0.1, little-endian hex
    address = non_loopback_address()
    if address is not None:
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://{address}:{pacs.port}/dicomweb/studies", timeout=5)


def test_reset_empties_it_and_keeps_its_urls(pacs: LocalTinyPacs) -> None:
    stored = store_sample(pacs)
    assert stored.status_code == 200, stored.text
    assert requests.get(f"{pacs.dicomweb_url}/studies", timeout=10).status_code == 200
    old_pid, url = pacs.pid, pacs.dicomweb_url

    pacs.reset()

    assert pacs.dicomweb_url == url
    assert pacs.pid != old_pid
    assert not pid_exists(old_pid)
    assert requests.get(f"{pacs.dicomweb_url}/studies", timeout=10).status_code == 204


def test_second_instance_has_its_own_port_and_stop_ends_only_it(pacs: LocalTinyPacs) -> None:
    second = LocalTinyPacs()
    second.start()
    try:
        pid, port, workdir = second.pid, second.port, second.log_path.parent
        assert port != pacs.port
        assert pid != pacs.pid
        assert requests.get(f"{second.dicomweb_url}/studies", timeout=10).status_code == 204
        assert os.getpgid(pid) == pid  # its own process group, away from our Ctrl-C
    finally:
        second.stop()

    assert not pid_exists(pid)
    assert port_is_free(port, "127.0.0.1")
    assert not workdir.exists()
    second.stop()  # a second stop is harmless
    assert pid_exists(pacs.pid)
    assert requests.get(f"{pacs.dicomweb_url}/studies", timeout=10).status_code == 204


@pytest.mark.server  # starts a server itself
def test_a_lost_port_race_is_retried_on_another_port(
    installed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        offered = iter([busy])
        real_free_port = localserver.free_port
        monkeypatch.setattr(
            localserver, "free_port", lambda avoid=(): next(offered, 0) or real_free_port(avoid)
        )

        with pytest.raises(TinyPacsError, match="could not bind port"):
            LocalTinyPacs(port=busy).start()  # a port asked for is not changed
        with LocalTinyPacs() as server:
            assert server.port != busy
            assert requests.get(f"{server.dicomweb_url}/studies", timeout=10).status_code == 204


@pytest.mark.server  # starts a server itself
def test_bearer_token_mode(installed: None) -> None:
    with LocalTinyPacs(token=TOKEN) as server:
        studies = f"{server.dicomweb_url}/studies"
        anonymous = requests.get(studies, timeout=10)
        wrong = requests.get(studies, headers={"Authorization": "Bearer nope"}, timeout=10)
        basic = requests.get(studies, auth=("user", TOKEN), timeout=10)
        right = requests.get(studies, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        assert server.token == TOKEN
        server.reset()  # the launcher's own readiness requests carry the token
        after_reset = requests.get(studies, headers=server.headers, timeout=10)

    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert wrong.status_code == 401
    assert basic.status_code == 401
    assert right.status_code == 204
    assert after_reset.status_code == 204


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DICOMWEB_")}
    return subprocess.run(
        [sys.executable, "-m", "conformance.local.tinypacs", *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.server  # starts a server itself
def test_cli_runs_command_with_url_and_token_and_returns_its_status(installed: None) -> None:
    check = (
        "import os, sys, requests\n"
        "base = os.environ['PYTEST_BASE_URL']\n"
        "assert base.startswith('http://127.0.0.1:') and base.endswith('/dicomweb'), base\n"
        "assert os.environ['DICOMWEB_AUTH'] == 'bearer'\n"
        f"assert os.environ['DICOMWEB_TOKEN'] == {TOKEN!r}\n"
        "auth = {'Authorization': 'Bearer ' + os.environ['DICOMWEB_TOKEN']}\n"
        "assert requests.get(base + '/studies', timeout=10).status_code == 401\n"
        "assert requests.get(base + '/studies', headers=auth, timeout=10).status_code == 204\n"
        "sys.exit(3)\n"
    )

    result = cli("--token", TOKEN, "--", sys.executable, "-c", check)

    assert result.returncode == 3, result.stderr
    started = re.search(r"\(pid (\d+)\)", result.stderr)
    assert started, result.stderr
    assert not pid_exists(int(started.group(1)))
    assert TOKEN not in result.stderr + result.stdout


@pytest.mark.server  # starts a server itself
def test_cli_without_token_sets_no_auth(installed: None) -> None:
    check = (
        "import os, requests\n"
        "assert 'DICOMWEB_AUTH' not in os.environ and 'DICOMWEB_TOKEN' not in os.environ\n"
        "r = requests.get(os.environ['PYTEST_BASE_URL'] + '/studies', timeout=10)\n"
        "assert r.status_code == 204, r.status_code\n"
    )

    result = cli("--", sys.executable, "-c", check)

    assert result.returncode == 0, result.stderr


def test_cli_rejects_an_unusable_token() -> None:
    result = cli("--token", "two words", "--", "true")

    assert result.returncode == 2
    assert "printable ASCII" in result.stderr
