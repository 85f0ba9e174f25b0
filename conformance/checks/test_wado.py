"""WADO-RS, the Retrieve transaction (PS3.18 10.4), and the media-type rules it lives by (8.7).
Metadata is test_wado_metadata.py's; bulk data, frames and rendered resources test_wado_frames.py's;
both take their shared helpers from here.

Every check compares what comes back with what was stored: instance counts and UIDs, every
attribute outside group 0002, pixel bytes (decoded, so a server may pick the transfer syntax where
the request lets it), the bytes of each frame. Retrieves use the read-only stored studies: the
article's three instances and the synthetic study (multi-frame, RLE Lossless, an SR without pixel
data, three character sets, a sequence).

Metadata, rendered, frames and bulkdata resources are mandatory (Table 10.3-2): one check asks
each once and FAILs the missing ones; the detailed checks of each are NOT-IMPLEMENTED when it is
absent (404/405/501), so an absence is judged once. Thumbnails and single-part application/dicom
are optional; the accept query parameter and DICOM XML metadata are not. Where the standard
answers one request two ways (406 or the default media type), a check passes each reading and
records which one the server chose. Annex F's JSON model (key order, VR typing) is checked
elsewhere: here metadata is judged by what it says.

The checks that need only an instance to exist (what is not there, malformed UIDs, Accept
negotiation on an instance) ask their questions of "the data" (fixture study_data): the run's
stored article study, or in a read-only run a sample of the first study it reads. Of a held
instance only its identity can be judged (the parts are that instance): whether it is intact
needs the stored bytes, so that half is the writing run's.
"""

from __future__ import annotations

import math
import struct
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Sequence
from typing import Any, cast

import pytest
import requests
from pydicom.dataset import Dataset

from conformance import expect
from conformance.client import Client
from conformance.dicomweb import (
    ACCEPT_DICOM_ANY_TS,
    DICOM,
    DICOM_JSON,
    MULTIPART_DICOM,
    OCTET_STREAM,
    SERIES_UID,
    SOP_UID,
    STUDY_UID,
    ProtocolError,
    declared_media_type,
    dicom_accept,
    instance_path,
    media_type,
    metadata,
    parsed,
    part_media_type,
    parts,
    read_dicom,
    retrieve,
    uids,
)
from conformance.heldstudy import DataInstance, HeldInstance, StudyData, first_instance, path_of
from conformance.samples import Instance, SampleStudy, derive_uid
from conformance.synthetic import CATALOG_NAMES, CatalogStudy, compressed_pixels
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
    Instances of a held study: exactly those (their bytes are not the run's to compare)."""
    by_uid = {i.sop_uid: i for i in stored}
    got_uids = [str(ds.get("SOPInstanceUID", "<no SOPInstanceUID>")) for ds in got]
    assert sorted(got_uids) == sorted(by_uid), (
        f"expected {len(by_uid)} instances {sorted(by_uid)}, got {len(got_uids)}: {got_uids}"
    )
    if any(isinstance(i, HeldInstance) for i in stored):
        return
    for ds in got:
        instance = by_uid[str(ds.SOPInstanceUID)]
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
    a synthetic one (the run's own)."""
    if name == "red-triangle":
        return first_instance(cast(StudyData, request.getfixturevalue("study_data")))
    return instance_named(request, name)


# --- instance resources: the right instances, intact ------------------------------------------


@pytest.mark.requirement("WADO-STUDY-ALL-INSTANCES")
@pytest.mark.parametrize("study", ["article", "synthetic"])
def test_study_retrieve_returns_every_instance(
    dicomweb: Client, request: pytest.FixtureRequest, study: str
) -> None:
    stored = catalog_study(request, study)
    got = list(expect.retrieved(dicomweb, f"studies/{stored.study_uid}", ACCEPT_DICOM_ANY_TS))
    assert_intact(got, list(stored))


SERIES = {
    "green-square+red-triangle": ("article", "red-triangle"),
    "blue-circle": ("article", "blue-circle"),
    "charset_latin+charset_ideographic+charset_greek": ("synthetic", "charset_latin"),
}


@pytest.mark.requirement("WADO-SERIES-ONLY-ITS-INSTANCES")
@pytest.mark.parametrize("series", list(SERIES))
def test_series_retrieve_returns_only_that_series(
    dicomweb: Client, request: pytest.FixtureRequest, series: str
) -> None:
    study_name, member = SERIES[series]
    stored = catalog_study(request, study_name)
    one = stored[member]
    got = list(
        expect.retrieved(
            dicomweb, f"studies/{one.study_uid}/series/{one.series_uid}", ACCEPT_DICOM_ANY_TS
        )
    )
    assert_intact(got, stored.in_series(one.series_uid))


@pytest.mark.requirement("WADO-INSTANCE-EXACTLY-ONE")
@pytest.mark.parametrize("name", ["red-triangle", *CATALOG_NAMES])
def test_instance_retrieve_returns_that_instance_intact(
    dicomweb: Client, request: pytest.FixtureRequest, name: str
) -> None:
    instance = data_instance(request, name)
    got = list(expect.retrieved(dicomweb, path_of(instance), ACCEPT_DICOM_ANY_TS))
    assert len(got) == 1, f"an instance retrieve returned {len(got)} parts, expected 1"
    assert_intact(got, [instance])


# --- multipart framing ------------------------------------------------------------------------


def framing_target(request: pytest.FixtureRequest, resource: str) -> tuple[str, int]:
    """The synthetic study, its character-set series or one instance, and its instance count."""
    study = synthetic(request)
    latin = study.charset_latin
    return {
        "study": (f"studies/{study.study_uid}", len(study)),
        "series": (f"studies/{latin.study_uid}/series/{latin.series_uid}", 3),
        "instance": (instance_path(latin), 1),
    }[resource]


@pytest.mark.requirement("WADO-MULTIPART-TYPE-PARAMETER")
@pytest.mark.parametrize("resource", ["study", "series", "instance"])
def test_multipart_content_type_has_type_parameter(
    dicomweb: Client, request: pytest.FixtureRequest, resource: str
) -> None:
    path, _ = framing_target(request, resource)
    response = retrieve(dicomweb, path, ACCEPT_DICOM_ANY_TS)
    expect.status(response, 200)
    response.close()
    kind, params = media_type(response)
    assert kind == MULTIPART, f"Content-Type is {kind}, not {MULTIPART}"
    assert "type" in params, f"Content-Type {response.headers['Content-Type']!r} has no type"
    assert parsed(params["type"], "the type parameter")[0] == DICOM, (
        f"the type parameter is {params['type']!r}, but the parts are {DICOM}"
    )


@pytest.mark.requirement("WADO-MULTIPART-BOUNDARY-PARAMETER")
@pytest.mark.parametrize("resource", ["study", "series", "instance"])
def test_multipart_content_type_has_boundary_parameter(
    dicomweb: Client, request: pytest.FixtureRequest, resource: str
) -> None:
    path, count = framing_target(request, resource)
    response = retrieve(dicomweb, path, ACCEPT_DICOM_ANY_TS)
    expect.status(response, 200)
    params = media_type(response)[1]
    if not params.get("boundary"):
        response.close()
        raise AssertionError(
            f"Content-Type {response.headers.get('Content-Type')!r} has no boundary parameter"
        )
    found = parts(dicomweb, response)
    assert len(found) == count, f"the boundary separates {len(found)} parts, expected {count}"


@pytest.mark.requirement("WADO-PART-CONTENT-TYPE")
@pytest.mark.parametrize("accept", ["transfer-syntax=*", "no transfer-syntax"])
def test_every_part_is_application_dicom(
    dicomweb: Client, stored_synthetic: CatalogStudy, accept: str
) -> None:
    ts = "*" if accept == "transfer-syntax=*" else None
    response = retrieve(dicomweb, f"studies/{stored_synthetic.study_uid}", dicom_accept(ts))
    expect.status(response, 200)
    found = parts(dicomweb, response)
    assert len(found) == len(stored_synthetic), f"{len(found)} parts for 7 instances"
    for number, part in enumerate(found, 1):
        kind = part_media_type(part, number)[0]
        assert kind == DICOM, f"part {number} has Content-Type {part.content_type!r}, not {DICOM}"


@pytest.mark.requirement("WADO-PART-TRANSFER-SYNTAX-MATCHES")
@pytest.mark.parametrize("accept", ["transfer-syntax=*", "no transfer-syntax"])
def test_part_transfer_syntax_parameter_names_the_file_meta_one(
    dicomweb: Client, stored_synthetic: CatalogStudy, accept: str
) -> None:
    """The study holds an RLE instance: with * the parts may mix transfer syntaxes."""
    ts = "*" if accept == "transfer-syntax=*" else None
    response = retrieve(dicomweb, f"studies/{stored_synthetic.study_uid}", dicom_accept(ts))
    expect.status(response, 200)
    found = parts(dicomweb, response)
    assert len(found) == len(stored_synthetic), f"{len(found)} parts for 7 instances"
    for number, part in enumerate(found, 1):
        labelled = parsed(part.content_type or DICOM, f"part {number}'s Content-Type")[1]
        actual = transfer_syntax(read_dicom(part.body, f"part {number}"))
        if "transfer-syntax" in labelled:
            assert labelled["transfer-syntax"] == actual, (
                f"part {number} is labelled transfer-syntax={labelled['transfer-syntax']} "
                f"but its Transfer Syntax UID (0002,0010) is {actual}"
            )


# --- transfer syntax --------------------------------------------------------------------------


@pytest.mark.requirement("WADO-DEFAULT-TRANSFER-SYNTAX")
@pytest.mark.parametrize("resource", ["red-triangle", "synthetic-study"])
def test_default_transfer_syntax_is_explicit_vr_little_endian(
    dicomweb: Client, request: pytest.FixtureRequest, resource: str
) -> None:
    if resource == "synthetic-study":
        study = synthetic(request)
        path, stored = f"studies/{study.study_uid}", list(study)
    else:
        red = instance_named(request, resource)
        path, stored = instance_path(red), [red]
    got = list(expect.retrieved(dicomweb, path, dicom_accept()))
    wrong = {str(ds.SOPInstanceUID): transfer_syntax(ds) for ds in got}
    wrong = {uid: ts for uid, ts in wrong.items() if ts != EXPLICIT_VR_LE}
    assert not wrong, f"without transfer-syntax, parts came in {wrong}, not {EXPLICIT_VR_LE}"
    assert_intact(got, stored)


@pytest.mark.requirement("WADO-DEFAULT-TRANSFER-SYNTAX-DECOMPRESSES")
def test_default_transfer_syntax_decompresses_rle(
    dicomweb: Client, stored_synthetic: CatalogStudy
) -> None:
    compressed = stored_synthetic.compressed
    got = list(expect.retrieved(dicomweb, instance_path(compressed), dicom_accept()))
    assert len(got) == 1, f"{len(got)} parts for one instance"
    ds = got[0]
    assert transfer_syntax(ds) == EXPLICIT_VR_LE, (
        f"the RLE instance came in {transfer_syntax(ds)}, not decompressed to {EXPLICIT_VR_LE}"
    )
    expect.same_bytes(
        bytes(ds.PixelData[: pixel_size(ds)]), compressed_pixels(), "the decompressed pixel data"
    )
    assert_intact(got, [compressed])


@pytest.mark.requirement("WADO-EXPLICIT-TRANSFER-SYNTAX")
@pytest.mark.parametrize("name", ["red-triangle", "compressed"])
def test_explicit_vr_little_endian_on_request(
    dicomweb: Client, request: pytest.FixtureRequest, name: str
) -> None:
    instance = instance_named(request, name)
    got = list(expect.retrieved(dicomweb, instance_path(instance), dicom_accept(EXPLICIT_VR_LE)))
    assert len(got) == 1, f"{len(got)} parts for one instance"
    assert transfer_syntax(got[0]) == EXPLICIT_VR_LE, (
        f"transfer-syntax={EXPLICIT_VR_LE} was asked, the part is in {transfer_syntax(got[0])}"
    )
    assert_intact(got, [instance])


@pytest.mark.requirement("WADO-ANY-TRANSFER-SYNTAX")
@pytest.mark.parametrize("name", ["compressed", "multiframe"])
def test_any_transfer_syntax_returns_the_instance_intact(
    dicomweb: Client, stored_synthetic: CatalogStudy, name: str
) -> None:
    instance = stored_synthetic[name]
    got = list(expect.retrieved(dicomweb, instance_path(instance), dicom_accept("*")))
    assert len(got) == 1, f"{len(got)} parts for one instance"
    assert_intact(got, [instance])


@pytest.mark.requirement("WADO-UNSUPPORTED-TRANSFER-SYNTAX-406")
def test_unsupported_transfer_syntax_answers_406_or_the_default(
    dicomweb: Client, study_data: StudyData
) -> None:
    """8.7.8.1 says 406; 8.7.7 says the unsupported parameter is ignored, which leaves the
    default representation (Explicit VR Little Endian): both pass, recorded."""
    red = first_instance(study_data)
    response = retrieve(dicomweb, path_of(red), dicom_accept(MPEG2))
    if expect.chose_406(response):
        return
    expect.status(
        response, 200, 406, why="406, or the transfer-syntax ignored (PS3.18 8.7.7, 8.7.8.1)"
    )
    got = expect.dicom_parts(dicomweb, response)
    if {transfer_syntax(ds) for ds in got} == {MPEG2}:
        return  # it made MPEG2 after all: what was asked for
    assert_default_parts(got, red)
    expect.chose("parameter-ignored")


@pytest.mark.requirement("WADO-FRAMES-DEFAULT-UNCOMPRESSED")
def test_frames_without_transfer_syntax_are_uncompressed(
    dicomweb: Client, stored_synthetic: CatalogStudy
) -> None:
    response = retrieve(
        dicomweb, f"{instance_path(stored_synthetic.compressed)}/frames/1", MULTIPART_OCTETS
    )
    if response.status_code in expect.ROUTE_ABSENT:
        expect.not_implemented(f"no frames resource: it answered {response.status_code}")
    expect.status(response, 200)
    found = parts(dicomweb, response)
    assert len(found) == 1, f"{len(found)} parts for one frame"
    kind = parsed(found[0].content_type or OCTET_STREAM, "the frame's Content-Type")[0]
    assert kind == OCTET_STREAM, f"the frame came as {found[0].content_type!r}, not {OCTET_STREAM}"
    expect.same_bytes(found[0].body, compressed_pixels(), "the RLE image's frame, uncompressed")


# --- Accept negotiation -----------------------------------------------------------------------

QVALUES = {
    # The RLE instance: it is stored in RLE and must decompress to EVRLE, so both are producible.
    "RLE q=0.5, EVRLE q=1": (
        "compressed",
        f"{dicom_accept(RLE_LOSSLESS)}; q=0.5, {dicom_accept(EXPLICIT_VR_LE)}",
        {EXPLICIT_VR_LE},
    ),
    # An instance stored in EVRLE: MPEG2 preferred, but unless the server makes it, EVRLE.
    "MPEG2 q=1, EVRLE q=0.5": (
        "red-triangle",
        f"{dicom_accept(MPEG2)}, {dicom_accept(EXPLICIT_VR_LE)}; q=0.5",
        {MPEG2, EXPLICIT_VR_LE},
    ),
}


@pytest.mark.requirement("WADO-ACCEPT-QVALUES")
@pytest.mark.parametrize("accept", list(QVALUES))
def test_highest_qvalue_supported_wins(
    dicomweb: Client, request: pytest.FixtureRequest, accept: str
) -> None:
    name, header, allowed = QVALUES[accept]
    instance = instance_named(request, name)
    # EVRLE alone first: the rule is about choosing between types, not about transcoding.
    alone = retrieve(dicomweb, instance_path(instance), dicom_accept(EXPLICIT_VR_LE))
    alone.close()
    expect.answered(alone, 200)
    got = list(expect.retrieved(dicomweb, instance_path(instance), header))
    assert len(got) == 1, f"{len(got)} parts for one instance"
    ts = transfer_syntax(got[0])
    assert ts in allowed, f"Accept {header!r}: the part came in {ts}, expected {sorted(allowed)}"
    assert_intact(got, [instance])


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


@pytest.mark.requirement("WADO-ACCEPT-WILDCARD-DEFAULT")
@pytest.mark.parametrize("name", ["red-triangle", "compressed"])
def test_wildcard_accept_gets_the_default_media_type(
    dicomweb: Client, request: pytest.FixtureRequest, name: str
) -> None:
    instance = instance_named(request, name)
    response = retrieve(dicomweb, instance_path(instance), "*/*")
    assert_default_representation(dicomweb, response, instance)


@pytest.mark.requirement("WADO-ACCEPT-TYPE-WILDCARD")
def test_multipart_type_wildcard_gets_the_default_or_406(
    dicomweb: Client, study_data: StudyData
) -> None:
    red = first_instance(study_data)
    response = retrieve(dicomweb, path_of(red), 'multipart/related; type="*/*"')
    refused_or_default(
        dicomweb, response, red, why='type="*/*" unsupported is ignored (8.7.7): 406 or default'
    )


@pytest.mark.requirement("WADO-ACCEPT-MULTIPART-WITHOUT-TYPE")
def test_multipart_without_type_gets_default_or_406(
    dicomweb: Client, study_data: StudyData
) -> None:
    red = first_instance(study_data)
    response = retrieve(dicomweb, path_of(red), MULTIPART)
    refused_or_default(dicomweb, response, red, why="an invalid Accept value is ignored (8.7.7)")


@pytest.mark.requirement("WADO-NO-ACCEPT-406")
def test_retrieve_without_accept_answers_406(dicomweb: Client, study_data: StudyData) -> None:
    response = retrieve(dicomweb, path_of(first_instance(study_data)), None)
    response.close()
    expect.status(response, 406, why="PS3.18 8.7.5: a request without Accept gets 406")


@pytest.mark.requirement("WADO-UNACCEPTABLE-MEDIA-TYPE-406")
@pytest.mark.parametrize("accept", ["application/json", "text/html"])
def test_unacceptable_media_type_answers_406_or_the_default(
    dicomweb: Client, study_data: StudyData, accept: str
) -> None:
    red = first_instance(study_data)
    response = retrieve(dicomweb, path_of(red), accept)
    refused_or_default(dicomweb, response, red, why=f"an instance has no {accept} representation")


@pytest.mark.requirement("WADO-SINGLE-PART-INSTANCE")
def test_single_part_instance_retrieve(dicomweb: Client, study_data: StudyData) -> None:
    """application/dicom is optional (Table 10.4.4-1): a server that offers it selects it when
    it is the only media type asked, and the body is exactly the instance. Any other answer is a
    server without it; how such a server must answer is WADO-UNACCEPTABLE-MEDIA-TYPE-406's rule
    (406 or the default), judged there once."""
    red = first_instance(study_data)
    response = retrieve(dicomweb, path_of(red), DICOM)
    if response.status_code != 200 or declared_media_type(response) != DICOM:
        response.close()
        expect.not_implemented(
            f"no single-part {DICOM}: it answered {response.status_code} "
            f"{response.headers.get('Content-Type', '')}".rstrip()
        )
    assert_intact([read_dicom(response.content, "the body")], [red])


def several_instances(study: CatalogStudy, resource: str) -> tuple[str, list[Instance]]:
    """The synthetic study, or its character-set series, and the instances it holds."""
    latin = study.charset_latin
    if resource == "study":
        return f"studies/{latin.study_uid}", list(study)
    return f"studies/{latin.study_uid}/series/{latin.series_uid}", study.in_series(latin.series_uid)


@pytest.mark.requirement("WADO-SINGLE-PART-MULTI-ITEM-406")
@pytest.mark.parametrize("resource", ["study", "series"])
def test_single_part_media_type_for_several_instances_answers_406_or_the_default(
    dicomweb: Client, stored_synthetic: CatalogStudy, resource: str
) -> None:
    """application/dicom is ignored for a study or series (10.4.4, 8.7.7): nothing acceptable is
    left, so 406 (8.7.8.1) or the default multipart (Table 8.7.3-1), with every instance."""
    path, stored = several_instances(stored_synthetic, resource)
    response = retrieve(dicomweb, path, DICOM)
    if expect.chose_406(response):
        return
    expect.status(response, 200, 406, why=f"{DICOM} is for single instances only (10.4.4)")
    assert is_multipart_dicom(response), (
        f"the {resource}'s default media type is {MULTIPART_DICOM}, got "
        f"{response.headers.get('Content-Type')!r}"
    )
    assert_intact(expect.dicom_parts(dicomweb, response), stored)
    expect.chose("default-media-type")


@pytest.mark.requirement("WADO-SINGLE-PART-ONLY-INSTANCES")
@pytest.mark.parametrize("resource", ["study", "series"])
def test_single_part_media_type_never_answers_a_study_or_series(
    dicomweb: Client, stored_synthetic: CatalogStudy, resource: str
) -> None:
    """Whatever the status of a refusal, a success is multipart with the resource's instances."""
    path, stored = several_instances(stored_synthetic, resource)
    response = retrieve(dicomweb, path, DICOM)
    if not 200 <= response.status_code < 300:
        response.close()
        return
    kind = media_type(response)[0]
    if kind != MULTIPART:
        response.close()
        raise AssertionError(
            f"a {resource} was answered {response.status_code} {kind}: {DICOM} without "
            "multipart/related is only for individual instances (10.4.4)"
        )
    found = sorted(
        str(ds.get("SOPInstanceUID")) for ds in expect.iter_dicom_parts(dicomweb, response)
    )
    assert found == sorted(i.sop_uid for i in stored), (
        f"the {resource}'s multipart answer holds {found}, not its {len(stored)} instances"
    )


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


@pytest.mark.requirement("WADO-ACCEPT-QUERY-PARAMETER")
@pytest.mark.parametrize("target", ["rendered", "metadata"])
def test_accept_query_parameter_overrides_header(
    dicomweb: Client, stored_study: SampleStudy, target: str
) -> None:
    """The header's */* alone gets the default (JPEG, DICOM JSON); the parameter asks for another
    type the resource has (8.3.3.1: the parameter's types must match a range of the header). The
    parameter is mandatory (Table 10.4.1-5): ignoring it is a FAIL; only a server without the
    target resource (judged by WADO-MANDATORY-RESOURCES) is NOT-IMPLEMENTED here."""
    red = stored_study.red
    wanted, default = (PNG, JPEG) if target == "rendered" else (MULTIPART_XML, DICOM_JSON)
    header = "*/*"
    response = retrieve(dicomweb, f"{instance_path(red)}/{target}", header, [("accept", wanted)])
    if response.status_code in expect.ROUTE_ABSENT:
        expect.not_implemented(f"no {target} resource: it answered {response.status_code}")
    expect.status(response, 200, why=f"{wanted} is a type the {target} resource has")
    kind, params = media_type(response)
    if kind == parsed(default, "the default")[0]:
        response.close()
        raise AssertionError(
            f"accept={wanted} ignored: the answer is {kind}, the default for Accept {header}; "
            "the accept query parameter is Mandatory (Table 10.4.1-5) and its media types come "
            "first (8.7.8.1)"
        )
    if target == "rendered":
        assert kind == PNG, f"accept=image/png was answered with {kind}"
        assert png_size(response.content) == (red.dataset.Columns, red.dataset.Rows)
    else:
        assert kind == MULTIPART and params.get("type") == DICOM_XML, (
            f"accept={wanted} was answered with {response.headers['Content-Type']!r}"
        )
        assert xml_sop_uids(dicomweb, response) == [red.sop_uid]


# --- status codes -----------------------------------------------------------------------------

NOT_FOUND = {
    "unknown-study": "studies/{absent}",
    "unknown-series-in-study": "studies/{study}/series/{absent}",
    "unknown-instance-in-series": "studies/{study}/series/{series}/instances/{absent}",
    "instance-under-another-series": "studies/{study}/series/{blue_series}/instances/{sop}",
    "series-under-another-study": "studies/{other_study}/series/{series}",
}


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


@pytest.mark.requirement("WADO-NOT-FOUND-NO-SUCCESS")
@pytest.mark.parametrize("case", [*NOT_FOUND, "frame-past-the-last"])
def test_what_is_not_there_is_never_a_success(
    dicomweb: Client, study_data: StudyData, request: pytest.FixtureRequest, case: str
) -> None:
    """Which refusal is the SHOULD of the 404 checks; a 2xx cannot hold what is not there."""
    if case == "frame-past-the-last":
        frames_path = f"{instance_path(synthetic(request).multiframe)}/frames/5"
        asked = [(frames_path, MULTIPART_OCTETS)]
    else:
        path = not_found_path(NOT_FOUND[case], study_data, request)
        asked = [(path, ACCEPT_DICOM_ANY_TS), (f"{path}/metadata", DICOM_JSON)]
    for path, accept in asked:
        response = retrieve(dicomweb, path, accept)
        response.close()
        assert not 200 <= response.status_code < 300, (
            f"{expect.request_line(response)}: {response.status_code} {response.reason} for "
            "what is not there; a success shall carry a representation of the target (10.4.3.3)"
        )


@pytest.mark.requirement("WADO-NOT-FOUND-404")
@pytest.mark.parametrize("case", list(NOT_FOUND))
def test_retrieve_of_what_is_not_there_answers_404(
    dicomweb: Client, study_data: StudyData, request: pytest.FixtureRequest, case: str
) -> None:
    path = not_found_path(NOT_FOUND[case], study_data, request)
    response = retrieve(dicomweb, path, ACCEPT_DICOM_ANY_TS)
    response.close()
    expect.status(response, 404)


@pytest.mark.requirement("WADO-METADATA-NOT-FOUND-404")
@pytest.mark.parametrize("case", list(NOT_FOUND))
def test_metadata_of_what_is_not_there_answers_404(
    dicomweb: Client, study_data: StudyData, request: pytest.FixtureRequest, case: str
) -> None:
    expect.get_metadata(dicomweb, path_of(first_instance(study_data)), needed=True)
    path = not_found_path(NOT_FOUND[case], study_data, request)
    response = metadata(dicomweb, path)
    expect.status(response, 404)


MALFORMED = {
    "1..2": "studies/1..2",
    "letters": "studies/not-a-uid",
    "65-characters": "studies/" + "1." * 32 + "1",
    "instance-1..2": "studies/{study}/series/{series}/instances/1..2",
}


@pytest.mark.requirement("WADO-MALFORMED-UID-400")
@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_uid_answers_a_client_error(
    dicomweb: Client, study_data: StudyData, case: str
) -> None:
    """Our request breaks PS3.5 9.1, which prescribes no answer: any 4xx is robust."""
    red = first_instance(study_data)
    path = MALFORMED[case].format(study=red.study_uid, series=red.series_uid)
    response = retrieve(dicomweb, path, ACCEPT_DICOM_ANY_TS)
    response.close()
    assert_client_error(response, "the path's UID is not a UID")


# --- the resources a Retrieve server must have (Table 10.3-2) -----------------------------------


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


@pytest.mark.requirement("WADO-MANDATORY-RESOURCES")
def test_mandatory_retrieve_resources_exist(
    dicomweb: Client, stored_synthetic: CatalogStudy
) -> None:
    """Each mandatory resource asked once, on the multi-frame image and its series and study.
    Only an answer that says the resource is not there (404/405/501) counts as missing: what a
    present one sends is judged by its own checks."""
    multiframe = stored_synthetic.multiframe
    study = f"studies/{multiframe.study_uid}"
    series = f"{study}/series/{multiframe.series_uid}"
    instance = instance_path(multiframe)
    asked = {
        "Study Metadata": (f"{study}/metadata", DICOM_JSON),
        "Series Metadata": (f"{series}/metadata", DICOM_JSON),
        "Instance Metadata": (f"{instance}/metadata", DICOM_JSON),
        "Rendered Study": (f"{study}/rendered", "*/*"),
        "Rendered Series": (f"{series}/rendered", "*/*"),
        "Rendered Instance": (f"{instance}/rendered", "*/*"),
        "Frames": (f"{instance}/frames/1", MULTIPART_OCTETS),
        "Rendered Frames": (f"{instance}/frames/1/rendered", "*/*"),
    }
    missing, bulk_uri = [], None
    for name, (path, accept) in asked.items():
        response = retrieve(dicomweb, path, accept)
        if response.status_code in expect.ROUTE_ABSENT:
            missing.append(f"{name} ({response.status_code})")
        elif name == "Instance Metadata" and response.status_code == 200:
            bulk_uri = pixel_data_uri(response)
        response.close()
    if bulk_uri is not None:
        response = retrieve(dicomweb, bulk_uri, MULTIPART_OCTETS)
        response.close()
        if response.status_code in expect.ROUTE_ABSENT:
            missing.append(f"Bulkdata, the BulkDataURI of Pixel Data ({response.status_code})")
    assert not missing, (
        "a server claiming the Retrieve transaction shall support it for all mandatory "
        f"resources (10.2, Table 10.3-2); these answered as absent: {', '.join(missing)}"
    )
    if bulk_uri is None:
        expect.info("Bulkdata not asked: the instance's metadata gives Pixel Data no BulkDataURI")


def assert_describes(objects: list[dict[str, Any]], expected: Sequence[Instance]) -> None:
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


def instance_metadata(client: Client, instance: Instance) -> dict[str, Any]:
    objects = expect.metadata_objects(client, instance_path(instance))
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
