"""WADO-RS, the Retrieve transaction (PS3.18 10.4), and the media-type rules it lives by (8.7).
Metadata is test_wado_metadata.py's; bulk data, frames and rendered resources test_wado_frames.py's;
all three take their shared helpers from wadodata.py.

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

Every check that can judge by reading asks its questions of "the data": the run's stored
studies, or in a read-only run a sample of the first study it reads (fixture study_data,
conformance/heldstudy.py). A check naming one of the run's instances for what it is (an image,
the multi-frame image, the RLE one, the SR) gets a held instance whose metadata shows the same
(instance_with, frames_instance); counts are judged only on a study or series the sample holds
whole, so a study of thousands of instances is never read whole; without what it needs the
check is DISABLED saying what the held data lacks, never FAIL. Where a writing run compares with
the stored bytes, a held instance is compared with what the server itself says of it: every
attribute of its metadata, and the attributes the metadata gives as bulk data present (their
bytes unknown); its frames and bulk data with its pixel data sent whole in Explicit VR LE.
"""

from __future__ import annotations

import pytest

from conformance import expect, heldstudy
from conformance.checks.wadodata import (
    DICOM_XML,
    EXPLICIT_VR_LE,
    JPEG,
    MPEG2,
    MULTIPART,
    MULTIPART_OCTETS,
    MULTIPART_XML,
    PNG,
    RLE_LOSSLESS,
    assert_client_error,
    assert_default_parts,
    assert_default_representation,
    assert_intact,
    catalog_study,
    data_instance,
    frames_instance,
    framing_target,
    held_sample,
    held_series_member,
    instance_with,
    is_multipart_dicom,
    lacking,
    not_found_path,
    pixel_data_uri,
    pixel_size,
    png_size,
    refused_or_default,
    several_instances,
    transfer_syntax,
    uncompressed_frame,
    whole_data,
    xml_sop_uids,
)
from conformance.client import Client
from conformance.dicomweb import (
    ACCEPT_DICOM_ANY_TS,
    DICOM,
    DICOM_JSON,
    MULTIPART_DICOM,
    OCTET_STREAM,
    declared_media_type,
    dicom_accept,
    media_type,
    metadata,
    parsed,
    part_media_type,
    parts,
    read_dicom,
    retrieve,
)
from conformance.heldstudy import (
    DataInstance,
    HeldInstance,
    StudyData,
    first_instance,
    path_of,
)
from conformance.synthetic import CATALOG_NAMES, CatalogStudy, compressed_pixels

# --- instance resources: the right instances, intact ------------------------------------------


@pytest.mark.requirement("WADO-STUDY-ALL-INSTANCES")
@pytest.mark.parametrize("study", ["article", "synthetic"])
def test_study_retrieve_returns_every_instance(
    dicomweb: Client, request: pytest.FixtureRequest, study: str
) -> None:
    """The article's study is "the data": in a read-only run the held study, judged only where
    its sample is the whole study (a study of thousands of instances is not read whole)."""
    sample = held_sample(request) if study == "article" else None
    if sample is not None and not sample.is_whole():
        lacking(sample, "the whole study")
    stored: StudyData | CatalogStudy = sample or catalog_study(request, study)
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
    sample = held_sample(request) if study_name == "article" else None
    if sample is None:
        stored = catalog_study(request, study_name)
        one: DataInstance = stored[member]
        members: list[DataInstance] = list(stored.in_series(one.series_uid))
    else:
        one = held_series_member(sample, member)
        members = list(sample.in_series(one.series_uid))
    got = list(
        expect.retrieved(
            dicomweb, f"studies/{one.study_uid}/series/{one.series_uid}", ACCEPT_DICOM_ANY_TS
        )
    )
    assert_intact(got, members)


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


@pytest.mark.requirement("WADO-MULTIPART-TYPE-PARAMETER")
@pytest.mark.parametrize("resource", ["study", "series", "instance"])
def test_multipart_content_type_has_type_parameter(
    dicomweb: Client, request: pytest.FixtureRequest, resource: str
) -> None:
    path, _ = framing_target(request, resource, counted=False)  # only the headers are read
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
    dicomweb: Client, request: pytest.FixtureRequest, accept: str
) -> None:
    ts = "*" if accept == "transfer-syntax=*" else None
    path, stored = whole_data(request)
    response = retrieve(dicomweb, path, dicom_accept(ts))
    expect.status(response, 200)
    found = parts(dicomweb, response)
    assert len(found) == len(stored), f"{len(found)} parts for {len(stored)} instances"
    for number, part in enumerate(found, 1):
        kind = part_media_type(part, number)[0]
        assert kind == DICOM, f"part {number} has Content-Type {part.content_type!r}, not {DICOM}"


@pytest.mark.requirement("WADO-PART-TRANSFER-SYNTAX-MATCHES")
@pytest.mark.parametrize("accept", ["transfer-syntax=*", "no transfer-syntax"])
def test_part_transfer_syntax_parameter_names_the_file_meta_one(
    dicomweb: Client, request: pytest.FixtureRequest, accept: str
) -> None:
    """The synthetic study holds an RLE instance: with * the parts may mix transfer syntaxes."""
    ts = "*" if accept == "transfer-syntax=*" else None
    path, stored = whole_data(request)
    response = retrieve(dicomweb, path, dicom_accept(ts))
    expect.status(response, 200)
    found = parts(dicomweb, response)
    assert len(found) == len(stored), f"{len(found)} parts for {len(stored)} instances"
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
        path, stored = whole_data(request)
    else:
        red = instance_with(request, resource)
        path, stored = path_of(red), [red]
    got = list(expect.retrieved(dicomweb, path, dicom_accept()))
    wrong = {str(ds.SOPInstanceUID): transfer_syntax(ds) for ds in got}
    wrong = {uid: ts for uid, ts in wrong.items() if ts != EXPLICIT_VR_LE}
    assert not wrong, f"without transfer-syntax, parts came in {wrong}, not {EXPLICIT_VR_LE}"
    assert_intact(got, stored)


@pytest.mark.requirement("WADO-DEFAULT-TRANSFER-SYNTAX-DECOMPRESSES")
def test_default_transfer_syntax_decompresses_rle(
    dicomweb: Client, request: pytest.FixtureRequest
) -> None:
    """The run's RLE instance; in a read-only run a held one its metadata says is stored
    compressed (its decompressed bytes are not known: their size is judged)."""
    compressed = instance_with(request, "compressed")
    got = list(expect.retrieved(dicomweb, path_of(compressed), dicom_accept()))
    assert len(got) == 1, f"{len(got)} parts for one instance"
    ds = got[0]
    held = isinstance(compressed, HeldInstance)
    what = f"{compressed.name}, stored compressed," if held else "the RLE instance"
    assert transfer_syntax(ds) == EXPLICIT_VR_LE, (
        f"{what} came in {transfer_syntax(ds)}, not decompressed to {EXPLICIT_VR_LE}"
    )
    pixels = bytes(ds.PixelData[: pixel_size(ds)])
    if held:
        assert len(pixels) == pixel_size(ds), (
            f"the decompressed pixel data is {len(pixels)} bytes, not {pixel_size(ds)}"
        )
    else:
        expect.same_bytes(pixels, compressed_pixels(), "the decompressed pixel data")
    assert_intact(got, [compressed])


@pytest.mark.requirement("WADO-EXPLICIT-TRANSFER-SYNTAX")
@pytest.mark.parametrize("name", ["red-triangle", "compressed"])
def test_explicit_vr_little_endian_on_request(
    dicomweb: Client, request: pytest.FixtureRequest, name: str
) -> None:
    instance = instance_with(request, name)
    got = list(expect.retrieved(dicomweb, path_of(instance), dicom_accept(EXPLICIT_VR_LE)))
    assert len(got) == 1, f"{len(got)} parts for one instance"
    assert transfer_syntax(got[0]) == EXPLICIT_VR_LE, (
        f"transfer-syntax={EXPLICIT_VR_LE} was asked, the part is in {transfer_syntax(got[0])}"
    )
    assert_intact(got, [instance])


@pytest.mark.requirement("WADO-ANY-TRANSFER-SYNTAX")
@pytest.mark.parametrize("name", ["compressed", "multiframe"])
def test_any_transfer_syntax_returns_the_instance_intact(
    dicomweb: Client, request: pytest.FixtureRequest, name: str
) -> None:
    instance = instance_with(request, name)
    got = list(expect.retrieved(dicomweb, path_of(instance), dicom_accept("*")))
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
    dicomweb: Client, request: pytest.FixtureRequest
) -> None:
    """The run's RLE image's frame is its known bytes; a held compressed image's frame is
    compared with the server's own decompression of it (the instance in Explicit VR LE)."""
    compressed = instance_with(request, "compressed")
    response = retrieve(dicomweb, f"{path_of(compressed)}/frames/1", MULTIPART_OCTETS)
    if response.status_code in expect.ROUTE_ABSENT:
        expect.not_implemented(f"no frames resource: it answered {response.status_code}")
    expect.status(response, 200)
    found = parts(dicomweb, response)
    assert len(found) == 1, f"{len(found)} parts for one frame"
    kind = parsed(found[0].content_type or OCTET_STREAM, "the frame's Content-Type")[0]
    assert kind == OCTET_STREAM, f"the frame came as {found[0].content_type!r}, not {OCTET_STREAM}"
    if isinstance(compressed, HeldInstance):
        want, what = uncompressed_frame(dicomweb, compressed, 1), f"{compressed.name}'s frame 1"
    else:
        want, what = compressed_pixels(), "the RLE image's frame"
    expect.same_bytes(found[0].body, want, f"{what}, uncompressed")


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
    instance = instance_with(request, name)
    # EVRLE alone first: the rule is about choosing between types, not about transcoding.
    alone = retrieve(dicomweb, path_of(instance), dicom_accept(EXPLICIT_VR_LE))
    alone.close()
    expect.answered(alone, 200)
    got = list(expect.retrieved(dicomweb, path_of(instance), header))
    assert len(got) == 1, f"{len(got)} parts for one instance"
    ts = transfer_syntax(got[0])
    assert ts in allowed, f"Accept {header!r}: the part came in {ts}, expected {sorted(allowed)}"
    assert_intact(got, [instance])


@pytest.mark.requirement("WADO-ACCEPT-WILDCARD-DEFAULT")
@pytest.mark.parametrize("name", ["red-triangle", "compressed"])
def test_wildcard_accept_gets_the_default_media_type(
    dicomweb: Client, request: pytest.FixtureRequest, name: str
) -> None:
    instance = instance_with(request, name)
    response = retrieve(dicomweb, path_of(instance), "*/*")
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


@pytest.mark.requirement("WADO-SINGLE-PART-MULTI-ITEM-406")
@pytest.mark.parametrize("resource", ["study", "series"])
def test_single_part_media_type_for_several_instances_answers_406_or_the_default(
    dicomweb: Client, request: pytest.FixtureRequest, resource: str
) -> None:
    """application/dicom is ignored for a study or series (10.4.4, 8.7.7): nothing acceptable is
    left, so 406 (8.7.8.1) or the default multipart (Table 8.7.3-1), with every instance."""
    path, stored = several_instances(request, resource)
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
    dicomweb: Client, request: pytest.FixtureRequest, resource: str
) -> None:
    """Whatever the status of a refusal, a success is multipart with the resource's instances."""
    path, stored = several_instances(request, resource)
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


@pytest.mark.requirement("WADO-ACCEPT-QUERY-PARAMETER")
@pytest.mark.parametrize("target", ["rendered", "metadata"])
def test_accept_query_parameter_overrides_header(
    dicomweb: Client, request: pytest.FixtureRequest, target: str
) -> None:
    """The header's */* alone gets the default (JPEG, DICOM JSON); the parameter asks for another
    type the resource has (8.3.3.1: the parameter's types must match a range of the header). The
    parameter is mandatory (Table 10.4.1-5): ignoring it is a FAIL; only a server without the
    target resource (judged by WADO-MANDATORY-RESOURCES) is NOT-IMPLEMENTED here."""
    red = instance_with(request, "red-triangle")
    wanted, default = (PNG, JPEG) if target == "rendered" else (MULTIPART_XML, DICOM_JSON)
    header = "*/*"
    response = retrieve(dicomweb, f"{path_of(red)}/{target}", header, [("accept", wanted)])
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


@pytest.mark.requirement("WADO-NOT-FOUND-NO-SUCCESS")
@pytest.mark.parametrize("case", [*NOT_FOUND, "frame-past-the-last"])
def test_what_is_not_there_is_never_a_success(
    dicomweb: Client, study_data: StudyData, request: pytest.FixtureRequest, case: str
) -> None:
    """Which refusal is the SHOULD of the 404 checks; a 2xx cannot hold what is not there."""
    if case == "frame-past-the-last":
        image = frames_instance(request)
        past = heldstudy.number_of_frames(image) + 1
        asked = [(f"{path_of(image)}/frames/{past}", MULTIPART_OCTETS)]
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


@pytest.mark.requirement("WADO-MANDATORY-RESOURCES")
def test_mandatory_retrieve_resources_exist(
    dicomweb: Client, request: pytest.FixtureRequest
) -> None:
    """Each mandatory resource asked once, on the multi-frame image and its series and study
    (in a read-only run a held image's). Only an answer that says the resource is not there
    (404/405/501) counts as missing: what a present one sends is judged by its own checks; no
    answer is read beyond its status, so a held study of any size is asked."""
    multiframe = frames_instance(request)
    study = f"studies/{multiframe.study_uid}"
    series = f"{study}/series/{multiframe.series_uid}"
    instance = path_of(multiframe)
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
