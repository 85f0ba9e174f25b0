"""The helpers of the retrieve checks (test_wado.py, test_wado_frames.py, test_wado_metadata.py):
what an answer holds (transfer syntax, pixels), how it compares with "the data" (the run's stored
instances, or a held instance by what the server's own metadata says of it), and which instance
of the data a check asks of (instance_with, frames_instance; DISABLED where the held data lacks
one)."""

from __future__ import annotations

import math
import struct
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Sequence
from typing import Any, NoReturn, cast

import pytest
import requests
from pydicom.dataset import Dataset

from conformance import expect, heldstudy
from conformance.client import Client
from conformance.dicomweb import (
    DICOM,
    MULTIPART_DICOM,
    SERIES_UID,
    SOP_UID,
    STUDY_UID,
    ProtocolError,
    dicom_accept,
    instance_path,
    media_type,
    parsed,
    part_media_type,
    parts,
    uids,
)
from conformance.heldstudy import (
    DataInstance,
    HeldInstance,
    HeldStudy,
    StudyData,
    first_instance,
    path_of,
)
from conformance.samples import Instance, SampleStudy, derive_uid
from conformance.synthetic import CatalogStudy
from conformance.verdicts import disabled

EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"


RLE_LOSSLESS = "1.2.840.10008.1.2.5"


MPEG2 = "1.2.840.10008.1.2.4.100"  # MPEG2 Main Profile / Main Level: no server makes it of an SC


MULTIPART = "multipart/related"


MULTIPART_OCTETS = 'multipart/related; type="application/octet-stream"'


DICOM_XML = "application/dicom+xml"


MULTIPART_XML = 'multipart/related; type="application/dicom+xml"'


JPEG, PNG, TEXT_HTML = "image/jpeg", "image/png", "text/html"


PIXEL_DATA = "7FE00010"


ABSENT_UID = derive_uid("wado-checks", "never-stored", "absent")  # valid, and stored by no one


NATIVE_DICOM_MODEL = "NativeDicomModel"


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# VRs whose JSON Value is the same string pydicom reads (PN and SQ are compared apart).
STRING_VRS = {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}


SPECIFIC_CHARACTER_SET = 0x00080005


def transfer_syntax(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    if meta is None or "TransferSyntaxUID" not in meta:
        raise ProtocolError(f"{ds.get('SOPInstanceUID', 'a part')} has no Transfer Syntax UID")
    return str(meta.TransferSyntaxUID)


def pixel_size(ds: Dataset) -> int:
    """Bytes of the uncompressed pixel data (all frames), without the even-length pad."""
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    return int(ds.Rows * ds.Columns * ds.SamplesPerPixel * (ds.BitsAllocated // 8) * frames)


def decoded_pixels(ds: Dataset, what: str) -> bytes | None:
    """The pixel bytes a dataset decodes to, whatever its transfer syntax (None: no pixels)."""
    if "PixelData" not in ds:
        return None
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        try:
            return bytes(ds.pixel_array.tobytes())
        except Exception as exc:  # pydicom raises many types for broken pixel data
            raise ProtocolError(f"{what}: its pixel data cannot be decoded: {exc}") from None
    return bytes(ds.PixelData[: pixel_size(ds)])


def assert_intact(got: Sequence[Dataset], stored: Sequence[DataInstance]) -> None:
    """Exactly the stored instances, each equal attribute for attribute outside group 0002;
    pixel data compared decoded (the transfer syntax may differ where the request allows).
    Instances of a held study: exactly those, each with every attribute its metadata gives (its
    bytes are not the run's to compare)."""
    by_uid = {i.sop_uid: i for i in stored}
    got_uids = [str(ds.get("SOPInstanceUID", "<no SOPInstanceUID>")) for ds in got]
    assert sorted(got_uids) == sorted(by_uid), (
        f"expected {len(by_uid)} instances {sorted(by_uid)}, got {len(got_uids)}: {got_uids}"
    )
    for ds in got:
        instance = by_uid[str(ds.SOPInstanceUID)]
        if isinstance(instance, HeldInstance):
            assert_as_its_metadata_says(ds, instance)
            continue
        diff = [d for d in expect.differences(ds, instance.dataset) if d != "PixelData"]
        assert not diff, f"{instance.name} differs from what was stored in: {diff}"
        got_pixels = decoded_pixels(ds, instance.name)
        want_pixels = decoded_pixels(instance.dataset, "stored")
        assert (got_pixels is None) == (want_pixels is None), (
            f"{instance.name}: Pixel Data is {'missing' if got_pixels is None else 'unexpected'}"
        )
        if got_pixels is not None and want_pixels is not None:
            expect.same_bytes(
                got_pixels,
                want_pixels,
                f"{instance.name}'s pixel data (retrieved in {transfer_syntax(ds)})",
            )


def assert_as_its_metadata_says(ds: Dataset, instance: HeldInstance) -> None:
    """A held instance as retrieved holds every attribute the server's metadata gives it, with
    the value given there, and those it gives as bulk data (their bytes unknown: not compared;
    group 0002 is not in the metadata): two answers of the server about one instance, which
    must agree (10.4.1.2). Without metadata, what its search result says of the instance
    itself (``HeldInstance.own``)."""
    diff = [
        e.keyword or str(e.tag)
        for e in instance.own()
        if e.tag.group != 2 and (e.tag not in ds or ds[e.tag].value != e.value)
    ]
    assert not diff, f"{instance.name} as retrieved differs from its metadata in: {diff}"
    missing = sorted(tag for tag in instance.bulk if int(tag, 16) not in ds)
    assert not missing, (
        f"{instance.name} as retrieved lacks what its metadata gives as bulk data: {missing}"
    )


def catalog_study(request: pytest.FixtureRequest, name: str) -> SampleStudy | CatalogStudy:
    """A stored study fixture by name, set up only by the checks that use it."""
    fixture = {"article": "stored_study", "synthetic": "stored_synthetic"}[name]
    return cast(SampleStudy | CatalogStudy, request.getfixturevalue(fixture))


def synthetic(request: pytest.FixtureRequest) -> CatalogStudy:
    return cast(CatalogStudy, request.getfixturevalue("stored_synthetic"))


def instance_named(request: pytest.FixtureRequest, name: str) -> Instance:
    """red-triangle (and the other samples) from the article's study, else a synthetic one."""
    if name in ("blue-circle", "green-square", "red-triangle"):
        return cast(Instance, request.getfixturevalue("stored_study")[name])
    return synthetic(request)[name]


def data_instance(request: pytest.FixtureRequest, name: str) -> DataInstance:
    """red-triangle: an instance of the data (study_data: in a read-only run a held one), else
    a synthetic one (the run's own; in a read-only run a held one with its feature)."""
    if name == "red-triangle":
        return first_instance(cast(StudyData, request.getfixturevalue("study_data")))
    return instance_with(request, name)


# The run's own instances some checks name, and what a held instance must show to stand in for
# each in a read-only run (heldstudy.FEATURES).
FEATURE_OF = {
    "red-triangle": "image",
    "multiframe": "multiframe",
    "compressed": "compressed",
    "no_pixels": "no_pixels",
}


def held_sample(request: pytest.FixtureRequest) -> HeldStudy | None:
    """The held study's sample in a read-only run; None in a writing run, whose checks use the
    run's own studies (study_data is not asked for there: it would store the article's)."""
    if request.getfixturevalue("held_study") is None:
        return None
    return cast(HeldStudy, request.getfixturevalue("study_data"))


def lacking(sample: HeldStudy, what: str) -> NoReturn:
    """The held data cannot answer this check or case: unjudged (DISABLED), never a FAIL."""
    disabled(f"the held data lacks {what} (sampled: {sample.sampled}): not judged on it")


def instance_with(request: pytest.FixtureRequest, name: str) -> DataInstance:
    """The run's own instance ``name`` in a writing run; in a read-only run a held one showing
    the feature the name stands for (FEATURE_OF), or the check is unjudged. A name standing
    for no feature (a character set, a sequence) is the run's own in either run."""
    sample = held_sample(request)
    if sample is None or name not in FEATURE_OF:
        return instance_named(request, name)
    feature = FEATURE_OF[name]
    found = heldstudy.with_feature(sample, feature)
    if found is None:
        lacking(sample, heldstudy.FEATURES[feature])
    return found


def held_series_member(sample: HeldStudy, member: str) -> HeldInstance:
    """red-triangle's series is the sample's first, blue-circle's its second; judged only
    where the sample holds the whole series (the answer is compared with all of it)."""
    ordinal = 0 if member == "red-triangle" else 1
    if len(sample.series_uids) <= ordinal:
        lacking(sample, "a second series")
    series_uid = sample.series_uids[ordinal]
    if not sample.is_whole(series_uid):
        lacking(sample, f"the whole of series {series_uid}")
    return sample.in_series(series_uid)[0]


def framing_target(
    request: pytest.FixtureRequest, resource: str, counted: bool = True
) -> tuple[str, int]:
    """The synthetic study, its character-set series or one instance, and its instance count.
    In a read-only run the held study, its first series or first instance: where the parts
    are ``counted`` (read to the end), only a study or series the sample holds whole."""
    sample = held_sample(request)
    if sample is not None:
        return held_framing_target(sample, resource, counted)
    study = synthetic(request)
    latin = study.charset_latin
    return {
        "study": (f"studies/{study.study_uid}", len(study)),
        "series": (f"studies/{latin.study_uid}/series/{latin.series_uid}", 3),
        "instance": (instance_path(latin), 1),
    }[resource]


def held_framing_target(sample: HeldStudy, resource: str, counted: bool) -> tuple[str, int]:
    first = sample.instances[0]
    if resource == "instance":
        return path_of(first), 1
    series_uid = first.series_uid
    whole = sample.is_whole() if resource == "study" else sample.is_whole(series_uid)
    if counted and not whole:
        lacking(sample, f"the whole {resource}")
    if resource == "study":
        return f"studies/{sample.study_uid}", len(sample)
    return f"studies/{sample.study_uid}/series/{series_uid}", len(sample.in_series(series_uid))


def whole_data(request: pytest.FixtureRequest) -> tuple[str, list[DataInstance]]:
    """The synthetic study and its instances; in a read-only run the held study if its sample
    is whole, else the sample's first whole series (a study is not read whole unbounded)."""
    sample = held_sample(request)
    if sample is None:
        study = synthetic(request)
        return f"studies/{study.study_uid}", list(study)
    if sample.is_whole():
        return f"studies/{sample.study_uid}", list(sample)
    series_uid = next((s for s in sample.series_uids if sample.is_whole(s)), None)
    if series_uid is None:
        lacking(sample, "a whole series")
    return f"studies/{sample.study_uid}/series/{series_uid}", list(sample.in_series(series_uid))


def uncompressed_frame(client: Client, instance: HeldInstance, number: int) -> bytes:
    """Frame ``number`` of a held image as the server sends the whole instance in Explicit VR
    Little Endian: what its frames resource must agree with (the stored bytes are not known)."""
    pixels = uncompressed_pixels(client, instance)
    size = len(pixels) // heldstudy.number_of_frames(instance)
    return pixels[(number - 1) * size : number * size]


def uncompressed_pixels(client: Client, instance: HeldInstance) -> bytes:
    """A held image's pixel bytes (all frames) as the server sends the instance in Explicit VR
    Little Endian; not sent so, the check that compares with them cannot judge (ERROR)."""
    got = list(expect.retrieved(client, path_of(instance), dicom_accept(EXPLICIT_VR_LE)))
    expect.precondition(
        len(got) == 1 and transfer_syntax(got[0]) == EXPLICIT_VR_LE and "PixelData" in got[0],
        f"{instance.name} in {EXPLICIT_VR_LE}, to compare its pixel data with, was not sent",
    )
    return bytes(got[0].PixelData[: pixel_size(got[0])])


def is_multipart_dicom(response: requests.Response) -> bool:
    kind, params = media_type(response)
    return kind == MULTIPART and parsed(params.get("type", "x/x"), "the type parameter")[0] == DICOM


def assert_default_parts(got: Sequence[Dataset], instance: DataInstance) -> None:
    """The instance, alone, in the default transfer syntax (8.7.3.4), intact."""
    assert [transfer_syntax(ds) for ds in got] == [EXPLICIT_VR_LE], (
        f"expected one part in the default {EXPLICIT_VR_LE}, got "
        f"{[transfer_syntax(ds) for ds in got]}"
    )
    assert_intact(got, [instance])


def assert_default_representation(
    client: Client, response: requests.Response, instance: DataInstance
) -> None:
    """multipart/related; type="application/dicom" in Explicit VR Little Endian, intact."""
    expect.status(response, 200)
    assert is_multipart_dicom(response), (
        f"the default media type is {MULTIPART_DICOM}, got {response.headers.get('Content-Type')!r}"
    )
    assert_default_parts(expect.dicom_parts(client, response), instance)


def refused_or_default(
    client: Client, response: requests.Response, instance: DataInstance, why: str
) -> None:
    """An Accept with nothing the instance has: 406 (8.7.8.1) or the default representation
    (Table 8.7.3-1, 8.7.3.1), the reading recorded; anything else fits neither."""
    if expect.chose_406(response):
        return
    expect.status(response, 200, 406, why=why)
    assert_default_representation(client, response, instance)
    expect.chose("default-media-type")


def several_instances(
    request: pytest.FixtureRequest, resource: str
) -> tuple[str, list[DataInstance]]:
    """The synthetic study, or its character-set series, and the instances it holds. In a
    read-only run the held study, or a series of several instances, that the sample holds whole
    (the answer is compared with all of it)."""
    sample = held_sample(request)
    if sample is not None:
        return held_several(sample, resource)
    study = synthetic(request)
    latin = study.charset_latin
    if resource == "study":
        return f"studies/{latin.study_uid}", list(study)
    series = f"studies/{latin.study_uid}/series/{latin.series_uid}"
    return series, list(study.in_series(latin.series_uid))


def held_several(sample: HeldStudy, resource: str) -> tuple[str, list[DataInstance]]:
    if resource == "study":
        if not sample.is_whole():
            lacking(sample, "the whole study")
        return f"studies/{sample.study_uid}", list(sample)
    whole = [s for s in sample.series_uids if sample.is_whole(s) and len(sample.in_series(s)) > 1]
    if not whole:
        lacking(sample, "a whole series of several instances")
    return f"studies/{sample.study_uid}/series/{whole[0]}", list(sample.in_series(whole[0]))


def xml_sop_uids(client: Client, response: requests.Response) -> list[str]:
    """The SOP Instance UID (0008,0018) of each application/dicom+xml part."""
    found = []
    for number, part in enumerate(parts(client, response), 1):
        kind = part_media_type(part, number)[0]
        assert kind == DICOM_XML, f"part {number} is {kind}, not {DICOM_XML}"
        try:
            root = ET.fromstring(part.body)
        except ET.ParseError as exc:
            raise ProtocolError(f"part {number} is not XML: {exc}") from None
        assert root.tag.endswith(NATIVE_DICOM_MODEL), f"part {number}'s root is {root.tag}"
        sop = [
            value.text or ""
            for attribute in root
            if attribute.tag.endswith("DicomAttribute") and attribute.get("tag") == SOP_UID
            for value in attribute
            if value.tag.endswith("Value")
        ]
        assert len(sop) == 1, f"part {number} has SOPInstanceUID values {sop}"
        found.append(sop[0].strip())
    return found


def not_found_path(template: str, study: StudyData, request: pytest.FixtureRequest) -> str:
    """The path of a case under an instance of the data (red-triangle of the article's study);
    "another series" is the data's other one (blue-circle's), "another study" the synthetic
    one (so that case needs the run's own: DISABLED in a read-only run)."""
    red = first_instance(study)
    fields = {"absent": ABSENT_UID, "study": red.study_uid, "series": red.series_uid}
    fields["sop"] = red.sop_uid
    if "{blue_series}" in template:
        others = [uid for uid in study.series_uids if uid != red.series_uid]
        if not others:
            disabled("a read-only run: the study it reads shows it one series, no other")
        fields["blue_series"] = others[0]
    if "{other_study}" in template:
        fields["other_study"] = synthetic(request).study_uid
    return template.format(**fields)


def assert_client_error(response: requests.Response, why: str) -> None:
    """A 4xx: the standard prescribes no code here, only that the user agent erred (Table 8.5-1)."""
    assert 400 <= response.status_code < 500, (
        f"{expect.request_line(response)}: expected a client error (4xx), got "
        f"{response.status_code} {response.reason} ({why})"
    )


def pixel_data_uri(response: requests.Response) -> str | None:
    """The BulkDataURI the first metadata object gives Pixel Data, if it gives one."""
    try:
        objects = response.json()
    except ValueError:
        return None
    first = objects[0] if isinstance(objects, list) and objects else None
    attribute = first.get(PIXEL_DATA) if isinstance(first, dict) else None
    uri = attribute.get("BulkDataURI") if isinstance(attribute, dict) else None
    return uri if isinstance(uri, str) else None


def frames_instance(request: pytest.FixtureRequest) -> DataInstance:
    """The run's multi-frame image; in a read-only run a held multi-frame image, else any held
    image (frame 1 of every image is there), else the check is unjudged."""
    sample = held_sample(request)
    if sample is None:
        return synthetic(request).multiframe
    found = heldstudy.with_feature(sample, "multiframe") or heldstudy.with_feature(sample, "image")
    if found is None:
        lacking(sample, "an image")
    return found


def assert_describes(objects: list[dict[str, Any]], expected: Sequence[DataInstance]) -> None:
    got = uids(objects, SOP_UID)
    assert sorted(got, key=str) == sorted(i.sop_uid for i in expected), (
        f"metadata describes {len(got)} SOP instances {got}, expected {len(expected)}: "
        f"{sorted(i.sop_uid for i in expected)}"
    )
    by_uid = {i.sop_uid: i for i in expected}
    for obj in objects:
        instance = by_uid[uids([obj], SOP_UID)[0]]
        found = (uids([obj], STUDY_UID)[0], uids([obj], SERIES_UID)[0])
        assert found == (instance.study_uid, instance.series_uid), (
            f"{instance.name}: metadata names study and series {found}"
        )


def instance_metadata(client: Client, instance: DataInstance) -> dict[str, Any]:
    objects = expect.metadata_objects(client, path_of(instance))
    assert_describes(objects, [instance])
    return objects[0]


def png_size(body: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, after checking every chunk's CRC and the inflated image size."""
    if not body.startswith(PNG_MAGIC):
        raise ProtocolError(f"not a PNG: it starts {body[:8]!r}")
    pos, header, image = len(PNG_MAGIC), None, b""
    while True:
        if pos + 12 > len(body):
            raise ProtocolError(f"the PNG ends at byte {len(body)} without an IEND chunk")
        length, kind = struct.unpack(">I4s", body[pos : pos + 8])
        data = body[pos + 8 : pos + 8 + length]
        crc = body[pos + 8 + length : pos + 12 + length]
        if len(data) != length or len(crc) != 4:
            raise ProtocolError(f"the PNG's {kind!r} chunk is cut short")
        if zlib.crc32(kind + data) != struct.unpack(">I", crc)[0]:
            raise ProtocolError(f"the PNG's {kind!r} chunk fails its CRC")
        if header is None and kind != b"IHDR":
            raise ProtocolError(f"the PNG's first chunk is {kind!r}, not IHDR")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", data)
        elif kind == b"IDAT":
            image += data
        elif kind == b"IEND":
            break
        pos += 12 + length
    assert header is not None
    width, height, depth, colour, _, _, interlace = header
    try:
        raw = zlib.decompress(image)
    except zlib.error as exc:
        raise ProtocolError(f"the PNG's image data does not inflate: {exc}") from None
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour)
    if channels is None:
        raise ProtocolError(f"the PNG has colour type {colour}")
    if interlace == 0:
        row = 1 + math.ceil(width * channels * depth / 8)
        if len(raw) != height * row:
            raise ProtocolError(f"the PNG's image data is {len(raw)} bytes, not {height * row}")
    return width, height
