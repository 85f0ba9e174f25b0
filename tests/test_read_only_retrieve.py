"""The retrieve checks (test_wado.py, test_wado_frames.py) in a read-only run: they ask their
questions of the held study (a sample of it, and an instance outside the sample for a feature
it lacks), never write, and give the verdicts Orthanc's writing run gives on the run's own
studies. Where the held data lacks what a check needs (the whole study, a multi-frame image, an
instance its metadata says is compressed) the check is DISABLED saying so, never FAIL. A fault
of the retrieve is caught reading what the server holds, as it is on the run's own study."""

from __future__ import annotations

import proof
import pytest
from faultproxy import FaultProxy
from hostileproxy import HostileProxy
from paths import ORTHANC_EXPECTATIONS
from suiterun import RunSuite, SuiteRun

from conformance import expectations, samples, synthetic
from conformance.client import Client
from conformance.dicomweb import stow
from conformance.local.orthanc import LocalOrthanc

MODULES = ["test_wado.py", "test_wado_frames.py"]
LACKS = "the held data lacks "
WRITES = "a read-only run: the check needs to store a study of its own"

# What each held study leaves unjudged for want of data: the article's study (two series, three
# single-frame images, whole) has no multi-frame image, no SR and says of no instance that it
# is compressed; the synthetic one (five series: three sampled, the multi-frame image found
# outside them) is not whole, and Orthanc's metadata names no stored transfer syntax.
COMPRESSED = (
    "test_wado.py::test_instance_retrieve_returns_that_instance_intact[compressed]",
    "test_wado.py::test_default_transfer_syntax_decompresses_rle",
    "test_wado.py::test_explicit_vr_little_endian_on_request[compressed]",
    "test_wado.py::test_any_transfer_syntax_returns_the_instance_intact[compressed]",
    "test_wado.py::test_frames_without_transfer_syntax_are_uncompressed",
    "test_wado.py::test_highest_qvalue_supported_wins[RLE q=0.5, EVRLE q=1]",
    "test_wado.py::test_wildcard_accept_gets_the_default_media_type[compressed]",
)
LACKING = {
    "article": {
        *COMPRESSED,
        "test_wado.py::test_instance_retrieve_returns_that_instance_intact[multiframe]",
        "test_wado.py::test_instance_retrieve_returns_that_instance_intact[no_pixels]",
        "test_wado.py::test_any_transfer_syntax_returns_the_instance_intact[multiframe]",
        "test_wado_frames.py::test_bulkdata_uri_returns_the_pixel_bytes[multiframe]",
        "test_wado_frames.py::test_frame_is_its_pixel_bytes[multiframe/2]",
        "test_wado_frames.py::test_frame_past_the_last_answers_a_client_error[multiframe/5]",
        "test_wado_frames.py::test_frames_of_an_sr_answer_a_client_error",
        "test_wado_frames.py::test_an_sr_is_never_rendered_as_an_image",
    },
    "synthetic": {
        *COMPRESSED,
        "test_wado.py::test_study_retrieve_returns_every_instance[article]",
        "test_wado.py::test_multipart_content_type_has_boundary_parameter[study]",
        "test_wado.py::test_single_part_media_type_for_several_instances_answers_406_or_the_default"
        "[study]",
        "test_wado.py::test_single_part_media_type_never_answers_a_study_or_series[study]",
    },
}
# The checks, or cases, that read the run's own synthetic study whatever the run: its
# character sets and its sequence, and "another study" (DISABLED: they need to write).
OWN = (
    "[charset_latin]",
    "[charset_ideographic]",
    "[charset_greek]",
    "[sequence]",
    "[synthetic]",
    "[charset_latin+charset_ideographic+charset_greek]",
    "[series-under-another-study]",
)


@pytest.fixture
def held(orthanc: LocalOrthanc) -> dict[str, str]:
    """The article's study of "somebody" and the synthetic study of "someone", stored straight
    into Orthanc: data no run stored."""
    orthanc.purge()
    client = Client(orthanc.dicomweb_url)
    article = samples.fresh_copy(samples.load(), "somebody", "existing")
    assert stow(client, article).status_code == 200
    catalog = synthetic.catalog_study("someone", "held")
    assert stow(client, list(catalog)).status_code == 200
    return {"article": article.study_uid, "synthetic": catalog.study_uid}


def read_only(run_suite: RunSuite, url: str, study: str, checks: list[str]) -> SuiteRun:
    return run_suite(
        url,
        "--dicomweb-read-only",
        f"--dicomweb-studies={study}",
        "--dicomweb-profile=orthanc",
        checks=checks,
    )


@pytest.mark.parametrize("study", ["article", "synthetic"])
def test_the_retrieve_checks_judge_the_held_study_as_the_writing_run_judges_its_own(
    orthanc: LocalOrthanc, held: dict[str, str], run_suite: RunSuite, study: str
) -> None:
    with HostileProxy(orthanc.url) as proxy:
        run = read_only(run_suite, f"{proxy.url}/dicom-web", held[study], MODULES)
    orthanc.purge()
    assert proxy.methods <= {"GET", "HEAD", "OPTIONS"}, proxy.methods
    assert run.verdicts and "ERROR" not in run.verdicts.values(), run.stdout
    messages = {c["check"]: c["message"] for c in run.results["checks"]}
    disabled = {c for c, v in run.verdicts.items() if v == "DISABLED"}
    # Unjudged for want of data: exactly the checks the held study cannot answer, saying so.
    lacking = {c for c in disabled if messages[c].startswith(LACKS)}
    assert lacking == LACKING[study], sorted(lacking ^ LACKING[study])
    # Unjudged because they need the run's own data: only the cases of the synthetic study's
    # character sets, its sequence and "another study".
    writes = disabled - lacking
    assert writes and all(c.endswith(OWN) and messages[c] == WRITES for c in writes), writes
    # Every check judged gives the verdict Orthanc's writing run gives (expectations file).
    entries = expectations.load(ORTHANC_EXPECTATIONS).entries
    judged = {c: v for c, v in run.verdicts.items() if c not in disabled}
    assert judged == {c: entries[c].verdict for c in judged}, run.stdout
    assert len(judged) == {"article": 62, "synthetic": 66}[study], sorted(judged)


# Faults of tests/faults/wado.py and resources.py, each caught in a read-only run by the checks
# of it that judge the held study (fault -> the study, and how many of its checks judge it):
# parts sent twice (framing and counts, judged where the sample is whole), instances cut short
# (the intact half: on held data, against the metadata), frames and bulk data that are not the
# pixel data (on held data: the server's own, the instance sent whole in Explicit VR LE),
# frames past the last served (the last from Number of Frames in the metadata), framing read
# from the headers of a study not sampled whole, a series answered with its study, renderings
# of a held image and of a held SR, and instances not in the default transfer syntax.
FAULTS = {
    "retrieve-duplicates-last-instance": ("article", 7),
    "retrieve-truncates-last-attribute": ("article", 2),
    "frame-off-by-one": ("synthetic", 1),
    "frame-errors-served-as-frame-1": ("synthetic", 5),
    "bulkdata-bytes-swapped": ("synthetic", 4),
    "multipart-without-type": ("synthetic", 3),
    "series-retrieve-returns-study": ("article", 2),
    "rendered-png-labelled-jpeg": ("article", 3),
    "rendered-non-image-served-200": ("synthetic", 1),
    "retrieve-implicit-vr": ("synthetic", 4),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_a_faulty_retrieve_is_caught_reading_what_the_server_holds(
    orthanc: LocalOrthanc, held: dict[str, str], run_suite: RunSuite, name: str
) -> None:
    fault = proof.faults()[name]
    study, count = FAULTS[name]
    checks = sorted(c for c in fault.checks if c.split("::")[0] in MODULES)
    with FaultProxy(orthanc.url, fault.name) as proxy:
        run = read_only(run_suite, f"{proxy.url}/dicom-web", held[study], checks)
    orthanc.purge()
    caught = {c for c, v in run.verdicts.items() if v in ("FAIL", "NON-STRICT")}  # MUST, SHOULD
    unjudged = {c for c, v in run.verdicts.items() if v == "DISABLED"}
    assert caught | unjudged == set(checks), run.stdout
    # What is not caught is not judged: a case of the run's own study, or of data the held
    # study lacks (the same as in the clean run above).
    assert all(c.endswith(OWN) or c in LACKING[study] for c in unjudged), sorted(unjudged)
    assert len(caught) == count, sorted(caught)
    assert run.results["cleanup"] is None
