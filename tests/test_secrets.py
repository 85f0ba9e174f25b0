"""No secret anywhere: whole runs with known credentials, connections dropped mid-run (the long
tracebacks that once printed urllib3's ``headers=`` argument), failing checks, ``-l -vv``, and
every file a run writes, searched for the password, the token and their encoded forms.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from hostileproxy import HostileProxy
from suiterun import RunSuite
from test_tinypacs_auth import TOKEN, bearer

from conformance.local.orthanc import LocalOrthanc
from conformance.local.tinypacs import LocalTinyPacs, is_installed

PASSWORD = "s3cret-pw"  # tests/conftest.py's orthanc_with_auth: alice / s3cret-pw
BASIC = {"DICOMWEB_AUTH": "basic", "DICOMWEB_USERNAME": "alice", "DICOMWEB_PASSWORD": PASSWORD}
CREDENTIAL = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()


# The article's walkthrough (where one dropped connection in three once leaked 11 credentials,
# 66 with -l) and the HTTP checks, some of which Orthanc fails: dropped connections, failures
# and passes in about a minute, where the whole catalog dripping errors takes ten.
SELECTION = ("-k", "walkthrough or test_http")


def forms(secret: str) -> list[str]:
    """A secret as it may show: itself, in base64 (whole, and its first 12 characters, which a
    credential derived from it would share), and percent-encoded."""
    encoded = base64.b64encode(secret.encode()).decode()
    return [secret, encoded, encoded[:12], secret.replace("-", "%2D")]


def everything_written(run_stdout: str, directory: Path) -> str:
    files = [
        p
        for p in directory.rglob("*")
        if p.is_file() and p.suffix in {".xml", ".json", ".html", ".md"}
    ]
    assert files, "the run wrote no report"
    return run_stdout + "".join(p.read_text(errors="replace") for p in files)


@pytest.mark.parametrize("options", [(), ("-l", "-vv")], ids=["default", "-l -vv"])
def test_no_basic_credential_in_any_output_or_report(
    orthanc_with_auth: LocalOrthanc,
    run_suite: RunSuite,
    pytester: pytest.Pytester,
    options: tuple[str, ...],
) -> None:
    orthanc_with_auth.purge()
    with HostileProxy(orthanc_with_auth.url, "drop-every-third") as proxy:
        run = run_suite(
            f"{proxy.url}/dicom-web",
            *SELECTION,
            *options,
            f"--html={pytester.path / 'report.html'}",
            "--self-contained-html",
            env=BASIC,
        )
    orthanc_with_auth.purge()
    assert proxy.hits >= 10, "too few connections were dropped to prove anything"
    verdicts = set(run.verdicts.values())
    assert {"PASS", "FAIL", "ERROR"} <= verdicts, verdicts  # failures and broken connections
    text = everything_written(run.stdout, pytester.path)
    found = [form for form in [*forms(PASSWORD), CREDENTIAL, CREDENTIAL[:12]] if form in text]
    assert found == [], f"found {found}"
    # And what is written stays readable: -l once wrote 1.2 GB for ten failures (the reprs of
    # megabyte samples); now each report is cut, and a sample's repr is one line.
    assert len(run.stdout) < 2_000_000, len(run.stdout)


@pytest.mark.server  # starts a server itself
@pytest.mark.skipif(not is_installed(), reason="tiny-pacs is not installed: run scripts/bootstrap")
def test_no_bearer_token_in_any_output_or_report(
    run_suite: RunSuite, pytester: pytest.Pytester
) -> None:
    with (
        LocalTinyPacs(token=TOKEN) as server,
        HostileProxy(server.url, "drop-every-third", root="/dicomweb") as proxy,
    ):
        run = run_suite(
            f"{proxy.url}/dicomweb",
            *SELECTION,
            "-l",
            "-vv",
            "--dicomweb-cleanup=none",
            f"--html={pytester.path / 'report.html'}",
            env=bearer(TOKEN),
        )
    assert proxy.hits >= 10
    text = everything_written(run.stdout, pytester.path)
    assert [form for form in forms(TOKEN) if form in text] == []


def test_credentials_in_the_base_url_are_refused_and_never_echoed(
    orthanc_with_auth: LocalOrthanc, run_suite: RunSuite
) -> None:
    url = orthanc_with_auth.dicomweb_url.replace("://", f"://alice:{PASSWORD}@")
    run = run_suite(url)
    assert run.ret == pytest.ExitCode.USAGE_ERROR, run.stdout
    assert "--base-url carries credentials" in run.stdout
    assert PASSWORD not in run.stdout
