"""WADO-RS metadata (PS3.18 10.4, Table 10.3-2): study, series and instance metadata as DICOM
JSON, every stored attribute in it, bulk data by reference, the media types it answers in.

The checks of the article's study ask their questions of "the data" (fixture study_data): the
run's stored study, or in a read-only run a sample of the first study it reads. Of a held study
the reference is what the server's own searches list and its instance metadata says: metadata
describes the instances the searches list (all of them where the sample is whole, else at least
the sampled ones, each once), and its values equal the instance search's for the attributes both
carry. A synthetic instance's case reads a sampled instance of its kind (multi-frame, without
pixels, compressed) where the sample has one, else is left unjudged. What only the stored bytes
can tell (every stored attribute there, InlineBinary's bytes) is the writing run's.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, cast

import pytest
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName

from conformance import expect
from conformance.annexf import BINARY_VRS, same_value
from conformance.checks.test_wado import (
    SERIES,
)
from conformance.checks.wadodata import (
    DICOM_XML,
    MULTIPART,
    MULTIPART_XML,
    PIXEL_DATA,
    SPECIFIC_CHARACTER_SET,
    STRING_VRS,
    assert_describes,
    catalog_study,
    instance_metadata,
    instance_named,
    pixel_size,
    xml_sop_uids,
)
from conformance.client import Client
from conformance.dicomweb import (
    DICOM_JSON,
    SERIES_UID,
    SOP_UID,
    STUDY_UID,
    ProtocolError,
    json_array,
    media_type,
    metadata,
    retrieve,
    search,
    uids,
)
from conformance.heldstudy import (
    FEATURES,
    DataInstance,
    HeldInstance,
    HeldStudy,
    StudyData,
    first_instance,
    is_whole,
    path_of,
    with_feature,
)
from conformance.samples import Instance
from conformance.synthetic import CATALOG_NAMES, CatalogStudy
from conformance.verdicts import disabled

# --- the data: the run's stored studies, or a sample of the study a read-only run reads ------


def held_sample(request: pytest.FixtureRequest) -> HeldStudy | None:
    """The sample of the study a read-only run reads; None in a run that stores its own."""
    if request.getfixturevalue("held_study") is None:
        return None
    return cast(HeldStudy, request.getfixturevalue("study_data"))


def held_instance(held: HeldStudy, kind: str) -> HeldInstance:
    """The first held instance of a kind (heldstudy.FEATURES); without one, the case is left
    unjudged."""
    found = with_feature(held, kind)
    if found is None:
        disabled(
            f"the held data lacks it: the study read ({held.sampled}) shows none of what the case "
            f"needs: {FEATURES[kind]}"
        )
    return found


def metadata_instance(
    request: pytest.FixtureRequest, name: str, image: bool = False
) -> DataInstance:
    """red-triangle: an instance of the data (``image``: the first sampled image of a held
    study); a synthetic one by name, or in a read-only run a sampled instance of its kind."""
    held = held_sample(request)
    if held is None:
        return instance_named(request, name)
    if name == "red-triangle":
        return held_instance(held, "image") if image else first_instance(held)
    if name in FEATURES:
        return held_instance(held, name)
    return instance_named(request, name)  # the run's own: DISABLED in a read-only run


def assert_describes_data(
    objects: list[dict[str, Any]], expected: Sequence[DataInstance], whole: bool, where: str
) -> None:
    """The objects describe exactly the expected instances (``whole``), or, where the data is a
    sample of a larger study, each sampled instance once, no instance twice, and none outside
    ``where`` (a study or series UID)."""
    if whole:
        assert_describes(objects, cast(Sequence[Instance], expected))
        return
    got = uids(objects, SOP_UID)
    repeated = sorted({str(uid) for uid in got if got.count(uid) > 1})
    assert not repeated, f"metadata describes SOP instances more than once: {repeated}"
    missing = sorted({i.sop_uid for i in expected} - set(got))
    assert not missing, (
        f"metadata leaves out {len(missing)} of the {len(expected)} sampled instances the "
        f"searches list: {missing}"
    )
    assert_describes(
        [o for o in objects if first_of(o, SOP_UID) in {i.sop_uid for i in expected}],
        cast(Sequence[Instance], expected),
    )
    level = STUDY_UID if where == expected[0].study_uid else SERIES_UID
    outside = [uid for obj in objects if (uid := first_of(obj, level)) != where]
    assert not outside, f"metadata of {where} describes instances of {sorted(map(str, outside))}"


def first_of(obj: dict[str, Any], tag: str) -> Any:
    return uids([obj], tag)[0]


# --- metadata ---------------------------------------------------------------------------------


@pytest.mark.requirement("WADO-METADATA-STUDY")
@pytest.mark.parametrize("study", ["article", "synthetic"])
def test_study_metadata_describes_every_instance_once(
    dicomweb: Client, request: pytest.FixtureRequest, study: str
) -> None:
    """The article's study: the data (in a read-only run, the held study's sample)."""
    stored = data_study(request, study)
    objects = expect.metadata_objects(dicomweb, f"studies/{stored.study_uid}")
    assert_describes_data(objects, list(stored), whole_data(stored), stored.study_uid)


def data_study(request: pytest.FixtureRequest, study: str) -> StudyData | CatalogStudy:
    """The article's study is the data (study_data); the synthetic one the run's own."""
    if study == "article":
        return cast(StudyData, request.getfixturevalue("study_data"))
    return catalog_study(request, study)


def whole_data(study: StudyData | CatalogStudy, series_uid: str | None = None) -> bool:
    return is_whole(study, series_uid) if isinstance(study, HeldStudy) else True


@pytest.mark.requirement("WADO-METADATA-SERIES")
@pytest.mark.parametrize("series", list(SERIES))
def test_series_metadata_describes_only_that_series(
    dicomweb: Client, request: pytest.FixtureRequest, series: str
) -> None:
    """Of a held study: its first sampled series (red-triangle's), its second (blue-circle's)."""
    study_name, member = SERIES[series]
    stored = data_study(request, study_name)
    if isinstance(stored, HeldStudy):
        order = ["green-square+red-triangle", "blue-circle"].index(series)
        if len(stored.series_uids) <= order:
            disabled(
                f"the held data lacks it: the study read shows it one series ({stored.sampled})"
            )
        one: DataInstance = stored.in_series(stored.series_uids[order])[0]
    else:
        one = stored[member]
    objects = expect.metadata_objects(dicomweb, f"studies/{one.study_uid}/series/{one.series_uid}")
    whole = whole_data(stored, one.series_uid)
    assert_describes_data(objects, stored.in_series(one.series_uid), whole, one.series_uid)


@pytest.mark.requirement("WADO-METADATA-INSTANCE")
@pytest.mark.parametrize("name", ["red-triangle", "multiframe", "no_pixels"])
def test_instance_metadata_describes_that_instance(
    dicomweb: Client, request: pytest.FixtureRequest, name: str
) -> None:
    instance = metadata_instance(request, name)
    objects = expect.metadata_objects(dicomweb, path_of(instance))
    assert_describes(objects, [cast(Instance, instance)])


@pytest.mark.requirement("WADO-METADATA-ALL-ATTRIBUTES")
@pytest.mark.parametrize("name", ["red-triangle", *CATALOG_NAMES])
def test_metadata_has_every_stored_attribute(
    dicomweb: Client, request: pytest.FixtureRequest, name: str
) -> None:
    instance = instance_named(request, name)
    obj = instance_metadata(dicomweb, instance)
    stored = {
        f"{int(e.tag):08X}": e.keyword or str(e.tag)
        for e in instance.dataset
        if e.tag.group != 2 and e.tag.element != 0
    }
    missing = [stored[tag] for tag in sorted(set(stored) - set(obj))]
    assert not missing, f"{instance.name}: metadata drops attributes {missing}"


@pytest.mark.requirement("WADO-METADATA-PIXEL-DATA")
@pytest.mark.parametrize("name", ["red-triangle", "multiframe", "compressed"])
def test_metadata_keeps_pixel_data_as_bulk_data(
    dicomweb: Client, request: pytest.FixtureRequest, name: str
) -> None:
    """Of a held study: a sampled image for red-triangle, an instance of each kind for the
    others. Whether an InlineBinary holds the pixels is the stored bytes' (writing run)."""
    instance = metadata_instance(request, name, image=True)
    obj = instance_metadata(dicomweb, cast(Instance, instance))
    assert PIXEL_DATA in obj, f"{instance.name}: metadata has no Pixel Data (7FE0,0010)"
    attribute = obj[PIXEL_DATA]
    assert isinstance(attribute, dict), f"Pixel Data is {attribute!r}"
    forms = sorted(set(attribute) & {"BulkDataURI", "InlineBinary"})
    assert len(forms) == 1, (
        f"{instance.name}: Pixel Data has {sorted(attribute)}, expected BulkDataURI or InlineBinary"
    )
    if isinstance(instance, HeldInstance):
        return
    if forms == ["InlineBinary"] and not instance.dataset.file_meta.TransferSyntaxUID.is_compressed:
        inline = base64.b64decode(attribute["InlineBinary"])
        size = pixel_size(instance.dataset)
        expect.same_bytes(inline[:size], instance.dataset.PixelData[:size], "InlineBinary")


def json_strings(attribute: Any) -> list[Any]:
    found = attribute.get("Value", []) if isinstance(attribute, dict) else None
    if not isinstance(found, list):
        raise ProtocolError(f"attribute {attribute!r} has no Value array")
    return found


def person_name(value: PersonName) -> dict[str, str]:
    groups = {
        "Alphabetic": value.alphabetic,
        "Ideographic": value.ideographic,
        "Phonetic": value.phonetic,
    }
    return {k: v for k, v in groups.items() if v}


def value_differences(ds: Dataset, obj: dict[str, Any], where: str) -> list[str]:
    """Text, name and sequence values of ``ds`` that ``obj`` (DICOM JSON) does not repeat."""
    diffs: list[str] = []
    for element in ds:
        tag = f"{int(element.tag):08X}"
        name = f"{where}{element.keyword or tag}"
        if element.tag == SPECIFIC_CHARACTER_SET or element.tag.group == 2:
            continue
        if element.VR not in STRING_VRS | {"PN", "SQ"} or element.value in (None, "", []):
            continue
        if tag not in obj:
            diffs.append(f"{name} missing")
            continue
        got = json_strings(obj[tag])
        if element.VR == "SQ":
            if len(got) != len(element.value):
                diffs.append(f"{name} has {len(got)} items, stored {len(element.value)}")
                continue
            for number, (item, item_obj) in enumerate(zip(element.value, got, strict=True), 1):
                if not isinstance(item_obj, dict):
                    raise ProtocolError(f"{name} item {number} is not an object")
                diffs += value_differences(item, item_obj, f"{name}[{number}].")
            continue
        stored = list(element.value) if isinstance(element.value, MultiValue) else [element.value]
        if element.VR == "PN":
            want: list[Any] = [person_name(v) for v in stored]
            got = [{k: v for k, v in g.items() if v} if isinstance(g, dict) else g for g in got]
        else:
            want = [str(v) for v in stored]
        if got != want:
            diffs.append(f"{name}: {got!r}, stored {want!r}")
    return diffs


@pytest.mark.requirement("WADO-METADATA-VALUES")
@pytest.mark.parametrize(
    "name",
    [
        "red-triangle",
        "charset_latin",
        "charset_ideographic",
        "charset_greek",
        "no_pixels",
        "sequence",
    ],
)
def test_metadata_values_equal_the_stored_ones(
    dicomweb: Client, request: pytest.FixtureRequest, name: str
) -> None:
    """Of a held instance (red-triangle's case) the stored values are not the run's to know:
    its metadata is held to the instance search's answer for the attributes both carry."""
    instance = metadata_instance(request, name)
    obj = instance_metadata(dicomweb, cast(Instance, instance))
    if isinstance(instance, HeldInstance):
        result = instance_search_result(dicomweb, instance)
        diffs = shared_differences(obj, result)
        assert not diffs, (
            f"{instance.name}: metadata and the instance search (includefield=all) give "
            f"different values: {diffs[:SHOWN]}"
        )
        return
    diffs = value_differences(instance.dataset, obj, "")
    assert not diffs, f"{instance.name}: metadata values differ: {diffs}"


SHOWN = 5
# Attributes whose value is the answer's own, not the instance's: a URL of the resource asked
# (a search may give its level's), the character set of the answer (both are UTF-8, 8.8.5).
NOT_THE_INSTANCES = frozenset({"00081190", "00080005"})


def instance_search_result(client: Client, instance: HeldInstance) -> dict[str, Any]:
    """The one result of a search of the instance's series for it, with every attribute the
    server gives; an answer that is not one result leaves the check unjudged (the search
    checks judge it)."""
    response = search(
        client,
        f"studies/{instance.study_uid}/series/{instance.series_uid}/instances",
        ("includefield", "all"),
        SOPInstanceUID=instance.sop_uid,
    )
    expect.answered(response, 200)
    try:
        results = json_array(response)
    except ProtocolError as exc:
        raise expect.PreconditionFailed(f"{expect.request_line(response)}: {exc}") from None
    expect.precondition(
        len(results) == 1, f"{expect.request_line(response)}: {len(results)} results, not one"
    )
    return results[0]


def shared_differences(obj: dict[str, Any], result: dict[str, Any]) -> list[str]:
    """The top-level attributes both carry with a value whose values differ (VR by VR as Annex
    F compares them; bulk data and sequences left to the checks of each)."""
    diffs = []
    for tag in sorted(set(obj) & set(result) - NOT_THE_INSTANCES):
        mine, theirs = obj[tag], result[tag]
        if not isinstance(mine, dict) or not isinstance(theirs, dict):
            continue  # not an attribute object: the JSON shape checks' to judge
        vr = mine.get("vr")
        if vr in BINARY_VRS | {"SQ"} or not all("Value" in a for a in (mine, theirs)):
            continue  # bulk data, a sequence, or an empty value in one of them
        got, want = theirs.get("Value"), mine.get("Value")
        if not isinstance(got, list) or not isinstance(want, list):
            continue  # not an array: JSON-VALUE-ARRAY's
        same = len(got) == len(want) and all(
            same_value(str(vr), a, b) for a, b in zip(got, want, strict=True)
        )
        if not same:
            diffs.append(f"{tag}: metadata {want!r}, search {got!r}")
    return diffs


@pytest.mark.requirement("WADO-METADATA-DEFAULT-JSON")
def test_metadata_default_media_type_is_dicom_json(dicomweb: Client, study_data: StudyData) -> None:
    red = first_instance(study_data)
    response = metadata(dicomweb, path_of(red), "*/*")
    if response.status_code in expect.ROUTE_ABSENT:
        expect.not_implemented(f"no metadata resource: it answered {response.status_code}")
    expect.status(response, 200)
    kind = media_type(response)[0]
    assert kind == DICOM_JSON, f"Accept */* on metadata was answered with {kind}, not {DICOM_JSON}"
    assert_describes(json_array(response), [cast(Instance, red)])


@pytest.mark.requirement("WADO-METADATA-XML")
@pytest.mark.parametrize("resource", ["instance", "study"])
def test_metadata_as_dicom_xml(
    dicomweb: Client, request: pytest.FixtureRequest, resource: str
) -> None:
    """Of the synthetic study (charset_latin, the instance), or in a read-only run of the held
    study (its first sampled instance; at least the sampled ones where it is a sample)."""
    held = held_sample(request)
    study: StudyData | CatalogStudy = held or catalog_study(request, "synthetic")
    latin = first_instance(held) if held is not None else cast(CatalogStudy, study).charset_latin
    expected: list[DataInstance] = [latin] if resource == "instance" else list(study)
    path = path_of(latin) if resource == "instance" else f"studies/{latin.study_uid}"
    # Without metadata at all, NOT-IMPLEMENTED: XML is Required.
    expect.get_metadata(dicomweb, path_of(latin), needed=True)
    response = retrieve(dicomweb, f"{path}/metadata", MULTIPART_XML)
    expect.status(response, 200, why=f"{MULTIPART_XML} is Required for metadata (Table 10.4.4-1)")
    kind, params = media_type(response)
    assert kind == MULTIPART and params.get("type") == DICOM_XML, (
        f"expected {MULTIPART_XML}, got {response.headers.get('Content-Type')!r}"
    )
    found = xml_sop_uids(dicomweb, response)
    if resource == "study" and not whole_data(study):
        missing = sorted({i.sop_uid for i in expected} - set(found))
        assert not missing, f"XML metadata leaves out sampled instances {missing}"
        return
    assert sorted(found) == sorted(i.sop_uid for i in expected), (
        f"XML metadata describes {found}, expected {[i.sop_uid for i in expected]}"
    )
