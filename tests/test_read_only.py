"""A read-only run (--dicomweb-read-only) sends no POST, PUT, PATCH or DELETE: shown by a proxy
that records every method on the wire, over the whole catalog. It reads the studies the user
names, and says which checks it could not run."""

from __future__ import annotations

from hostileproxy import HostileProxy
from suiterun import RunSuite

from conformance import samples
from conformance.client import Client
from conformance.dicomweb import stow
from conformance.local.orthanc import LocalOrthanc

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
