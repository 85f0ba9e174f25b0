"""The plugin as a user meets it: --help, bad options, and servers that cannot be tested.

Each broken set-up must stop the run before any check with one clear message and exit status 4
(pytest's usage error), never run the checks into two hundred failures.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import requests
from suiterun import RunSuite

from conformance.orthanc import LocalOrthanc
from conformance.settings import OPTIONS

USAGE_ERROR = pytest.ExitCode.USAGE_ERROR


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_help_documents_every_option_in_one_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    text = result.stdout.str()
    group = text.index("DICOMweb conformance")
    for option in OPTIONS:
        assert option.env in text
        if not option.secret:
            assert text.index(option.cli) > group, option.cli
    assert "--base-url" in text


def test_checks_without_a_server_stop_with_one_message(run_suite: RunSuite) -> None:
    run = run_suite("")
    assert run.ret == USAGE_ERROR
    assert "the checks need a server: pass --base-url" in run.stdout
    assert run.outcomes == {}


def test_unreachable_server_stops_before_any_check(run_suite: RunSuite) -> None:
    run = run_suite(f"http://127.0.0.1:{closed_port()}/dicom-web")
    assert run.ret == USAGE_ERROR
    assert run.stdout.count("cannot reach http://127.0.0.1") == 1
    assert run.outcomes == {}


def test_wrong_path_says_there_is_no_dicomweb_service(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    run = run_suite(f"{orthanc.url}/not-dicom-web")
    assert run.ret == USAGE_ERROR
    assert f"no DICOMweb service at {orthanc.url}/not-dicom-web" in run.stdout
    assert run.outcomes == {}


def test_missing_credentials_are_refused_before_any_check(
    orthanc_with_auth: LocalOrthanc, run_suite: RunSuite
) -> None:
    run = run_suite(orthanc_with_auth.dicomweb_url)
    assert run.ret == USAGE_ERROR
    assert "the server refused unauthenticated requests" in run.stdout
    assert run.outcomes == {}


def test_wrong_password_is_refused_and_never_shown(
    orthanc_with_auth: LocalOrthanc, run_suite: RunSuite
) -> None:
    env = {"DICOMWEB_AUTH": "basic", "DICOMWEB_USERNAME": "alice", "DICOMWEB_PASSWORD": "wr0ng-pw"}
    run = run_suite(orthanc_with_auth.dicomweb_url, env=env)
    assert run.ret == USAGE_ERROR
    assert "the server refused the basic credentials" in run.stdout
    assert "wr0ng-pw" not in run.stdout


def test_basic_auth_from_environment_runs_checks_and_redacts_evidence(
    orthanc_with_auth: LocalOrthanc, run_suite: RunSuite
) -> None:
    env = {"DICOMWEB_AUTH": "basic", "DICOMWEB_USERNAME": "alice", "DICOMWEB_PASSWORD": "s3cret-pw"}
    # This step fails on Orthanc (400 where 406 is due), so its evidence is printed.
    run = run_suite(orthanc_with_auth.dicomweb_url, "-k", "instance_retrieve", env=env)
    assert run.named("passed") and run.named("failed"), run.stdout
    assert "> Authorization: ***" in run.stdout
    for text in (run.stdout, run.junit):
        assert "s3cret-pw" not in text
        assert "YWxpY2U6czNjcmV0LXB3" not in text  # base64 of alice:s3cret-pw


def test_reports_name_the_server_that_answered(
    orthanc: LocalOrthanc, run_suite: RunSuite, tmp_path: Path
) -> None:
    """Its Server header, in results.json, the terminal summary and the HTML report (the Azure
    stand-in's, which says it is not Azure, in test_azure_standin_suite.py)."""
    html = tmp_path / "report.html"
    run = run_suite(orthanc.dicomweb_url, "-k", "store_one_instance", f"--html={html}", "-n", "2")
    answer = requests.get(orthanc.dicomweb_url + "/studies", timeout=30)
    server = answer.headers.get("Server") or "(no Server header)"  # Orthanc 1.10 sends none
    assert run.results["server"] == server
    assert f"server: {server}" in run.stdout
    assert "DICOMweb server" in html.read_text() and server in html.read_text()


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {"DICOMWEB_TIMEOUT": "-1"}, "DICOMWEB_TIMEOUT: must be > 0"),
        ([], {"DICOMWEB_AUTH": "basic"}, "auth=basic needs DICOMWEB_USERNAME"),
        ([], {"DICOMWEB_AUTH": "kerberos"}, "DICOMWEB_AUTH: 'kerberos' is not one of"),
        (["--dicomweb-samples=/no/such/dir"], {}, "/no/such/dir is not a directory"),
        (["--dicomweb-config=/no/such.toml"], {}, "config file not found: /no/such.toml"),
        (["--dicomweb-article-uids", "-n", "2"], {}, "drop -n/--numprocesses"),
    ],
    ids=[
        "negative timeout",
        "basic without user",
        "unknown auth",
        "no samples dir",
        "no config file",
        "article UIDs in parallel",
    ],
)
def test_bad_settings_stop_with_one_clear_message(
    run_suite: RunSuite, args: list[str], env: dict[str, str], message: str
) -> None:
    run = run_suite(f"http://127.0.0.1:{closed_port()}/dicom-web", *args, env=env)
    assert run.ret == USAGE_ERROR
    assert message in run.stdout
    assert run.outcomes == {}


def test_bad_choice_on_the_command_line_is_a_usage_error(run_suite: RunSuite) -> None:
    run = run_suite("http://127.0.0.1:1/dicom-web", "--dicomweb-auth=kerberos")
    assert run.ret == USAGE_ERROR
    assert "invalid choice: 'kerberos'" in run.stdout


def test_plugin_is_inert_for_other_test_suites(pytester: pytest.Pytester) -> None:
    """Installed, it must not disturb a suite that uses --base-url for something else."""
    pytester.makepyfile("def test_other(base_url):\n    assert base_url == 'http://x'\n")
    result = pytester.runpytest_subprocess("--base-url=http://x", "-p", "no:cacheprovider")
    # --base-url is set, so the plugin arms, but pre-flight stops only DICOMweb runs.
    result.assert_outcomes(passed=1)


HEAVY = ("pydicom", "requests", "numpy", "conformance.runtime", "conformance.client")


def test_plugin_loads_nothing_heavy_into_a_run_without_a_server(pytester: pytest.Pytester) -> None:
    """Installed, the package is in every pytest run of the environment: without --base-url it
    registers options and markers, and imports none of the suite's machinery."""
    pytester.makepyfile(
        "import sys\n"
        "def test_other():\n"
        f"    loaded = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "    assert loaded == [], loaded\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "dicomweb" in pytester.runpytest_subprocess("--help").stdout.str()
