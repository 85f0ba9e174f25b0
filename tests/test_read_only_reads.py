"""The HTTP, metadata and DICOM JSON value checks judge a read-only run on the data the server
already holds (fixture study_data: a sample of the first study it reads; the second study stands
for the synthetic one's metadata document), as they judge the run's own study in a writing run.

Shown on an archive the checks never stored (the synthetic study of another patient, and the
synthetic study of a third one as the second study), read through a proxy that records every
method on the wire: only GET, HEAD and OPTIONS go out; each check this module names gives
Orthanc's writing-run verdict (expectations/orthanc.toml), but for the differences listed with
their reason; a check that needs a write or the stored bytes stays DISABLED. And through a
faulty proxy, the metadata faults of the registry are caught read-only by the moved checks.
"""

from __future__ import annotations

from collections.abc import Iterator

import proof
import pytest
from faultproxy import FaultProxy
from hostileproxy import HostileProxy
from paths import ORTHANC_EXPECTATIONS
from suiterun import RunSuite, SuiteRun

from conformance import expectations, synthetic
from conformance.client import Client
from conformance.dicomweb import stow
from conformance.local.orthanc import LocalOrthanc

MODULES = ("test_http.py", "test_wado_metadata.py", "test_json_values.py", "test_json.py")
HTTP, WADO, VALUES, JSON = (m + "::" for m in MODULES)
# The checks and cases this module shows judged read-only (DISABLED there before), each with
# the writing run's verdict unless DIFFERENT says otherwise.
READ = (
    *(
        f"{HTTP}test_dicom_json_answers_are_application_dicom_json[{k}]"
        for k in ("study-metadata", "studies-search")
    ),
    *(
        f"{HTTP}test_answers_with_a_payload_have_a_content_type[{k}]"
        for k in (
            "metadata-of-unknown-study",
            "search-with-limit=abc",
            "instance-with-accept=text/html",
        )
    ),
    f"{HTTP}test_client_errors_say_what_went_wrong",
    f"{HTTP}test_405_lists_the_allowed_methods[OPTIONS studies]",
    f"{HTTP}test_head_answers_like_get[studies-search]",
    f"{HTTP}test_head_answers_like_get[instance]",
    f"{HTTP}test_warning_headers_follow_the_http_grammar",
    f"{WADO}test_study_metadata_describes_every_instance_once[article]",
    f"{WADO}test_series_metadata_describes_only_that_series[green-square+red-triangle]",
    f"{WADO}test_series_metadata_describes_only_that_series[blue-circle]",
    *(
        f"{WADO}test_instance_metadata_describes_that_instance[{k}]"
        for k in ("red-triangle", "multiframe", "no_pixels")
    ),
    f"{WADO}test_metadata_keeps_pixel_data_as_bulk_data[red-triangle]",
    f"{WADO}test_metadata_keeps_pixel_data_as_bulk_data[multiframe]",
    f"{WADO}test_metadata_values_equal_the_stored_ones[red-triangle]",
    f"{WADO}test_metadata_values_equal_the_stored_ones[no_pixels]",
    f"{WADO}test_metadata_default_media_type_is_dicom_json",
    f"{WADO}test_metadata_as_dicom_xml[instance]",
    f"{WADO}test_metadata_as_dicom_xml[study]",
    *(
        f"{VALUES}test_names_in_other_character_sets_come_back_as_utf8[{k}]"
        for k in ("charset_latin", "charset_greek", "charset_ideographic")
    ),
    f"{VALUES}test_attribute_tag_value_is_eight_uppercase_hex_digits",
    f"{VALUES}test_sequence_item_holds_the_stored_item_values",
    f"{VALUES}test_empty_attributes_are_kept_without_value",
    f"{VALUES}test_multiple_values_are_separate_array_entries",
    *(
        f"{VALUES}test_metadata_values_equal_the_stored_values[samples{k}]"
        for k in ("", "-series", "-instance")
    ),
)
# test_json.py's checks of the synthetic study's metadata, read from the second held study.
SECOND_STUDY = "[synthetic-metadata]"
# Read-only verdicts that differ from Orthanc's writing run, and why.
DIFFERENT = {
    # The PUT whose 405 without a body is the writing run's NON-STRICT is never sent read-only:
    # the three reading requests' 4xx answers each explain themselves.
    f"{HTTP}test_client_errors_say_what_went_wrong": "PASS",
}


def catalog(client: Client, patient: str, label: str) -> synthetic.CatalogStudy:
    study = synthetic.catalog_study(patient, label)
    assert stow(client, list(study)).status_code == 200
    return study


@pytest.fixture(scope="module")
def held_archive(orthanc: LocalOrthanc) -> Iterator[tuple[str, str]]:
    """Two studies no run of the checks stored: the synthetic study of "someone" (read first:
    character sets, a sequence, a multi-frame and a compressed image, an SR), and that of
    "another", whose UID sorts after it (--dicomweb-studies reads them in UID order). Stored
    once for the module: every run of it only reads."""
    orthanc.purge()
    client = Client(orthanc.dicomweb_url)
    first = catalog(client, "someone", "held")
    label = next(
        f"second-{n}"
        for n in range(64)
        if synthetic.catalog_study("another", f"second-{n}").study_uid > first.study_uid
    )
    second = catalog(client, "another", label)
    yield first.study_uid, second.study_uid
    orthanc.purge()


def verdicts_of(run: SuiteRun) -> dict[str, str]:
    return {c: v for c, v in run.verdicts.items() if c.startswith(MODULES)}


def test_the_http_metadata_and_json_value_checks_judge_what_the_server_holds(
    orthanc: LocalOrthanc, held_archive: tuple[str, str], run_suite: RunSuite
) -> None:
    first, second = held_archive
    with HostileProxy(orthanc.url) as proxy:
        run = run_suite(
            f"{proxy.url}/dicom-web",
            "--dicomweb-read-only",
            f"--dicomweb-studies={first},{second}",
            "--dicomweb-profile=orthanc",
            checks=MODULES,
        )
    assert proxy.methods <= {"GET", "HEAD", "OPTIONS"}, proxy.methods
    got = verdicts_of(run)
    assert "ERROR" not in got.values(), run.stdout
    entries = expectations.load(ORTHANC_EXPECTATIONS).entries
    read = [*READ, *(c for c in got if c.startswith(JSON) and c.endswith(SECOND_STUDY))]
    assert len(read) == len(READ) + 14, read
    wanted = {c: DIFFERENT.get(c, entries[c].verdict) for c in read}
    assert {c: got.get(c) for c in read} == wanted, run.stdout
    # What is left needs a write (a store, a PUT or PATCH), what the run stored (the synthetic
    # study's own values) or what the held data lacks: DISABLED, saying so; nothing else is.
    unrun = {
        c["check"]: c["message"]
        for c in run.results["checks"]
        if c["check"] in got and c["verdict"] == "DISABLED"
    }
    said = ("read-only", "the held data lacks")
    assert all(any(w in message for w in said) for message in unrun.values()), unrun
    judged = {c for c, v in got.items() if v != "DISABLED"}
    assert set(read) <= judged and len(judged) >= 84, sorted(judged)
    # What was there is there, and nothing else.
    client = Client(orthanc.dicomweb_url)
    for study in (first, second):
        held = client.get(f"studies/{study}/metadata")
        assert held.status_code == 200 and len(held.json()) == 7


# Faults of the registry the moved checks catch read-only, each breaking one rule a held half of
# them asks: what the metadata describes, its values against the searches' and each level's,
# empty and multiple values, AT values, UTF-8, Pixel Data as bulk data, XML, media types.
FAULTS = (
    "series-metadata-of-its-own-level-only",
    "metadata-series-is-study",
    "metadata-long-strings-truncated",
    "json-empty-value-as-empty-array",
    "json-multiple-values-joined",
    "json-at-as-tag-tuple",
    "metadata-not-utf8",
    "metadata-drops-pixel-data",
    "metadata-xml-drops-last-part",
    "metadata-labelled-application-json",
    "json-served-as-application-json",
    "malformed-warning-header",
)


@pytest.mark.parametrize("name", FAULTS)
def test_a_fault_is_caught_reading_what_the_server_holds(
    orthanc: LocalOrthanc, held_archive: tuple[str, str], run_suite: RunSuite, name: str
) -> None:
    """Each of the fault's checks this module judges read-only fails, on the held studies, as
    it fails on the run's own in a writing run (the others need a write or the stored bytes)."""
    fault = proof.faults()[name]
    caught = sorted(c for c in fault.checks if c in READ or c.endswith(SECOND_STUDY))
    assert caught, fault.checks
    first, second = held_archive
    with FaultProxy(orthanc.url, fault.name) as proxy:
        run = run_suite(
            f"{proxy.url}/dicom-web",
            "--dicomweb-read-only",
            f"--dicomweb-studies={first},{second}",
            checks=caught,
        )
    assert run.verdicts == dict.fromkeys(caught, "FAIL"), run.stdout
    assert run.results["cleanup"] is None
