"""Faults of the wado checks (see tests/faults/__init__.py): real WADO-RS server bugs.

Each fault changes one thing about a retrieve (the request forwarded, or the answer returned) so
that exactly one rule breaks; the checks named in ``catches`` must then fail.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import re
from collections.abc import Callable
from typing import Any

import pydicom
from proof import OVER_A_REPAIR
from pydicom.dataelem import DataElement
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element
from pydicom.uid import ImplicitVRLittleEndian
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

from conformance import multipart
from conformance.synthetic import CATALOG_NAMES

from . import Answer, Exchange, Forward, fault, header, json_changed

WADO = "test_wado.py::"
PROPERTIES = "test_properties.py::"
STUDY = re.compile(r"/studies/[^/]+$")
SERIES = re.compile(r"/studies/[^/]+/series/[^/]+$")
INSTANCE = re.compile(r"/studies/[^/]+/series/[^/]+/instances/[^/]+$")
FRAMES = re.compile(r"^(?P<instance>.*/instances/[^/]+)/frames/(?P<frames>[^/]+)$")
METADATA = re.compile(r"/metadata$")
RENDERED = re.compile(r"/rendered$")
DICOM_ANY_TS = 'multipart/related; type="application/dicom"; transfer-syntax=*'
DICOM_DEFAULT = 'multipart/related; type="application/dicom"'
# MPEG and HEVC video (1.2.840.10008.1.2.4.100 to .108): no transcoder makes them of a still image.
VIDEO_SYNTAX = re.compile(r"transfer-syntax=\"?1\.2\.840\.10008\.1\.2\.4\.10[0-8]\b")
UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
PartList = list[tuple[dict[str, str], bytes]]


# --- helpers ----------------------------------------------------------------------------------


def with_header(headers: dict[str, str], name: str, value: str) -> dict[str, str]:
    kept = {k: v for k, v in headers.items() if k.lower() != name.lower()}
    return {**kept, name: value}


def with_accept(request: Exchange, accept: str) -> Exchange:
    return dataclasses.replace(request, headers=with_header(request.headers, "accept", accept))


def is_retrieve(request: Exchange) -> bool:
    """A GET of a study, series or instance (not metadata, frames, rendered...)."""
    return request.method == "GET" and any(
        p.search(request.path) for p in (STUDY, SERIES, INSTANCE)
    )


def related_parts(answer: Answer) -> tuple[PartList, dict[str, str]] | None:
    """The parts (headers without Content-Length, body) of a 200 multipart/related answer."""
    content_type = header(answer.headers, "content-type")
    if answer.status != 200 or not content_type.lower().startswith("multipart/related"):
        return None
    params = multipart.parse_media_type(content_type)[1]
    found = [
        ({k: v for k, v in p.headers.items() if k != "content-length"}, p.body)
        for p in multipart.decode(answer.body, content_type)
    ]
    return found, params


def related_body(found: PartList, boundary: str) -> bytes:
    """Encode parts, each with its own headers (zero parts: just the close delimiter)."""
    out = bytearray()
    for headers, body in found:
        out += f"--{boundary}\r\n".encode()
        out += "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode("latin-1")
        out += b"\r\n" + body + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def rewrite(answer: Answer, change: Callable[[PartList], PartList]) -> Answer:
    decoded = related_parts(answer)
    if decoded is None:
        return answer
    found, params = decoded
    return Answer(200, answer.headers, related_body(change(found), params["boundary"]))


def dataset(body: bytes) -> pydicom.Dataset:
    ds = pydicom.dcmread(io.BytesIO(body))
    for _ in ds.iterall():  # decode every element, so it is re-encoded, not copied raw
        pass
    return ds


def encoded(ds: pydicom.Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def per_dataset(change: Callable[[pydicom.Dataset], None]) -> Callable[[PartList], PartList]:
    def apply(found: PartList) -> PartList:
        out = []
        for headers, body in found:
            ds = dataset(body)
            change(ds)
            out.append((headers, encoded(ds)))
        return out

    return apply


# --- the instances retrieved ------------------------------------------------------------------


@fault(
    "series-retrieve-returns-study",
    catches=[
        f"{WADO}test_series_retrieve_returns_only_that_series[green-square+red-triangle]",
        f"{WADO}test_series_retrieve_returns_only_that_series[blue-circle]",
        f"{WADO}test_series_retrieve_returns_only_that_series"
        "[charset_latin+charset_ideographic+charset_greek]",
        "test_existing.py::test_each_series_retrieve_sends_the_instances_searches_list_in_it",
    ],
)
def series_retrieve_returns_study(request: Exchange, forward: Forward) -> Answer:
    """A series retrieve that ignores the series UID and sends the whole study."""
    if request.method == "GET" and SERIES.search(request.path):
        request = dataclasses.replace(request, path=request.path.rsplit("/series/", 1)[0])
    return forward(request)


@fault(
    "instance-retrieve-returns-a-sibling",
    catches=[
        f"{WADO}test_instance_retrieve_returns_that_instance_intact[red-triangle]",
        f"{WADO}test_instance_retrieve_returns_that_instance_intact[charset_latin]",
        f"{WADO}test_instance_retrieve_returns_that_instance_intact[charset_ideographic]",
        f"{WADO}test_instance_retrieve_returns_that_instance_intact[charset_greek]",
    ],
)
def instance_retrieve_returns_a_sibling(request: Exchange, forward: Forward) -> Answer:
    """An instance looked up by its series only: another instance of the series comes back."""
    if not (request.method == "GET" and INSTANCE.search(request.path)):
        return forward(request)
    series_path, wanted = request.path.rsplit("/instances/", 1)
    answer = forward(dataclasses.replace(request, path=series_path))

    def sibling(found: PartList) -> PartList:
        others = [p for p in found if str(dataset(p[1]).SOPInstanceUID) != wanted]
        return (others or found)[:1]

    return rewrite(answer, sibling)


@fault(
    "retrieve-duplicates-last-instance",
    catches=[
        f"{WADO}test_study_retrieve_returns_every_instance[article]",
        f"{WADO}test_study_retrieve_returns_every_instance[synthetic]",
        f"{WADO}test_series_retrieve_returns_only_that_series[green-square+red-triangle]",
        f"{WADO}test_series_retrieve_returns_only_that_series[blue-circle]",
        f"{WADO}test_multipart_content_type_has_boundary_parameter[study]",
        f"{WADO}test_multipart_content_type_has_boundary_parameter[series]",
        f"{WADO}test_every_part_is_application_dicom[transfer-syntax=*]",
        f"{WADO}test_part_transfer_syntax_parameter_names_the_file_meta_one[no transfer-syntax]",
        "test_existing.py::test_a_study_retrieve_sends_the_instances_searches_list",
        "test_existing.py::test_each_series_retrieve_sends_the_instances_searches_list_in_it",
    ],
)
def retrieve_duplicates_last_instance(request: Exchange, forward: Forward) -> Answer:
    """A study or series retrieve that sends its last instance twice (a paging join bug)."""
    answer = forward(request)
    if request.method == "GET" and (STUDY.search(request.path) or SERIES.search(request.path)):
        return rewrite(answer, lambda found: [*found, found[-1]])
    return answer


def drop_last_element(ds: pydicom.Dataset) -> None:
    del ds[list(ds.keys())[-1]]


@fault(
    "retrieve-truncates-last-attribute",
    catches=[
        *(
            f"{WADO}test_instance_retrieve_returns_that_instance_intact[{name}]"
            for name in ("red-triangle", *CATALOG_NAMES)
        ),
        f"{WADO}test_study_retrieve_returns_every_instance[article]",
        f"{WADO}test_study_retrieve_returns_every_instance[synthetic]",
        f"{WADO}test_any_transfer_syntax_returns_the_instance_intact[compressed]",
        f"{WADO}test_any_transfer_syntax_returns_the_instance_intact[multiframe]",
    ],
)
def retrieve_truncates_last_attribute(request: Exchange, forward: Forward) -> Answer:
    """Retrieved instances missing their last attribute (a cache that stored a cut-short file)."""
    answer = forward(request)
    if not is_retrieve(request):
        return answer
    return rewrite(answer, per_dataset(drop_last_element))


# --- multipart framing ------------------------------------------------------------------------


def content_type_without(answer: Answer, parameter: str) -> Answer:
    value = header(answer.headers, "content-type")
    if answer.status != 200 or not value.lower().startswith("multipart/"):
        return answer
    kept = [p for p in value.split(";") if not p.strip().lower().startswith(f"{parameter}=")]
    return Answer(200, with_header(answer.headers, "Content-Type", ";".join(kept)), answer.body)


FRAMING = ("study", "series", "instance")


@fault(
    "multipart-without-type",
    catches=[f"{WADO}test_multipart_content_type_has_type_parameter[{r}]" for r in FRAMING],
)
def multipart_without_type(request: Exchange, forward: Forward) -> Answer:
    """multipart/related answers whose Content-Type leaves out the type parameter."""
    return content_type_without(forward(request), "type")


@fault(
    "multipart-without-boundary",
    catches=[f"{WADO}test_multipart_content_type_has_boundary_parameter[{r}]" for r in FRAMING],
)
def multipart_without_boundary(request: Exchange, forward: Forward) -> Answer:
    """multipart/related answers whose Content-Type leaves out the boundary parameter."""
    return content_type_without(forward(request), "boundary")


@fault(
    "parts-labelled-octet-stream",
    catches=[
        f"{WADO}test_every_part_is_application_dicom[transfer-syntax=*]",
        f"{WADO}test_every_part_is_application_dicom[no transfer-syntax]",
    ],
)
def parts_labelled_octet_stream(request: Exchange, forward: Forward) -> Answer:
    """DICOM instances sent in parts labelled application/octet-stream."""
    answer = forward(request)
    if not is_retrieve(request):
        return answer
    return rewrite(
        answer,
        lambda found: [
            (with_header(h, "content-type", "application/octet-stream"), b) for h, b in found
        ],
    )


@fault(
    "part-transfer-syntax-from-storage",
    catches=[
        f"{WADO}test_part_transfer_syntax_parameter_names_the_file_meta_one[no transfer-syntax]"
    ],
)
def part_transfer_syntax_from_storage(request: Exchange, forward: Forward) -> Answer:
    """Parts labelled with the transfer syntax the instance is stored in, even when transcoded."""
    answer = forward(request)
    if not is_retrieve(request) or related_parts(answer) is None:
        return answer
    stored = related_parts(forward(with_accept(request, DICOM_ANY_TS)))
    assert stored is not None
    stored_ts = {
        str(ds.SOPInstanceUID): str(ds.file_meta.TransferSyntaxUID)
        for ds in (dataset(body) for _, body in stored[0])
    }

    def label(found: PartList) -> PartList:
        out = []
        for headers, body in found:
            ts = stored_ts[str(dataset(body).SOPInstanceUID)]
            out.append(
                (
                    with_header(
                        headers, "content-type", f"application/dicom; transfer-syntax={ts}"
                    ),
                    body,
                )
            )
        return out

    return rewrite(answer, label)


@fault(
    "part-transfer-syntax-echoes-accept",
    catches=[
        f"{WADO}test_part_transfer_syntax_parameter_names_the_file_meta_one[transfer-syntax=*]"
    ],
)
def part_transfer_syntax_echoes_accept(request: Exchange, forward: Forward) -> Answer:
    """Parts labelled with the transfer-syntax the client asked for (here '*'), not the real one."""
    answer = forward(request)
    asked = re.search(r"transfer-syntax=([^;,\s]+)", header(request.headers, "accept"))
    if not is_retrieve(request) or asked is None:
        return answer
    label = f"application/dicom; transfer-syntax={asked.group(1)}"
    return rewrite(
        answer, lambda found: [(with_header(h, "content-type", label), b) for h, b in found]
    )


# --- transfer syntax and Accept ---------------------------------------------------------------


def accept_ranges(request: Exchange) -> list[str]:
    return [r.strip() for r in header(request.headers, "accept").split(",") if r.strip()]


def only_video_asked(request: Exchange) -> bool:
    """A retrieve whose every Accept range asks for a video transfer syntax."""
    ranges = accept_ranges(request)
    return is_retrieve(request) and bool(ranges) and all(VIDEO_SYNTAX.search(r) for r in ranges)


@fault(
    "unsupported-transfer-syntax-500",
    catches=[f"{WADO}test_unsupported_transfer_syntax_answers_406_or_the_default"],
    where=OVER_A_REPAIR,
)
def unsupported_transfer_syntax_500(request: Exchange, forward: Forward) -> Answer:
    """A transcoder asked for a syntax it has no codec for throws, and the exception escapes as
    500, as dcm4chee-arc did for MPEG2 (dcm4che/dcm4chee-arc-light#786, #3608) and Orthanc
    does: broken over the repair unsupported-transfer-syntax-ignored, which ignores it."""
    if only_video_asked(request):
        body = b"UnsupportedOperationException: Unsupported Transfer Syntax"
        return Answer(500, {"Content-Type": "text/plain"}, body)
    return forward(request)


@fault(
    "study-served-single-part",
    catches=[
        f"{WADO}test_single_part_media_type_never_answers_a_study_or_series[study]",
        f"{WADO}test_single_part_media_type_never_answers_a_study_or_series[series]",
    ],
)
def study_served_single_part(request: Exchange, forward: Forward) -> Answer:
    """Accept application/dicom on a study or series answered with one instance, single part:
    a server that takes the single-part type at its word and sends the first object found."""
    ranges = [multipart.parse_media_type(r)[0] for r in accept_ranges(request)]
    several = request.method == "GET" and (
        STUDY.search(request.path) or SERIES.search(request.path)
    )
    if not several or ranges != ["application/dicom"]:
        return forward(request)
    found = related_parts(forward(with_accept(request, DICOM_ANY_TS)))
    if not found or not found[0]:
        return forward(request)
    return Answer(200, {"Content-Type": "application/dicom"}, found[0][0][1])


@fault(
    "accept-first-range-only",
    catches=[
        f"{WADO}test_highest_qvalue_supported_wins[RLE q=0.5, EVRLE q=1]",
        f"{WADO}test_highest_qvalue_supported_wins[MPEG2 q=1, EVRLE q=0.5]",
    ],
)
def accept_first_range_only(request: Exchange, forward: Forward) -> Answer:
    """A server that takes the first media range of Accept and ignores q-values."""
    if is_retrieve(request):
        request = with_accept(request, header(request.headers, "accept").split(",")[0].strip())
    return forward(request)


@fault(
    "transfer-syntax-ignored",
    catches=[
        f"{WADO}test_default_transfer_syntax_is_explicit_vr_little_endian[synthetic-study]",
        f"{WADO}test_default_transfer_syntax_decompresses_rle",
        f"{WADO}test_explicit_vr_little_endian_on_request[compressed]",
        f"{WADO}test_wildcard_accept_gets_the_default_media_type[compressed]",
        f"{WADO}test_highest_qvalue_supported_wins[RLE q=0.5, EVRLE q=1]",
    ],
)
def transfer_syntax_ignored(request: Exchange, forward: Forward) -> Answer:
    """Instances always sent as stored: an RLE one stays RLE when Explicit VR LE is asked."""
    accept = header(request.headers, "accept")
    if is_retrieve(request) and ("application/dicom" in accept or accept.strip() == "*/*"):
        request = with_accept(request, DICOM_ANY_TS)
    return forward(request)


def to_implicit_vr(ds: pydicom.Dataset) -> None:
    if not ds.file_meta.TransferSyntaxUID.is_compressed:
        ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian


@fault(
    "retrieve-implicit-vr",
    catches=[
        f"{WADO}test_default_transfer_syntax_is_explicit_vr_little_endian[red-triangle]",
        f"{WADO}test_default_transfer_syntax_is_explicit_vr_little_endian[synthetic-study]",
        f"{WADO}test_explicit_vr_little_endian_on_request[red-triangle]",
        f"{WADO}test_wildcard_accept_gets_the_default_media_type[red-triangle]",
        f"{PROPERTIES}test_a_retrieve_gives_the_transfer_syntax_asked_for_with_the_same_pixels",
    ],
)
def retrieve_implicit_vr(request: Exchange, forward: Forward) -> Answer:
    """Instances sent in Implicit VR Little Endian, as received over DIMSE (PS3.18 8.7.3 forbids
    it on the web)."""
    answer = forward(request)
    if not is_retrieve(request):
        return answer
    return rewrite(answer, per_dataset(to_implicit_vr))


# --- frames -----------------------------------------------------------------------------------


def frames_request(request: Exchange) -> re.Match[str] | None:
    return FRAMES.search(request.path) if request.method == "GET" else None


@fault(
    "frame-off-by-one",
    catches=[
        f"{WADO}test_frame_is_its_pixel_bytes[multiframe/2]",
    ],
)
def frame_off_by_one(request: Exchange, forward: Forward) -> Answer:
    """Frame numbers taken as 0-based: frames/n sends frame n+1."""
    found = frames_request(request)
    if found and all(n.isdigit() for n in found["frames"].split(",")):
        shifted = ",".join(str(int(n) + 1) for n in found["frames"].split(","))
        request = dataclasses.replace(request, path=f"{found['instance']}/frames/{shifted}")
    return forward(request)


@fault(
    "frame-errors-served-as-frame-1",
    catches=[
        f"{WADO}test_frame_past_the_last_answers_a_client_error[red-triangle/2]",
        f"{WADO}test_frame_past_the_last_answers_a_client_error[multiframe/5]",
        f"{WADO}test_invalid_frame_number_answers_a_client_error[0]",
        f"{WADO}test_invalid_frame_number_answers_a_client_error[abc]",
        f"{WADO}test_what_is_not_there_is_never_a_success[frame-past-the-last]",
    ],
)
def frame_errors_served_as_frame_1(request: Exchange, forward: Forward) -> Answer:
    """A frame number out of range or not a number clamped to frame 1, answered 200."""
    answer = forward(request)
    found = frames_request(request)
    if found and 400 <= answer.status < 500:
        return forward(dataclasses.replace(request, path=f"{found['instance']}/frames/1"))
    return answer


@fault(
    "frames-default-compressed",
    catches=[f"{WADO}test_frames_without_transfer_syntax_are_uncompressed"],
)
def frames_default_compressed(request: Exchange, forward: Forward) -> Answer:
    """Frames sent as stored (RLE) when no transfer syntax was asked for."""
    accept = header(request.headers, "accept")
    if frames_request(request) and "transfer-syntax" not in accept:
        request = with_accept(request, f"{accept}; transfer-syntax=*")
    return forward(request)


# --- metadata ---------------------------------------------------------------------------------


def metadata_request(request: Exchange) -> bool:
    return request.method == "GET" and bool(METADATA.search(request.path))


@fault(
    "metadata-series-is-study",
    catches=[
        f"{WADO}test_series_metadata_describes_only_that_series[green-square+red-triangle]",
        f"{WADO}test_series_metadata_describes_only_that_series[blue-circle]",
        f"{WADO}test_series_metadata_describes_only_that_series"
        "[charset_latin+charset_ideographic+charset_greek]",
    ],
)
def metadata_series_is_study(request: Exchange, forward: Forward) -> Answer:
    """Series metadata that describes the whole study."""
    if metadata_request(request) and SERIES.search(request.path.removesuffix("/metadata")):
        study = request.path.removesuffix("/metadata").rsplit("/series/", 1)[0]
        request = dataclasses.replace(request, path=f"{study}/metadata")
    return forward(request)


@fault(
    "metadata-duplicates-last-object",
    catches=[
        f"{WADO}test_study_metadata_describes_every_instance_once[article]",
        f"{WADO}test_study_metadata_describes_every_instance_once[synthetic]",
        f"{WADO}test_instance_metadata_describes_that_instance[red-triangle]",
        f"{WADO}test_instance_metadata_describes_that_instance[multiframe]",
        f"{WADO}test_instance_metadata_describes_that_instance[no_pixels]",
    ],
)
def metadata_duplicates_last_object(request: Exchange, forward: Forward) -> Answer:
    """Metadata that describes its last instance twice."""
    answer = forward(request)
    if not metadata_request(request):
        return answer
    return json_changed(answer, lambda objects: [*objects, objects[-1]])


def without_keys(objects: list[dict[str, Any]], drop: Callable[[str, Any], bool]) -> Any:
    return [{k: v for k, v in obj.items() if not drop(k, v)} for obj in objects]


@fault(
    "metadata-drops-pixel-data",
    catches=[
        f"{WADO}test_metadata_keeps_pixel_data_as_bulk_data[red-triangle]",
        f"{WADO}test_metadata_keeps_pixel_data_as_bulk_data[multiframe]",
        *(
            f"{WADO}test_metadata_has_every_stored_attribute[{name}]"
            for name in (
                "red-triangle",
                "multiframe",
                "charset_latin",
                "charset_ideographic",
                "charset_greek",
                "sequence",
            )
        ),
    ],
)
def metadata_drops_pixel_data(request: Exchange, forward: Forward) -> Answer:
    """Metadata without Pixel Data: bulk data dropped instead of given a BulkDataURI."""
    answer = forward(request)
    if not metadata_request(request):
        return answer
    return json_changed(answer, lambda objs: without_keys(objs, lambda k, _: k == "7FE00010"))


@fault(
    "metadata-drops-sequences",
    catches=[
        f"{WADO}test_metadata_has_every_stored_attribute[no_pixels]",
        f"{WADO}test_metadata_has_every_stored_attribute[sequence]",
        f"{WADO}test_metadata_values_equal_the_stored_ones[no_pixels]",
        f"{WADO}test_metadata_values_equal_the_stored_ones[sequence]",
    ],
)
def metadata_drops_sequences(request: Exchange, forward: Forward) -> Answer:
    """Metadata from a flat index that keeps no sequences (SQ attributes left out)."""
    answer = forward(request)
    if not metadata_request(request):
        return answer
    return json_changed(
        answer,
        lambda objs: without_keys(objs, lambda _, v: isinstance(v, dict) and v.get("vr") == "SQ"),
    )


def mojibake(value: Any) -> Any:
    """UTF-8 bytes read as Latin-1: 'Müller' becomes 'MÃ¼ller'."""
    if isinstance(value, str):
        return value.encode("utf-8").decode("latin-1")
    if isinstance(value, dict):
        return {k: mojibake(v) for k, v in value.items()}
    return value


@fault(
    "metadata-names-as-latin-1",
    catches=[
        f"{WADO}test_metadata_values_equal_the_stored_ones[charset_latin]",
        f"{WADO}test_metadata_values_equal_the_stored_ones[charset_ideographic]",
        f"{WADO}test_metadata_values_equal_the_stored_ones[charset_greek]",
    ],
)
def metadata_names_as_latin_1(request: Exchange, forward: Forward) -> Answer:
    """Person names decoded as Latin-1 whatever the Specific Character Set says."""
    answer = forward(request)
    if not metadata_request(request):
        return answer

    def names(objects: list[dict[str, Any]]) -> Any:
        for obj in objects:
            for attribute in obj.values():
                if isinstance(attribute, dict) and attribute.get("vr") == "PN":
                    attribute["Value"] = [mojibake(v) for v in attribute.get("Value", [])]
        return objects

    return json_changed(answer, names)


@fault(
    "metadata-long-strings-truncated",
    catches=[
        f"{WADO}test_metadata_values_equal_the_stored_ones[{name}]"
        for name in (
            "red-triangle",
            "charset_latin",
            "charset_ideographic",
            "charset_greek",
            "no_pixels",
            "sequence",
        )
    ],
)
def metadata_long_strings_truncated(request: Exchange, forward: Forward) -> Answer:
    """LO values cut to 16 characters by a narrow index column (StudyDescription, ...)."""
    answer = forward(request)
    if not metadata_request(request):
        return answer

    def truncate(objects: list[dict[str, Any]]) -> Any:
        for obj in objects:
            for attribute in obj.values():
                if isinstance(attribute, dict) and attribute.get("vr") == "LO":
                    attribute["Value"] = [
                        v[:16] if isinstance(v, str) else v for v in attribute.get("Value", [])
                    ]
        return objects

    return json_changed(answer, truncate)


@fault(
    "metadata-labelled-application-json",
    catches=[f"{WADO}test_metadata_default_media_type_is_dicom_json"],
)
def metadata_labelled_application_json(request: Exchange, forward: Forward) -> Answer:
    """DICOM JSON metadata sent as plain application/json."""
    answer = forward(request)
    if metadata_request(request) and "dicom+json" in header(answer.headers, "content-type"):
        headers = with_header(answer.headers, "Content-Type", "application/json")
        return Answer(answer.status, headers, answer.body)
    return answer


@fault(
    "metadata-xml-drops-last-part",
    catches=[
        f"{WADO}test_metadata_as_dicom_xml[instance]",
        f"{WADO}test_metadata_as_dicom_xml[study]",
    ],
)
def metadata_xml_drops_last_part(request: Exchange, forward: Forward) -> Answer:
    """XML metadata that leaves out its last instance."""
    answer = forward(request)
    if not metadata_request(request):
        return answer
    return rewrite(answer, lambda found: found[:-1])


@fault(
    "bulkdata-bytes-swapped",
    catches=[
        f"{WADO}test_bulkdata_uri_returns_the_pixel_bytes[multiframe]",
        f"{WADO}test_bulkdata_uri_returns_the_pixel_bytes[red-triangle]",
        f"{WADO}test_frame_is_its_pixel_bytes[red-triangle/1]",
        f"{WADO}test_frame_is_its_pixel_bytes[multiframe/2]",
    ],
)
def bulkdata_bytes_swapped(request: Exchange, forward: Forward) -> Answer:
    """Bulk data and frames sent with every byte pair swapped (a 16-bit endianness bug on 8-bit
    data, in the writer both share).

    The proxy forwards without the client's Host, so the server's absolute BulkDataURIs name the
    server itself: metadata answers are given URIs through the proxy (as a reverse proxy would),
    so that the bulk data requests come back here. Orthanc's BulkDataURIs end in /bulk/{tag}.
    """
    answer = forward(request)
    if request.method != "GET":
        return answer
    if metadata_request(request):
        proxy = f"http://{header(request.headers, 'host')}"
        return json_changed(answer, lambda objects: via_proxy(objects, proxy))
    if "/bulk/" not in request.path and not frames_request(request):
        return answer

    def swap(body: bytes) -> bytes:
        even = body[: len(body) - len(body) % 2]
        swapped = bytearray(even)
        swapped[0::2], swapped[1::2] = even[1::2], even[0::2]
        return bytes(swapped) + body[len(even) :]

    return rewrite(answer, lambda found: [(h, swap(b)) for h, b in found])


def via_proxy(value: Any, proxy: str) -> Any:
    """Every BulkDataURI's scheme and authority replaced with the proxy's."""
    if isinstance(value, list):
        return [via_proxy(v, proxy) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: via_proxy(v, proxy) for k, v in value.items()}
    uri = out.get("BulkDataURI")
    if isinstance(uri, str) and "://" in uri:
        out["BulkDataURI"] = proxy + "/" + uri.split("://", 1)[1].split("/", 1)[1]
    return out


# --- status codes -----------------------------------------------------------------------------

NOT_FOUND_CASES = (
    "unknown-study",
    "unknown-series-in-study",
    "unknown-instance-in-series",
    "instance-under-another-series",
    "series-under-another-study",
)


@fault(
    "not-found-answered-200-empty",
    catches=[
        *(f"{WADO}test_retrieve_of_what_is_not_there_answers_404[{c}]" for c in NOT_FOUND_CASES),
        *(f"{WADO}test_metadata_of_what_is_not_there_answers_404[{c}]" for c in NOT_FOUND_CASES),
        *(f"{WADO}test_what_is_not_there_is_never_a_success[{c}]" for c in NOT_FOUND_CASES),
    ],
)
def not_found_answered_200_empty(request: Exchange, forward: Forward) -> Answer:
    """Nothing found answered 200 with an empty payload, as if a search had matched nothing."""
    answer = forward(request)
    if answer.status != 404 or request.method != "GET":
        return answer
    if metadata_request(request):
        return Answer(200, {"Content-Type": "application/dicom+json"}, b"[]")
    if is_retrieve(request):
        content_type = 'multipart/related; type="application/dicom"; boundary=empty'
        return Answer(200, {"Content-Type": content_type}, related_body([], "empty"))
    return answer


MALFORMED_CASES = ("1..2", "letters", "65-characters", "instance-1..2")


def malformed_uid(path: str) -> str | None:
    """The first study, series or instance UID in a path that breaks PS3.5 9.1's grammar."""
    for kind, value in itertools.pairwise(path.split("/")):
        malformed = len(value) > 64 or not UID.fullmatch(value)
        if kind in ("studies", "series", "instances") and value and malformed:
            return value
    return None


@fault(
    "malformed-uid-500",
    catches=[f"{WADO}test_malformed_uid_answers_a_client_error[{c}]" for c in MALFORMED_CASES],
)
def malformed_uid_500(request: Exchange, forward: Forward) -> Answer:
    """A path UID handed unchecked to a store whose UID column refuses it: the database's error
    escapes as 500 instead of a client error."""
    value = malformed_uid(request.path) if request.method == "GET" else None
    if value is not None:
        body = f"ERROR: value {value!r} violates check constraint uid_format".encode()
        return Answer(500, {"Content-Type": "text/plain"}, body)
    return forward(request)


@fault("metadata-route-missing", catches=[f"{WADO}test_mandatory_retrieve_resources_exist"])
def metadata_route_missing(request: Exchange, forward: Forward) -> Answer:
    """No metadata resources (404 on every .../metadata), as on tiny-pacs-dicomweb 0.1."""
    if metadata_request(request):
        return Answer(404, {"Content-Type": "text/plain"}, b"Not found")
    return forward(request)


# --- rendered ---------------------------------------------------------------------------------


def rendered_request(request: Exchange) -> bool:
    return request.method == "GET" and bool(RENDERED.search(request.path))


@fault(
    "rendered-png-labelled-jpeg",
    catches=[
        f"{WADO}test_rendered_jpeg_is_baseline_of_the_image_size",
        f"{WADO}test_rendered_wildcard_is_jpeg",
        f"{WADO}test_rendered_quality_parameter",
    ],
)
def rendered_png_labelled_jpeg(request: Exchange, forward: Forward) -> Answer:
    """A renderer that always makes PNG, labelled with whatever type was asked for."""
    if not rendered_request(request):
        return forward(request)
    answer = forward(with_accept(request, "image/png"))
    if answer.status != 200:
        return answer
    return Answer(200, with_header(answer.headers, "Content-Type", "image/jpeg"), answer.body)


@fault(
    "rendered-always-jpeg",
    catches=[
        f"{WADO}test_rendered_png_is_a_decodable_png_of_the_image_size",
        f"{WADO}test_rendered_frame_of_multiframe",
    ],
)
def rendered_always_jpeg(request: Exchange, forward: Forward) -> Answer:
    """A renderer that answers image/jpeg whatever the Accept asks for."""
    if rendered_request(request):
        request = with_accept(request, "image/jpeg")
    return forward(request)


@fault("rendered-rejects-quality", catches=[f"{WADO}test_rendered_quality_parameter"])
def rendered_rejects_quality(request: Exchange, forward: Forward) -> Answer:
    """A renderer that rejects the quality parameter instead of honouring or ignoring it."""
    if rendered_request(request) and "quality=" in request.query:
        body = b"unknown query parameter: quality"
        return Answer(400, {"Content-Type": "text/plain"}, body)
    return forward(request)


# A JPEG-looking body (SOI, EOI): enough for a client that checks only the status.
BLANK_JPEG = b"\xff\xd8\xff\xd9"


@fault(
    "rendered-non-image-served-200",
    catches=[f"{WADO}test_an_sr_is_never_rendered_as_an_image"],
    where=OVER_A_REPAIR,
)
def rendered_non_image_served_200(request: Exchange, forward: Forward) -> Answer:
    """An unacceptable Accept served anyway: an SR 'rendered' as a blank image/jpeg, 200.
    (Orthanc answers 400, which fails the check too: the repairs sr-rendered-as-html and
    sr-rendering-refused-406 are the servers without this fault.)"""
    answer = forward(request)
    if rendered_request(request) and 400 <= answer.status < 500:
        return Answer(200, {"Content-Type": "image/jpeg"}, BLANK_JPEG)
    return answer


@fault(
    "retrieve-multipart-without-type-500",
    catches=[f"{WADO}test_multipart_without_type_gets_default_or_406"],
)
def retrieve_multipart_without_type_500(request: Exchange, forward: Forward) -> Answer:
    """A content negotiator that reads the type parameter of a multipart/related Accept without
    checking it is there: Accept multipart/related alone crashes the retrieve (500)."""
    if is_retrieve(request):
        ranges = [r.strip() for r in header(request.headers, "accept").split(",")]
        try:
            parsed = [multipart.parse_media_type(r) for r in ranges if r]
        except multipart.MultipartError:
            parsed = []
        if any(kind == "multipart/related" and "type" not in p for kind, p in parsed):
            body = b"KeyError: 'type'"
            return Answer(500, {"Content-Type": "text/plain"}, body)
    return forward(request)


# --- found only by the properties (conformance/checks/test_properties.py) ------------------------

NUMBER_VRS = {"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"}


@fault(
    "metadata-numbers-first-value-only",
    catches=[f"{PROPERTIES}test_metadata_of_a_generated_instance_is_what_was_stored"],
)
def metadata_numbers_first_value_only(request: Exchange, forward: Forward) -> Answer:
    """Binary numbers (US, SS, FL, FD, …) of several values given in metadata as their first
    value only: a JSON writer that reads one number where the element holds a VM of n (the
    samples and the synthetic study hold none, so the fixed metadata checks pass)."""
    answer = forward(request)
    if not metadata_request(request):
        return answer

    def first_only(objects: Any) -> Any:
        for obj in objects if isinstance(objects, list) else []:
            for attribute in obj.values():
                values = attribute.get("Value")
                if attribute.get("vr") in NUMBER_VRS and isinstance(values, list):
                    attribute["Value"] = values[:1]
        return objects

    return json_changed(answer, first_only)


def private_elements_as_un(ds: pydicom.Dataset) -> None:
    for element in list(ds):
        if element.tag.is_private and not element.tag.is_private_creator:
            ds[element.tag] = as_un(element)


def as_un(element: DataElement) -> DataElement:
    """The element's value bytes, as Explicit VR Little Endian writes them, under VR UN."""
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    write_data_element(buffer, element)
    header = 12 if element.VR in EXPLICIT_VR_LENGTH_32 else 8
    return DataElement(element.tag, "UN", buffer.getvalue()[header:])


@fault(
    "retrieve-private-elements-as-un",
    catches=[f"{PROPERTIES}test_a_generated_instance_is_retrieved_as_it_was_stored"],
)
def retrieve_private_elements_as_un(request: Exchange, forward: Forward) -> Answer:
    """Private elements retrieved with VR UN, their VR lost, as by an archive that stores what
    it receives in Implicit VR and knows no private dictionary (the samples and the synthetic
    study hold no private elements, so the fixed retrieve checks pass)."""
    answer = forward(request)
    if not is_retrieve(request):
        return answer
    return rewrite(answer, per_dataset(private_elements_as_un))


def swap_16_bit_pixels(ds: pydicom.Dataset) -> None:
    if ds.get("BitsAllocated") == 16 and "PixelData" in ds:
        data = bytearray(ds.PixelData)
        data[0::2], data[1::2] = data[1::2], data[0::2]
        ds.PixelData = bytes(data)


@fault(
    "implicit-vr-swaps-16-bit-pixels",
    catches=[
        f"{PROPERTIES}test_a_retrieve_gives_the_transfer_syntax_asked_for_with_the_same_pixels"
    ],
)
def implicit_vr_swaps_16_bit_pixels(request: Exchange, forward: Forward) -> Answer:
    """16-bit pixels byte-swapped when Implicit VR Little Endian is asked for, as by a
    transcoder that takes the 16-bit words for big endian (the samples and the synthetic study
    are 8-bit, so the fixed retrieve checks pass)."""
    answer = forward(request)
    if (
        not is_retrieve(request)
        or "1.2.840.10008.1.2;" not in header(request.headers, "accept") + ";"
    ):
        return answer
    return rewrite(answer, per_dataset(swap_16_bit_pixels))
