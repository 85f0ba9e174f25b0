"""The DICOM JSON Model's content (PS3.18 Annex F), read back against the stored datasets: each
value of the metadata (of the study, each series, each instance) and of the search results as it
was stored, attribute by attribute, with pydicom's dictionary and decoder as the reference. The
documents and their walkers are test_json.py's.

A read-only run asks the same questions of the data the server holds (fixture study_data: a
sample of the first study it reads). There the reference is the server's own instance
metadata, read while sampling: each resource's metadata must repeat it; an instance of the kind
a check needs (an attribute tag, a sequence, a name in a character set) is a sampled one that
shows it, or the case is left unjudged. What only the stored bytes can tell (the value the run
stored, a name the run wrote in three groups) is the writing run's, and a check that stores its
own instance stays DISABLED.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

import pytest
import requests
from pydicom.dataset import Dataset

from conformance import expect, multipart, synthetic
from conformance.annexf import (
    TEXT_VRS,
    VALUE_FORMS,
    json_differences,
    person_name,
    recorded_coercions,
    representation_differences,
    stored_values,
)
from conformance.checks.test_json import (
    HEX_TAG,
    PATIENT_NAME,
    SHOWN,
    SOP_UID,
    STRING_VRS,
    UTF8,
    Document,
    is_decimal_string,
    parse,
)
from conformance.client import Client
from conformance.dicomweb import metadata, search, stow
from conformance.heldstudy import (
    DataInstance,
    HeldInstance,
    HeldStudy,
    StudyData,
    first_instance,
    path_of,
)
from conformance.run.fixtures import NewSynthetic
from conformance.synthetic import CatalogStudy
from conformance.verdicts import disabled

# --- content, read back against the stored datasets -------------------------------------------


def instance_metadata_object(
    client: Client, instance: DataInstance
) -> tuple[requests.Response, dict[str, Any]]:
    """The one DICOM JSON object of an instance's metadata."""
    response = expect.get_metadata(client, path_of(instance))
    return response, one_object(response)


# --- the data: the run's own, or a sample of the study a read-only run reads ----------------


def held_sample(held_study: str | None, request: pytest.FixtureRequest) -> HeldStudy | None:
    """The sample of the study a read-only run reads; None in a run that stores its own."""
    if held_study is None:
        return None
    return cast(HeldStudy, request.getfixturevalue("study_data"))


def held_showing(held: HeldStudy, what: str, shows: Callable[[Dataset], bool]) -> HeldInstance:
    """The first held instance (of the sample, else of the extras read for a feature it lacks)
    whose metadata ``shows`` what a check needs; without one, the check is left unjudged (the
    data cannot tell)."""
    candidates: list[HeldInstance] = [*held, *held.extras]
    found = next((i for i in candidates if shows(i.dataset)), None)
    if found is None:
        disabled(
            f"the held data lacks it: no instance of the study read ({held.sampled}) has {what}"
        )
    return found


def top_level(ds: Dataset, vr: str) -> list[str]:
    """The tags (as DICOM JSON names them) of a dataset's top-level elements of a VR, with a
    value."""
    return [f"{e.tag:08X}" for e in ds if vr == e.VR and not e.is_empty and e.tag.group != 2]


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
    dicomweb: Client, held_study: str | None, request: pytest.FixtureRequest, name: str
) -> None:
    """The request names no charset, so the Selected Character Set is UTF-8 (8.8.5). A name
    stored in another one (ISO_IR 126) comes back transcoded (reading transcoded), or the
    server that cannot transcode it answers 406 (reading 406); one stored in UTF-8 comes back
    as it is. In a read-only run: a sampled instance its metadata says is of that kind (the
    name as stored is the writing run's to compare)."""
    held = held_sample(held_study, request)
    if held is None:
        stored: CatalogStudy = request.getfixturevalue("stored_synthetic")
        instance: DataInstance = stored[name]
    else:
        instance = held_showing(held, *CHARSET_KINDS[name])
    charset = instance.dataset.get("SpecificCharacterSet", "")
    transcoded = charset not in UTF8
    response = metadata(dicomweb, path_of(instance))
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
    if not isinstance(instance, HeldInstance):
        stored_name = stored_values(instance.dataset["PatientName"])
        got = attribute_of(obj, PATIENT_NAME, "PatientName").get("Value")
        assert same_names(got, stored_name), (
            f"PatientName of {name} ({charset}) is {got!r}, stored {stored_name!r}"
        )
    if transcoded:
        expect.chose("transcoded")


def _ideographic(ds: Dataset) -> bool:
    return bool(getattr(ds.get("PatientName"), "ideographic", ""))


# What a held instance shows to stand for each synthetic one (its metadata's word).
CHARSET_KINDS: dict[str, tuple[str, Callable[[Dataset], bool]]] = {
    "charset_latin": (
        "a Patient's Name in UTF-8",
        lambda ds: bool(ds.get("PatientName")) and ds.get("SpecificCharacterSet", "") in UTF8,
    ),
    "charset_greek": (
        "text in another character set than UTF-8",
        lambda ds: ds.get("SpecificCharacterSet", "") not in UTF8,
    ),
    "charset_ideographic": ("a Patient's Name with an ideographic group", _ideographic),
}


@pytest.mark.requirement("JSON-AT-HEX")
def test_attribute_tag_value_is_eight_uppercase_hex_digits(
    dicomweb: Client, held_study: str | None, request: pytest.FixtureRequest
) -> None:
    """FrameIncrementPointer (0028,0009) of the multi-frame instance points at (0018,2001). In
    a read-only run: each attribute of VR AT of the first held instance that has one (chosen by
    its vr, so a value the sample could not read still counts), each of whose values is 8
    uppercase hex digits (what it points at is the stored bytes')."""
    held = held_sample(held_study, request)
    if held is None:
        stored: CatalogStudy = request.getfixturevalue("stored_synthetic")
        _, obj = instance_metadata_object(dicomweb, stored.multiframe)
        attribute = attribute_of(obj, "00280009", "FrameIncrementPointer")
        assert attribute.get("vr") == "AT", f"FrameIncrementPointer has vr {attribute.get('vr')!r}"
        assert attribute.get("Value") == ["00182001"], (
            f"FrameIncrementPointer is {attribute.get('Value')!r}, expected ['00182001']"
        )
        return
    instance = held_showing(held, "an attribute of VR AT", lambda ds: any(e.VR == "AT" for e in ds))
    _, obj = instance_metadata_object(dicomweb, instance)
    valued = {
        tag: a["Value"]
        for tag, a in obj.items()
        if isinstance(a, dict) and a.get("vr") == "AT" and isinstance(a.get("Value"), list)
    }
    if not valued:
        disabled(f"the held data lacks it: {instance.name}'s metadata gives no value of VR AT")
    bad = [
        f"{tag} = {values!r}"
        for tag, values in valued.items()
        if not all(isinstance(v, str) and HEX_TAG.fullmatch(v) for v in values)
    ]
    assert not bad, f"{instance.name}: AT values not 8 uppercase hex digits: {'; '.join(bad)}"


@pytest.mark.requirement("JSON-SQ-ITEMS")
def test_sequence_item_holds_the_stored_item_values(
    dicomweb: Client, held_study: str | None, request: pytest.FixtureRequest
) -> None:
    """RequestAttributesSequence (0040,0275): one item with the two procedure IDs. In a
    read-only run: the first sequence with items of a sampled instance, as many item objects as
    its metadata gave when sampled (the items' values as stored are the writing run's)."""
    held = held_sample(held_study, request)
    if held is None:
        stored: CatalogStudy = request.getfixturevalue("stored_synthetic")
        instance: DataInstance = stored.sequence
        tag, name, count = "00400275", "RequestAttributesSequence", 1
    else:
        instance = held_showing(held, "a sequence with items", lambda ds: bool(top_level(ds, "SQ")))
        tag = top_level(instance.dataset, "SQ")[0]
        element = instance.dataset[int(tag, 16)]
        name, count = element.keyword or tag, len(element.value)
    _, obj = instance_metadata_object(dicomweb, instance)
    attribute = attribute_of(obj, tag, name)
    assert attribute.get("vr") == "SQ", f"{name} has vr {attribute.get('vr')!r}"
    items = attribute.get("Value")
    assert (
        isinstance(items, list)
        and len(items) == count
        and all(isinstance(item, dict) for item in items)
    ), f"{name} should hold {count} item object(s), got {items!r}"
    if held is not None:
        return
    item = items[0]
    for tag, keyword, expected in (
        ("00401001", "RequestedProcedureID", stored.requested_procedure_id),
        ("00400009", "ScheduledProcedureStepID", stored.scheduled_procedure_step_id),
    ):
        got = item.get(tag)
        assert isinstance(got, dict) and got.get("Value") == [expected], (
            f"the item's {keyword} ({tag}) is {got!r}, expected Value [{expected!r}]"
        )


@pytest.mark.requirement("JSON-EMPTY-VALUE")
def test_empty_attributes_are_kept_without_value(dicomweb: Client, study_data: StudyData) -> None:
    """red-triangle's empty attributes (AccessionNumber, a Type 2 attribute, among them). Of a
    held study: those of the first sampled instance that has some, as its metadata gave them
    when sampled (an empty value sent as "Value": [] reads as empty there, and is caught here)."""
    red = first_instance(study_data)
    if isinstance(study_data, HeldStudy):
        red = held_showing(study_data, "an empty attribute", lambda ds: bool(empty_of(ds)))
    empty = empty_of(red.dataset)
    if not isinstance(red, HeldInstance):
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
    assert not bad, f"empty attributes of {red.name} not kept as {{vr}} alone: {'; '.join(bad)}"


def empty_of(ds: Dataset) -> list[Any]:
    return [e for e in ds if e.tag.group != 2 and e.VR != "SQ" and e.is_empty]


@pytest.mark.requirement("JSON-MULTIPLE-VALUES")
def test_multiple_values_are_separate_array_entries(
    dicomweb: Client, study_data: StudyData
) -> None:
    """red-triangle's ImageType DERIVED\\SECONDARY\\OTHER and PixelSpacing 1\\1. Of a held
    study, whose stored values are not the run's to know: of the first sampled instance that
    shows several values (or values joined), no value holds several joined by a backslash
    (PS3.5 6.2: the delimiter of values, in no value of these VRs)."""
    red = first_instance(study_data)
    if isinstance(study_data, HeldStudy):
        red = held_showing(study_data, "an attribute of several values", several_or_joined)
    _, obj = instance_metadata_object(dicomweb, red)
    if isinstance(red, HeldInstance):
        held_values_are_separate(obj, red.name)
        return
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


# Values of these VRs never hold a backslash: it delimits values (PS3.5 6.2).
DELIMITED_VRS = (STRING_VRS - TEXT_VRS) | {"DS", "IS"}


def several_or_joined(ds: Dataset) -> bool:
    """Whether a held instance's metadata, as sampled, shows several values of an attribute,
    or values joined in one (the instance the check then reads)."""
    return any(
        e.VM > 1 or (e.VR in DELIMITED_VRS and isinstance(e.value, str) and "\\" in e.value)
        for e in ds
        if e.VR != "SQ"
    )


def held_values_are_separate(obj: dict[str, Any], name: str) -> None:
    joined, several = [], []
    for tag, attribute in obj.items():
        values = attribute.get("Value") if isinstance(attribute, dict) else None
        if not isinstance(values, list):
            continue
        if len(values) > 1:
            several.append(tag)
        if attribute.get("vr") in DELIMITED_VRS and any(
            isinstance(v, str) and "\\" in v for v in values
        ):
            joined.append(f"{tag} = {json.dumps(values)}")
    assert not joined, (
        f"{name}: values joined by a backslash in one array entry: {'; '.join(joined[:SHOWN])}"
    )
    if not several:
        disabled(f"the held data lacks it: {name}'s metadata has no attribute of several values")


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
    client: Client, stored: StudyData | CatalogStudy, level: str, transcoded: bool
) -> list[dict[str, Any]]:
    """The metadata objects of the study's instances, as its study resource, its series' or its
    instances' answer them."""
    study = f"studies/{stored.study_uid}"
    paths = {
        "study": [study],
        "series": [f"{study}/series/{series}" for series in stored.series_uids],
        "instance": [path_of(instance) for instance in stored],
    }[level]
    objects = []
    for path in paths:
        response = expect.get_metadata(client, path, transcoded=transcoded)
        objects += Document(f"{level}-metadata", response, parse(response)).objects
    return objects


@pytest.mark.requirement("JSON-METADATA-EQUALS-STORED")
@pytest.mark.parametrize("of", list(METADATA_OF))
def test_metadata_values_equal_the_stored_values(
    dicomweb: Client, request: pytest.FixtureRequest, of: str
) -> None:
    """Every attribute of each instance's metadata equals the stored one, whichever resource
    answers it: the study's, each series', each instance's. The article's study is the data: in
    a read-only run the held study's sample, held to each sampled instance's metadata as read
    when sampling (the server's own word for what it stores; the study's other instances are
    not compared)."""
    study, level = METADATA_OF[of]
    stored: StudyData | CatalogStudy = request.getfixturevalue(
        "study_data" if study == "samples" else "stored_synthetic"
    )
    what = f"the study read ({stored.sampled})" if isinstance(stored, HeldStudy) else STUDIES[study]
    # The synthetic study holds a name stored in ISO_IR 126: a 406 is 8.8.5's (INFO).
    transcoded = study == "synthetic" or (
        isinstance(stored, HeldStudy)
        and any(i.dataset.get("SpecificCharacterSet", "") not in UTF8 for i in stored)
    )
    objects = metadata_objects_of(dicomweb, stored, level, transcoded=transcoded)
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
        f"{level} metadata of {what} differs from the stored instances in {len(wrong)} "
        f"attribute(s): {'; '.join(wrong[:8])}"
    )
    if coerced:
        expect.info(f"coerced on store, recorded in Original Attributes Sequence: {coerced}")
    if represented:
        expect.info(
            "attributes describing the pixel data differ, which 10.4.1.1.2's Note allows "
            f"(they may depend on the Representation): {represented[:SHOWN]}"
        )
