"""Faults of the wado checks on retrieving instances (see tests/faults/__init__.py): real
WADO-RS server bugs in the instances sent, their multipart framing, the transfer syntax and
Accept negotiation, and the status codes.

Each fault changes one thing about a retrieve (the request forwarded, or the answer returned) so
that exactly one rule breaks; the checks named in ``catches`` must then fail, in the catalog run
(tests/test_catalog_faults.py). The faults of frames, metadata, bulk data and rendered resources
are tests/faults/resources.py's; those only the properties find, tests/faults/properties.py's.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import re
from collections.abc import Callable

import pydicom
from proof import OVER_A_REPAIR
from pydicom.uid import ImplicitVRLittleEndian

from conformance import multipart
from conformance.synthetic import CATALOG_NAMES

from . import Answer, Exchange, Forward, fault, header

WADO = "test_wado.py::"
PROPERTIES = "test_properties.py::"
STUDY = re.compile(r"/studies/[^/]+$")
SERIES = re.compile(r"/studies/[^/]+/series/[^/]+$")
INSTANCE = re.compile(r"/studies/[^/]+/series/[^/]+/instances/[^/]+$")
METADATA = re.compile(r"/metadata$")
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


def metadata_request(request: Exchange) -> bool:
    return request.method == "GET" and bool(METADATA.search(request.path))


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
