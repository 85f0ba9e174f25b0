"""A read-only run (--dicomweb-read-only) sends no POST, PUT, PATCH or DELETE: shown by a proxy
that records every method on the wire, over the whole catalog. It reads the studies the user
names (those the server has; with auto:N the most recent), and says which checks it could not
run."""

from __future__ import annotations

import pytest
from hostileproxy import HostileProxy
from suiterun import RunSuite

from conformance import samples
from conformance.client import Client
from conformance.dicomweb import stow
from conformance.local.orthanc import LocalOrthanc
from conformance.synthetic import generated_instance

READING = [
    "test_existing.py::test_a_study_retrieve_sends_the_instances_searches_list",
    "test_existing.py::test_each_series_retrieve_sends_the_instances_searches_list_in_it",
]


def test_a_read_only_run_only_reads_and_lists_what_it_could_not_run(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    orthanc.purge()
    existing = samples.fresh_copy(samples.load(), "somebody", "existing")
    assert stow(Client(orthanc.dicomweb_url), existing).status_code == 200
    with HostileProxy(orthanc.url) as proxy:
        run = run_suite(
            f"{proxy.url}/dicom-web",
            "--dicomweb-read-only",
            f"--dicomweb-studies={existing.study_uid}",
            "--dicomweb-profile=orthanc",
        )
    assert proxy.methods <= {"GET", "HEAD", "OPTIONS"}, proxy.methods
    assert {check: run.verdicts.get(check) for check in READING} == dict.fromkeys(READING, "PASS")
    assert "ERROR" not in run.verdicts.values(), run.stdout
    assert run.ret == 0, run.stdout  # the one FAIL that needs no write is Orthanc's known one
    unrun = [
        c
        for c in run.results["checks"]
        if c["verdict"] == "DISABLED" and "read-only" in c["message"]
    ]
    assert len(unrun) > 300, len(unrun)
    assert f"read-only run: {len(unrun)} checks need to write and were not run" in run.stdout
    assert run.results["cleanup"] is None
    # What was there is there, and nothing else.
    stored = Client(orthanc.dicomweb_url).get(f"studies/{existing.study_uid}/metadata")
    assert stored.status_code == 200 and len(stored.json()) == 3
    orthanc.purge()


def dated_study(client: Client, label: str, date: str) -> str:
    """A one-instance study of "somebody" with its Study Date: data the run never stored."""
    uid = samples.derive_uid("somebody", label, "study")
    instance = generated_instance(
        "somebody", uid, f"{uid}.1.1", None, [(0x00080020, "DA", date), (0x00080030, "TM", "1200")]
    )
    assert stow(client, [instance]).status_code == 200
    return uid


def test_a_named_study_the_server_lacks_is_one_line_and_the_run_goes_on(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    orthanc.purge()
    there = dated_study(Client(orthanc.dicomweb_url), "there", "20240101")
    absent = samples.derive_uid("somebody", "never stored", "study")
    run = run_suite(
        orthanc.dicomweb_url,
        "--dicomweb-read-only",
        f"--dicomweb-studies={there},{absent}",
        checks=READING,
    )
    orthanc.purge()
    assert run.stdout.count(f"dicomweb: study {absent} is not on the server: not read") == 1
    assert f"dicomweb: reading 1 study: {there}" in run.stdout
    assert {check: run.verdicts.get(check) for check in READING} == dict.fromkeys(READING, "PASS")


def test_none_of_the_named_studies_on_the_server_stops_the_run_before_any_check(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    orthanc.purge()
    absent = [samples.derive_uid("somebody", f"never stored {n}", "study") for n in (1, 2)]
    run = run_suite(
        orthanc.dicomweb_url, "--dicomweb-read-only", f"--dicomweb-studies={','.join(absent)}"
    )
    assert run.ret == pytest.ExitCode.USAGE_ERROR, run.stdout
    assert "none of the 2 studies named by --dicomweb-studies is on the server" in run.stdout
    assert run.verdicts == {} and run.outcomes == {}


def test_auto_reads_the_most_recent_studies_and_stops_on_an_empty_server(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    orthanc.purge()
    empty = run_suite(orthanc.dicomweb_url, "--dicomweb-read-only", "--dicomweb-studies=auto:2")
    assert empty.ret == pytest.ExitCode.USAGE_ERROR, empty.stdout
    assert "nothing to read: a search of studies lists none" in empty.stdout
    client = Client(orthanc.dicomweb_url)
    old, newest, newer = (
        dated_study(client, label, date)
        for label, date in (("old", "20190101"), ("newest", "20250101"), ("newer", "20240101"))
    )
    run = run_suite(
        orthanc.dicomweb_url, "--dicomweb-read-only", "--dicomweb-studies=auto:2", checks=READING
    )
    orthanc.purge()
    assert f"reading the 2 most recent studies a search lists: {newest}, {newer}" in run.stdout
    assert old not in run.stdout
    assert {check: run.verdicts.get(check) for check in READING} == dict.fromkeys(READING, "PASS")
