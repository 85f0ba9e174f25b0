"""The plugin as a user meets it: --help, bad options, and servers that cannot be tested.

Each broken set-up must stop the run before any check with one clear message and exit status 4
(pytest's usage error), never run the checks into two hundred failures.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Any

import pytest
import requests
from paths import CHECKS_DIR as CHECKS
from paths import ORTHANC_EXPECTATIONS
from suiterun import RunSuite

from conformance.local.orthanc import LocalOrthanc
from conformance.profiles import load
from conformance.run.identity import profile_mismatch
from conformance.settings import OPTIONS

USAGE_ERROR = pytest.ExitCode.USAGE_ERROR
SECONDS = "a number of seconds greater than 0, e.g. 30 or 2.5"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_help_documents_every_option_in_one_group(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")
    text = result.stdout.str()
    group = text.index("DICOMweb conformance:")
    first = text.index("--dicomweb-", group)
    for option in OPTIONS:
        assert option.env in text
        if not option.secret:
            assert text.index(option.cli) >= first, option.cli
    # --base-url is pytest-base-url's option: our group says, first, that it gives the server.
    assert "--base-url=URL" in text[group:first]
    assert "PYTEST_BASE_URL" in text[group:first]


def test_checks_without_a_server_stop_with_one_message_before_collection(
    run_suite: RunSuite,
) -> None:
    run = run_suite("")
    assert run.ret == USAGE_ERROR
    assert run.stdout.count("the checks need a server: pass --base-url") == 1
    assert "collected" not in run.stdout and "test session starts" not in run.stdout
    assert run.outcomes == {}


def test_unreachable_server_stops_before_any_check(run_suite: RunSuite) -> None:
    port = closed_port()
    run = run_suite(f"http://127.0.0.1:{port}/dicom-web")
    assert run.ret == USAGE_ERROR
    assert (
        run.stdout.count(
            f"cannot reach http://127.0.0.1:{port}/dicom-web: 127.0.0.1 refused the connection on "
            f"port {port} (nothing listens there: is the server running, the port right?)"
        )
        == 1
    )
    assert run.outcomes == {}


def test_a_host_name_that_does_not_resolve_is_said_so(run_suite: RunSuite) -> None:
    run = run_suite("http://no-such-host.invalid/dicom-web")
    assert run.ret == USAGE_ERROR
    assert (
        "cannot reach http://no-such-host.invalid/dicom-web: the host name no-such-host.invalid "
        "does not resolve" in run.stdout
    )
    assert "refused" not in run.stdout


@pytest.mark.parametrize("insecure", [[], ["--dicomweb-insecure"]], ids=["verified", "insecure"])
def test_https_to_a_plain_http_port_asks_whether_it_is_http(
    orthanc: LocalOrthanc, run_suite: RunSuite, insecure: list[str]
) -> None:
    url = orthanc.dicomweb_url.replace("http://", "https://")
    run = run_suite(url, *insecure)
    assert run.ret == USAGE_ERROR
    assert (
        f"cannot reach {url}: the server does not speak TLS on this port (is it http://?)"
        in run.stdout
    )
    assert "use --dicomweb-insecure" not in run.stdout
    assert run.outcomes == {}


def test_a_servers_rest_root_is_refused_naming_its_dicomweb_root(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    """Orthanc's native /studies answers 200 with application/json: no DICOMweb search. One
    message, exit 4, the DICOMweb root suggested; no check runs, so none ERRORs, and cleanup
    removes nothing it never stored."""
    run = run_suite(orthanc.url)
    assert run.ret == USAGE_ERROR
    assert (
        run.stdout.count(
            f"{orthanc.url} answered a search for studies with application/json, not "
            "application/dicom+json (PS3.18 10.6.4): that is a server's own REST API"
        )
        == 1
    )
    assert f"give the DICOMweb root, e.g. --base-url={orthanc.url}/dicom-web" in run.stdout
    assert run.outcomes == {} and "removed" not in run.stdout


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
    assert "DICOMweb server" in html.read_text() and server in html.read_text()
    # No name given, no Orthanc REST API named for cleanup, no Server header: not named.
    assert run.results["server_name"] is None
    assert "server: not named (pass --dicomweb-server-name); no Server header" in run.stdout


def test_a_given_server_name_names_it_in_every_report(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    name = "Our PACS, production"
    run = run_suite(orthanc.dicomweb_url, "-k", "store_one_instance", "--dicomweb-cleanup=none")
    assert run.results["server_name"] is None
    run = run_suite(
        orthanc.dicomweb_url, "-k", "store_one_instance", f"--dicomweb-server-name={name}"
    )
    assert run.results["server_name"] == name
    assert f"server: {name}; no Server header" in run.stdout


def test_orthanc_named_by_its_rest_api_when_that_does_the_cleanup(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    """What the server says of itself: Orthanc's /system and /plugins/dicom-web, asked once
    each when its REST API is the cleanup's; never the profile's description."""
    system = requests.get(f"{orthanc.url}/system", timeout=30).json()
    plugin = requests.get(f"{orthanc.url}/plugins/dicom-web", timeout=30).json()
    name = f"Orthanc {system['Version']} with the DICOMweb plugin {plugin['Version']}"
    run = run_suite(
        orthanc.dicomweb_url,
        "-k",
        "store_one_instance",
        f"--dicomweb-orthanc-url={orthanc.url}",
        "--dicomweb-profile=orthanc",
    )
    assert run.results["server_name"] == name
    assert f"server: {name} (as its REST API says); no Server header" in run.stdout
    assert (
        "dicomweb: warning" not in run.stdout
    )  # the orthanc profile names no version to differ from


def test_a_profile_of_another_version_is_one_warning_before_the_checks(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    run = run_suite(
        orthanc.dicomweb_url,
        "-k",
        "store_one_instance",
        "--dicomweb-profile=orthanc-1.13",
        "--dicomweb-server-name=Orthanc 1.10.1 with the DICOMweb plugin 1.7",
    )
    warning = (
        "dicomweb: warning: profile orthanc-1.13 describes Orthanc 1.13 with the DICOMweb "
        "plugin 1.24, but the server is Orthanc 1.10.1 with the DICOMweb plugin 1.7"
    )
    assert run.stdout.count(warning) == 1
    assert run.stdout.index(warning) < run.stdout.index("dicomweb verdicts")
    same = run_suite(
        orthanc.dicomweb_url,
        "-k",
        "store_one_instance",
        "--dicomweb-profile=orthanc-1.13",
        "--dicomweb-server-name=Orthanc 1.13.0 with the DICOMweb plugin 1.24",
    )
    assert "dicomweb: warning" not in same.stdout


@pytest.mark.parametrize(
    ("profile", "server", "warned"),
    [
        ("orthanc-1.13", "Orthanc 1.10.1 with the DICOMweb plugin 1.7", True),
        ("orthanc-1.13", "Orthanc 1.13.0 with the DICOMweb plugin 1.24", False),
        ("tiny-pacs", "tiny-pacs 0.4.1 with tiny-pacs-dicomweb 0.2.0", True),
        ("tiny-pacs", "tiny-pacs 0.4.1 with tiny-pacs-dicomweb 0.1.0", False),
        # Versions of different things are not compared: a proxy's Server header (the fault
        # proxy's was once taken for a server other than "DICOM PS3.18"), a gateway's.
        ("standard", "BaseHTTP/0.6 Python/3.11.7", False),
        ("standard", "Orthanc 1.10.1 with the DICOMweb plugin 1.7", False),
        ("orthanc-1.13", "nginx/1.24.0", False),
    ],
)
def test_only_a_product_named_with_another_version_is_a_mismatch(
    profile: str, server: str, warned: bool
) -> None:
    assert (profile_mismatch(load(profile), server) is not None) is warned


# --- what the terminal says of the verdicts and the exit status ------------------------------


def test_the_short_summary_names_the_requirement_whatever_the_width(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    """pytest cuts what follows a test's name at the terminal's width (80 columns in CI logs):
    the requirement ID comes before the name."""
    run = run_suite(orthanc.dicomweb_url, "-k", "test_missing_accept_is_406", "-rfx")
    assert run.ret == pytest.ExitCode.TESTS_FAILED
    summary = run.stdout[run.stdout.index("short test summary info") :]
    assert "FAILED QIDO-NO-ACCEPT-406 test_qido_paging.py::test_missing_accept_is_406 - " in summary


def test_an_exit_status_the_headline_does_not_suggest_is_explained(
    orthanc: LocalOrthanc, run_suite: RunSuite, tmp_path: Path
) -> None:
    """A verdict that differs from the expectations fails a gate whose requirements all pass:
    one line says why, and the gate's summary ends the section."""
    check = "test_qido.py::test_search_resource_returns_its_collection[studies]"
    expected = tmp_path / "gate.toml"
    expected.write_text(f'[expect]\n"{check}" = {{ verdict = "FAIL", reason = "ticket 1" }}\n')
    run = run_suite(
        orthanc.dicomweb_url,
        "-k",
        "test_search_resource_returns_its_collection and studies",
        f"--dicomweb-expectations={expected}",
    )
    assert run.ret == pytest.ExitCode.TESTS_FAILED
    assert "exit 1: 1 verdict differs from gate.toml" in run.stdout
    section = run.stdout[
        run.stdout.index("dicomweb verdicts") : run.stdout.index("dicomweb cleanup")
    ]
    last = [line for line in section.splitlines() if not line.startswith("=")][-1]
    assert last == "1 verdict differs from gate.toml: 1 now PASS", section


def test_a_broken_should_under_strict_says_it_is_why_the_run_fails(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    run = run_suite(
        orthanc.dicomweb_url,
        "-k",
        "test_client_errors_say_what_went_wrong",
        "--dicomweb-strict",
        "--dicomweb-profile=orthanc",
    )
    assert run.verdicts == {"test_http.py::test_client_errors_say_what_went_wrong": "NON-STRICT"}
    assert run.ret == pytest.ExitCode.TESTS_FAILED
    assert "exit 1: a SHOULD is broken and --dicomweb-strict is set" in run.stdout


def test_failures_all_expected_exit_0_and_say_so(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    run = run_suite(
        orthanc.dicomweb_url,
        "-k",
        "test_missing_accept_is_406",
        f"--dicomweb-expectations={ORTHANC_EXPECTATIONS}",
        "--dicomweb-profile=orthanc",
    )
    assert run.ret == pytest.ExitCode.OK
    assert "exit 0: every FAIL and ERROR is expected by orthanc.toml" in run.stdout
    assert "every verdict is the one orthanc.toml expects (1 checks)" in run.stdout


def test_purge_list_ends_with_its_own_line_and_status(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    run = run_suite(orthanc.dicomweb_url, "--dicomweb-purge=list", "--dicomweb-run-id=nothing1")
    assert run.ret == pytest.ExitCode.OK
    assert run.stdout.strip().splitlines()[-1] == (
        "dicomweb purge: nothing deleted; no checks run (exit 0)"
    )
    assert "Exit" not in run.stdout and "!!!" not in run.stdout and "collected" not in run.stdout


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ([], {"DICOMWEB_TIMEOUT": "-1"}, f"DICOMWEB_TIMEOUT takes {SECONDS}, not '-1'"),
        (["--dicomweb-timeout=abc"], {}, f"--dicomweb-timeout takes {SECONDS}, not 'abc'"),
        (["--dicomweb-retries=2.5"], {}, "--dicomweb-retries takes a whole number, 0 or more"),
        ([], {"DICOMWEB_AUTH": "basic"}, "auth=basic needs DICOMWEB_USERNAME"),
        ([], {"DICOMWEB_AUTH": "kerberos"}, "DICOMWEB_AUTH takes one of none, basic, bearer"),
        (["--dicomweb-samples=/no/such/dir"], {}, "/no/such/dir is not a directory"),
        (["--dicomweb-config=/no/such.toml"], {}, "config file not found: /no/such.toml"),
        (["--dicomweb-article-uids", "-n", "2"], {}, "drop -n/--numprocesses"),
    ],
    ids=[
        "negative timeout",
        "word timeout",
        "fractional retries",
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
    assert run.stdout.count(message) == 1
    assert "Traceback" not in run.stdout and "Error:" not in run.stdout.replace("ERROR:", "")
    assert run.outcomes == {}


def test_bad_choice_on_the_command_line_is_a_usage_error(run_suite: RunSuite) -> None:
    run = run_suite("http://127.0.0.1:1/dicom-web", "--dicomweb-auth=kerberos")
    assert run.ret == USAGE_ERROR
    assert "invalid choice: 'kerberos'" in run.stdout


PROBE = "import atexit, gc\natexit.register(lambda: print('frozen:', gc.get_freeze_count()))\n"


def test_plugin_is_inert_for_other_test_suites(pytester: pytest.Pytester) -> None:
    """Installed, it must not disturb a suite that uses --base-url for something else: no
    pre-flight, and its heap is not frozen at the end (its objects' cycles still collected)."""
    pytester.makepyfile("def test_other(base_url):\n    assert base_url == 'http://x'\n")
    pytester.makepyfile(probe=PROBE)
    result = pytester.runpytest_subprocess("--base-url=http://x", "-p", "probe")
    # --base-url is set, so the plugin arms, but pre-flight stops only DICOMweb runs.
    result.assert_outcomes(passed=1)
    assert "frozen: 0" in result.stdout.str()


def test_a_run_of_the_checks_exits_with_its_heap_frozen(pytester: pytest.Pytester) -> None:
    """As a run of the checks exits, its heap is frozen first (conformance/run/lifecycle.py), so
    that the interpreter's exit does not run the cycle collector over it: also a run stopped
    before any check (here by its unreachable server)."""
    pytester.makepyfile(probe=PROBE)
    result = pytester.runpytest_subprocess(
        str(CHECKS), "--base-url=http://127.0.0.1:9/dicom-web", "-p", "probe"
    )
    frozen = re.search(r"frozen: (\d+)", result.stdout.str())
    assert result.ret == pytest.ExitCode.USAGE_ERROR and frozen and int(frozen[1]) > 0


# The suite's machinery: the libraries, the client, and the run's hooks, fixtures and recorder.
HEAVY: tuple[str, ...] = ("pydicom", "requests", "numpy", "conformance.client")
HEAVY += ("conformance.run", "conformance.run.session", "conformance.run.fixtures")


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


def test_a_module_given_by_its_python_name_is_that_module_not_its_package() -> None:
    """--dicomweb-mode=certify refuses a single module: `--pyargs conformance.checks.test_qido`
    must be seen as test_qido.py, not as the checks' folder."""
    from types import SimpleNamespace

    from conformance.items import CHECKS_DIR, arg_path

    config: Any = SimpleNamespace(
        option=SimpleNamespace(pyargs=True), invocation_params=SimpleNamespace(dir=Path.cwd())
    )
    assert arg_path(config, "conformance.checks") == CHECKS_DIR
    assert arg_path(config, "conformance.checks.test_qido") == CHECKS_DIR / "test_qido.py"
    assert arg_path(config, "conformance.checks.test_qido::test_x") == CHECKS_DIR / "test_qido.py"
    assert arg_path(config, "no.such.module") is None
