"""The DICOM JSON Model's content (PS3.18 Annex F), read back against the stored datasets: each
value of the metadata (of the study, each series, each instance) and of the search results as it
was stored, attribute by attribute, with pydicom's dictionary and decoder as the reference. The
documents and their walkers are test_json.py's.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from conformance import expect, multipart, synthetic
from conformance.annexf import (
    VALUE_FORMS,
    json_differences,
    person_name,
    recorded_coercions,
    representation_differences,
    stored_values,
)
from conformance.checks.test_json import (
    PATIENT_NAME,
    SHOWN,
    SOP_UID,
    UTF8,
    Document,
    is_decimal_string,
    parse,
)
from conformance.client import Client
from conformance.dicomweb import instance_path, metadata, search, stow
from conformance.run.fixtures import NewSynthetic
from conformance.samples import Instance, SampleStudy
from conformance.synthetic import CatalogStudy

# --- content, read back against the stored datasets -------------------------------------------


def instance_metadata_object(
    client: Client, instance: Instance
) -> tuple[requests.Response, dict[str, Any]]:
    """The one DICOM JSON object of an instance's metadata."""
    response = expect.get_metadata(client, instance_path(instance))
    return response, one_object(response)


def one_object(response: requests.Response) -> dict[str, Any]:
    objects = Document("instance-metadata", response, parse(response)).objects
    assert len(objects) == 1, f"instance metadata holds {len(objects)} objects, expected 1"
    return objects[0]


def attribute_of(obj: dict[str, Any], tag: str, name: str) -> dict[str, Any]:
    attribute = obj.get(tag)
    assert attribute is not None, f"{name} ({tag}) is missing from the metadata"
    assert isinstance(attribute, dict), f"{name} ({tag}) is not a JSON object: {attribute!r}"
    return attribute


IDEOGRAPHIC_NAME = [
    {"Alphabetic": "Yamada^Tarou", "Ideographic": "山田^太郎", "Phonetic": "やまだ^たろう"}
]


def same_names(got: Any, stored: list[Any]) -> bool:
    """The same person names, as PS3.5 6.2 compares them (spaces around a component and
    trailing empty components are insignificant)."""
    return (
        isinstance(got, list)
        and len(got) == len(stored)
        and all(person_name(a) == person_name(b) for a, b in zip(got, stored, strict=True))
    )


@pytest.mark.requirement("JSON-PN-COMPONENT-GROUPS")
def test_ideographic_and_phonetic_name_groups_come_back(
    dicomweb: Client, stored_synthetic: CatalogStudy
) -> None:
    """PatientName 'Yamada^Tarou=山田^太郎=やまだ^たろう' is three component groups."""
    _, obj = instance_metadata_object(dicomweb, stored_synthetic.charset_ideographic)
    value = attribute_of(obj, PATIENT_NAME, "PatientName").get("Value")
    assert same_names(value, IDEOGRAPHIC_NAME), (
        f"PatientName is {value!r}, expected {IDEOGRAPHIC_NAME!r}"
    )


@pytest.mark.requirement("JSON-PN-COMPONENT-GROUPS")
def test_search_results_keep_the_name_groups(dicomweb: Client, new_synthetic: NewSynthetic) -> None:
    """Referring Physician's Name 'Yamada^Tarou=山田^太郎=やまだ^たろう' in a study of its own
    (a study attribute, so no other instance's value can stand in for it), found by a search."""
    study = new_synthetic()
    instance = synthetic.with_attribute(
        study.charset_ideographic, "ReferringPhysicianName", synthetic.IDEOGRAPHIC_NAME, "groups"
    )
    expect.answered(stow(dicomweb, [instance]), 200)
    response = search(
        dicomweb, "studies", StudyInstanceUID=instance.study_uid, includefield="00080090"
    )
    expect.status(response, 200)
    objects = Document("studies-search", response, parse(response)).objects
    assert len(objects) == 1, f"the search for one study found {len(objects)} objects"
    attribute = objects[0].get("00080090")
    value = attribute.get("Value") if isinstance(attribute, dict) else attribute
    assert same_names(value, IDEOGRAPHIC_NAME), (
        f"ReferringPhysicianName is {value!r} in the result, stored {IDEOGRAPHIC_NAME!r}"
    )


@pytest.mark.requirement("JSON-UTF8")
@pytest.mark.parametrize("name", ["charset_latin", "charset_greek", "charset_ideographic"])
def test_names_in_other_character_sets_come_back_as_utf8(
    dicomweb: Client, stored_synthetic: CatalogStudy, name: str
) -> None:
    """The request names no charset, so the Selected Character Set is UTF-8 (8.8.5). A name
    stored in another one (ISO_IR 126) comes back transcoded (reading transcoded), or the
    server that cannot transcode it answers 406 (reading 406); one stored in UTF-8 comes back
    as it is."""
    instance = stored_synthetic[name]
    charset = instance.dataset.get("SpecificCharacterSet", "")
    transcoded = charset not in UTF8
    response = metadata(dicomweb, instance_path(instance))
    if response.status_code in expect.ROUTE_ABSENT:
        expect.not_implemented(f"no metadata resource: it answered {response.status_code}")
    if transcoded:
        expect.status(response, 200, 406, why=f"stored in {charset}: transcoded, or 406 (8.8.5)")
        if expect.chose_406(response):
            return
    else:
        expect.status(response, 200, why=f"stored in {charset or 'ASCII'}: nothing to transcode")
    obj = one_object(response)
    try:
        params = multipart.parse_media_type(response.headers.get("Content-Type", ""))[1]
    except multipart.MultipartError:
        params = {}
    sent = params.get("charset", "utf-8").lower()
    assert sent in ("utf-8", "utf8"), f"the metadata is sent with charset={sent}, not UTF-8"
    try:
        response.content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AssertionError(f"the metadata body is not UTF-8: {exc}") from None
    stored = stored_values(instance.dataset["PatientName"])
    got = attribute_of(obj, PATIENT_NAME, "PatientName").get("Value")
    assert same_names(got, stored), (
        f"PatientName of {name} ({charset}) is {got!r}, stored {stored!r}"
    )
    if transcoded:
        expect.chose("transcoded")


@pytest.mark.requirement("JSON-AT-HEX")
def test_attribute_tag_value_is_eight_uppercase_hex_digits(
    dicomweb: Client, stored_synthetic: CatalogStudy
) -> None:
    """FrameIncrementPointer (0028,0009) of the multi-frame instance points at (0018,2001)."""
    _, obj = instance_metadata_object(dicomweb, stored_synthetic.multiframe)
    attribute = attribute_of(obj, "00280009", "FrameIncrementPointer")
    assert attribute.get("vr") == "AT", f"FrameIncrementPointer has vr {attribute.get('vr')!r}"
    assert attribute.get("Value") == ["00182001"], (
        f"FrameIncrementPointer is {attribute.get('Value')!r}, expected ['00182001']"
    )


@pytest.mark.requirement("JSON-SQ-ITEMS")
def test_sequence_item_holds_the_stored_item_values(
    dicomweb: Client, stored_synthetic: CatalogStudy
) -> None:
    """RequestAttributesSequence (0040,0275): one item with the two procedure IDs."""
    _, obj = instance_metadata_object(dicomweb, stored_synthetic.sequence)
    attribute = attribute_of(obj, "00400275", "RequestAttributesSequence")
    assert attribute.get("vr") == "SQ", f"RequestAttributesSequence has vr {attribute.get('vr')!r}"
    items = attribute.get("Value")
    assert isinstance(items, list) and len(items) == 1 and isinstance(items[0], dict), (
        f"RequestAttributesSequence should hold one item object, got {items!r}"
    )
    item = items[0]
    for tag, keyword, expected in (
        ("00401001", "RequestedProcedureID", stored_synthetic.requested_procedure_id),
        ("00400009", "ScheduledProcedureStepID", stored_synthetic.scheduled_procedure_step_id),
    ):
        got = item.get(tag)
        assert isinstance(got, dict) and got.get("Value") == [expected], (
            f"the item's {keyword} ({tag}) is {got!r}, expected Value [{expected!r}]"
        )


@pytest.mark.requirement("JSON-EMPTY-VALUE")
def test_empty_attributes_are_kept_without_value(
    dicomweb: Client, stored_study: SampleStudy
) -> None:
    """red-triangle's empty attributes (AccessionNumber, a Type 2 attribute, among them)."""
    red = stored_study.red
    empty = [e for e in red.dataset if e.tag.group != 2 and e.VR != "SQ" and e.is_empty]
    expect.precondition(
        any(e.keyword == "AccessionNumber" for e in empty), "AccessionNumber is not empty"
    )
    _, obj = instance_metadata_object(dicomweb, red)
    bad = []
    for element in empty:
        tag = f"{element.tag:08X}"
        attribute = obj.get(tag)
        if not isinstance(attribute, dict):
            bad.append(f"{element.keyword} ({tag}) is missing: {attribute!r}")
        elif attribute.get("vr") != element.VR:
            bad.append(f"{element.keyword} ({tag}) has vr {attribute.get('vr')!r}")
        elif any(form in attribute for form in VALUE_FORMS):  # "Value": [] included
            bad.append(f"{element.keyword} ({tag}) is {json.dumps(attribute)}")
    assert not bad, f"empty attributes of red-triangle not kept as {{vr}} alone: {'; '.join(bad)}"


@pytest.mark.requirement("JSON-MULTIPLE-VALUES")
def test_multiple_values_are_separate_array_entries(
    dicomweb: Client, stored_study: SampleStudy
) -> None:
    """red-triangle's ImageType DERIVED\\SECONDARY\\OTHER and PixelSpacing 1\\1."""
    _, obj = instance_metadata_object(dicomweb, stored_study.red)
    image_type = attribute_of(obj, "00080008", "ImageType").get("Value")
    assert image_type == ["DERIVED", "SECONDARY", "OTHER"], (
        f"ImageType is {image_type!r}, expected ['DERIVED', 'SECONDARY', 'OTHER']"
    )
    spacing = attribute_of(obj, "00280030", "PixelSpacing").get("Value")
    assert isinstance(spacing, list) and len(spacing) == 2, (
        f"PixelSpacing is {spacing!r}, expected two values"
    )
    assert all(is_decimal_string("DS", v) and float(v) == 1.0 for v in spacing), (
        f"PixelSpacing is {spacing!r}, expected [1, 1]"
    )


# --- metadata equals what was stored ----------------------------------------------------------


STUDIES = {
    "samples": "the article's study (3 instances)",
    "synthetic": "the synthetic study (7 instances)",
}
# Each study's metadata read through each of its resources: the study's (named by the study
# alone, as before), each series', each instance's; a server may build them apart.
METADATA_OF = {
    **{study: (study, "study") for study in STUDIES},
    **{f"{study}-{level}": (study, level) for study in STUDIES for level in ("series", "instance")},
}


def metadata_objects_of(
    client: Client, stored: SampleStudy | CatalogStudy, level: str, transcoded: bool
) -> list[dict[str, Any]]:
    """The metadata objects of the study's instances, as its study resource, its series' or its
    instances' answer them."""
    study = f"studies/{stored.study_uid}"
    paths = {
        "study": [study],
        "series": [f"{study}/series/{series}" for series in stored.series_uids],
        "instance": [instance_path(instance) for instance in stored],
    }[level]
    objects = []
    for path in paths:
        response = expect.get_metadata(client, path, transcoded=transcoded)
        objects += Document(f"{level}-metadata", response, parse(response)).objects
    return objects


@pytest.mark.requirement("JSON-METADATA-EQUALS-STORED")
@pytest.mark.parametrize("of", list(METADATA_OF))
def test_metadata_values_equal_the_stored_values(
    dicomweb: Client, stored_study: SampleStudy, stored_synthetic: CatalogStudy, of: str
) -> None:
    """Every attribute of each instance's metadata equals the stored one, whichever resource
    answers it: the study's, each series', each instance's."""
    study, level = METADATA_OF[of]
    stored: SampleStudy | CatalogStudy = stored_study if study == "samples" else stored_synthetic
    # The synthetic study holds a name stored in ISO_IR 126: a 406 is 8.8.5's (INFO).
    objects = metadata_objects_of(dicomweb, stored, level, transcoded=study == "synthetic")
    by_uid: dict[Any, dict[str, Any]] = {}
    for candidate in objects:
        sop = candidate.get(SOP_UID)
        uids = sop.get("Value") if isinstance(sop, dict) else None
        by_uid[uids[0] if isinstance(uids, list) and uids else None] = candidate
    wrong: list[str] = []
    coerced: list[str] = []
    represented: list[str] = []
    for instance in stored:
        obj = by_uid.get(instance.sop_uid)
        if obj is None:
            wrong.append(f"{instance.name}: no metadata object")
            continue
        recorded = recorded_coercions(obj)
        for tag, what in json_differences(obj, instance.dataset):
            (coerced if tag in recorded else wrong).append(f"{instance.name}: {what}")
        represented += [
            f"{instance.name}: {w}" for w in representation_differences(obj, instance.dataset)
        ]
    assert not wrong, (
        f"{level} metadata of {STUDIES[study]} differs from the stored instances in {len(wrong)} "
        f"attribute(s): {'; '.join(wrong[:8])}"
    )
    if coerced:
        expect.info(f"coerced on store, recorded in Original Attributes Sequence: {coerced}")
    if represented:
        expect.info(
            "attributes describing the pixel data differ, which 10.4.1.1.2's Note allows "
            f"(they may depend on the Representation): {represented[:SHOWN]}"
        )
