"""WADO-RS metadata (PS3.18 10.4, Table 10.3-2): study, series and instance metadata as DICOM
JSON, every stored attribute in it, bulk data by reference, the media types it answers in.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName

from conformance import expect
from conformance.checks.test_wado import (
    DICOM_XML,
    MULTIPART,
    MULTIPART_XML,
    PIXEL_DATA,
    SERIES,
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
    ProtocolError,
    instance_path,
    json_array,
    media_type,
    metadata,
    retrieve,
)
from conformance.samples import SampleStudy
from conformance.synthetic import CATALOG_NAMES, CatalogStudy

# --- metadata ---------------------------------------------------------------------------------


@pytest.mark.requirement("WADO-METADATA-STUDY")
@pytest.mark.parametrize("study", ["article", "synthetic"])
def test_study_metadata_describes_every_instance_once(
    dicomweb: Client, request: pytest.FixtureRequest, study: str
) -> None:
    stored = catalog_study(request, study)
    assert_describes(expect.metadata_objects(dicomweb, f"studies/{stored.study_uid}"), list(stored))


@pytest.mark.requirement("WADO-METADATA-SERIES")
@pytest.mark.parametrize("series", list(SERIES))
def test_series_metadata_describes_only_that_series(
    dicomweb: Client, request: pytest.FixtureRequest, series: str
) -> None:
    study_name, member = SERIES[series]
    stored = catalog_study(request, study_name)
    one = stored[member]
    objects = expect.metadata_objects(dicomweb, f"studies/{one.study_uid}/series/{one.series_uid}")
    assert_describes(objects, stored.in_series(one.series_uid))


@pytest.mark.requirement("WADO-METADATA-INSTANCE")
@pytest.mark.parametrize("name", ["red-triangle", "multiframe", "no_pixels"])
def test_instance_metadata_describes_that_instance(
    dicomweb: Client, request: pytest.FixtureRequest, name: str
) -> None:
    instance = instance_named(request, name)
    assert_describes(expect.metadata_objects(dicomweb, instance_path(instance)), [instance])


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
    instance = instance_named(request, name)
    obj = instance_metadata(dicomweb, instance)
    assert PIXEL_DATA in obj, f"{instance.name}: metadata has no Pixel Data (7FE0,0010)"
    attribute = obj[PIXEL_DATA]
    assert isinstance(attribute, dict), f"Pixel Data is {attribute!r}"
    forms = sorted(set(attribute) & {"BulkDataURI", "InlineBinary"})
    assert len(forms) == 1, (
        f"{instance.name}: Pixel Data has {sorted(attribute)}, expected BulkDataURI or InlineBinary"
    )
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
    instance = instance_named(request, name)
    obj = instance_metadata(dicomweb, instance)
    diffs = value_differences(instance.dataset, obj, "")
    assert not diffs, f"{instance.name}: metadata values differ: {diffs}"


@pytest.mark.requirement("WADO-METADATA-DEFAULT-JSON")
def test_metadata_default_media_type_is_dicom_json(
    dicomweb: Client, stored_study: SampleStudy
) -> None:
    red = stored_study.red
    response = metadata(dicomweb, instance_path(red), "*/*")
    if response.status_code in expect.ROUTE_ABSENT:
        expect.not_implemented(f"no metadata resource: it answered {response.status_code}")
    expect.status(response, 200)
    kind = media_type(response)[0]
    assert kind == DICOM_JSON, f"Accept */* on metadata was answered with {kind}, not {DICOM_JSON}"
    assert_describes(json_array(response), [red])


@pytest.mark.requirement("WADO-METADATA-XML")
@pytest.mark.parametrize("resource", ["instance", "study"])
def test_metadata_as_dicom_xml(
    dicomweb: Client, stored_synthetic: CatalogStudy, resource: str
) -> None:
    latin = stored_synthetic.charset_latin
    path, expected = {
        "instance": (instance_path(latin), [latin]),
        "study": (f"studies/{latin.study_uid}", list(stored_synthetic)),
    }[resource]
    # Without metadata at all, NOT-IMPLEMENTED: XML is Required.
    expect.get_metadata(dicomweb, instance_path(latin), needed=True)
    response = retrieve(dicomweb, f"{path}/metadata", MULTIPART_XML)
    expect.status(response, 200, why=f"{MULTIPART_XML} is Required for metadata (Table 10.4.4-1)")
    kind, params = media_type(response)
    assert kind == MULTIPART and params.get("type") == DICOM_XML, (
        f"expected {MULTIPART_XML}, got {response.headers.get('Content-Type')!r}"
    )
    found = xml_sop_uids(dicomweb, response)
    assert sorted(found) == sorted(i.sop_uid for i in expected), (
        f"XML metadata describes {found}, expected {[i.sop_uid for i in expected]}"
    )
