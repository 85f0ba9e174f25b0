"""Faults of the wado checks on the resources beside the instances (see
tests/faults/__init__.py): frames, metadata, bulk data and rendered images.

Each fault changes one thing about a request for one of those resources (the request forwarded,
or the answer returned) so that exactly one rule breaks; the checks named in ``catches`` must
then fail, in the catalog run (tests/test_catalog_faults.py). The retrieve of instances is
tests/faults/wado.py's.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from proof import OVER_A_REPAIR

from . import Answer, Exchange, Forward, fault, header, json_changed
from .wado import SERIES, WADO, metadata_request, rewrite, with_accept, with_header

FRAMES = re.compile(r"^(?P<instance>.*/instances/[^/]+)/frames/(?P<frames>[^/]+)$")
RENDERED = re.compile(r"/rendered$")


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
    "series-metadata-of-its-own-level-only",
    catches=[
        f"test_json_values.py::test_metadata_values_equal_the_stored_values[{study}-series]"
        for study in ("samples", "synthetic")
    ],
)
def series_metadata_of_its_own_level_only(request: Exchange, forward: Forward) -> Answer:
    """Series metadata built from the series' own level: the Patient's attributes (group 0010)
    left out of every object, as DICOM-RST's /series answered only its own level's attributes
    (UMEssen/DICOM-RST#18: "only the series tag 0020,000E is returned"). The study's and each
    instance's metadata are whole, and the series checks read only which instances it holds."""
    answer = forward(request)
    if not metadata_request(request) or not SERIES.search(request.path.removesuffix("/metadata")):
        return answer
    return json_changed(answer, lambda objects: without_keys(objects, lambda k, v: k[:4] == "0010"))


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
