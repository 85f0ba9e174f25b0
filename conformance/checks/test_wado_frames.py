"""WADO-RS bulk data, frames and rendered resources (PS3.18 10.4, Table 10.3-2): the bytes of
each frame as stored, bulk data by its URI, rendered images and thumbnails in the media types
asked for.

Each check asks its questions of the run's own instances (the article's red-triangle, the
synthetic multi-frame image, its SR) or, in a read-only run, of held instances showing the same
feature (test_wado.instance_with, frames_instance); the held data lacking it leaves the check
unjudged. A frame or bulk data of a held image is compared with the server's own pixel data of
that instance, sent whole in Explicit VR Little Endian: the stored bytes are not the run's.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urljoin

import pytest
import requests
from pydicom.dataset import Dataset

from conformance import expect, heldstudy, multipart
from conformance.checks.wadodata import (
    JPEG,
    MULTIPART_OCTETS,
    PIXEL_DATA,
    PNG,
    TEXT_HTML,
    assert_client_error,
    frames_instance,
    held_sample,
    instance_metadata,
    instance_with,
    pixel_size,
    png_size,
    uncompressed_frame,
    uncompressed_pixels,
)
from conformance.client import Client
from conformance.dicomweb import ProtocolError, media_type, parts, retrieve
from conformance.heldstudy import DataInstance, HeldInstance, number_of_frames, path_of
from conformance.synthetic import frame_bytes

# --- bulkdata ---------------------------------------------------------------------------------


@dataclass
class BulkPart:
    uri: str
    response: requests.Response
    part: multipart.Part


def pixel_bulk_data(client: Client, instance: DataInstance) -> BulkPart:
    """Pixel Data fetched through its BulkDataURI (NOT-IMPLEMENTED without one)."""
    attribute = instance_metadata(client, instance).get(PIXEL_DATA)
    uri = attribute.get("BulkDataURI") if isinstance(attribute, dict) else None
    if not isinstance(uri, str):
        expect.not_implemented(f"{instance.name}'s metadata gives no BulkDataURI for Pixel Data")
    response = retrieve(client, uri, MULTIPART_OCTETS)
    expect.status(response, 200, why="the server gave this BulkDataURI in its metadata")
    found = parts(client, response)
    assert len(found) == 1, f"the Pixel Data bulk data came in {len(found)} parts, expected 1"
    return BulkPart(uri, response, found[0])


def stored_pixels(client: Client, instance: DataInstance) -> bytes:
    if isinstance(instance, HeldInstance):
        return uncompressed_pixels(client, instance)
    if instance.name == "multiframe":
        return b"".join(frame_bytes(k) for k in range(1, int(instance.dataset.NumberOfFrames) + 1))
    return bytes(instance.dataset.PixelData[: pixel_size(instance.dataset)])


@pytest.mark.requirement("WADO-BULKDATA-URI-BYTES")
@pytest.mark.parametrize("name", ["multiframe", "red-triangle"])
def test_bulkdata_uri_returns_the_pixel_bytes(
    dicomweb: Client, request: pytest.FixtureRequest, name: str
) -> None:
    instance = instance_with(request, name)
    body = pixel_bulk_data(dicomweb, instance).part.body
    # The element is padded to an even length; the pad byte may come along.
    want = stored_pixels(dicomweb, instance)
    expect.same_bytes(body, want, "the BulkDataURI's bytes", padded=True)


@pytest.mark.requirement("WADO-BULKDATA-CONTENT-LOCATION")
def test_bulkdata_part_has_content_location(
    dicomweb: Client, request: pytest.FixtureRequest
) -> None:
    bulk = pixel_bulk_data(dicomweb, frames_instance(request))
    location = bulk.part.headers.get("content-location")
    assert location, "the bulk data part has no Content-Location header"
    base = bulk.response.url
    assert urljoin(base, location) == urljoin(base, bulk.uri), (
        f"Content-Location {location!r} is not the BulkDataURI {bulk.uri!r}"
    )


# --- frames -----------------------------------------------------------------------------------


def frames(client: Client, instance: DataInstance, frame_list: str) -> requests.Response:
    return retrieve(client, f"{path_of(instance)}/frames/{frame_list}", MULTIPART_OCTETS)


def require_frames(client: Client, instance: DataInstance) -> None:
    response = frames(client, instance, "1")
    response.close()
    if response.status_code in expect.ROUTE_ABSENT:
        expect.not_implemented(f"no frames resource: frames/1 answered {response.status_code}")
    expect.answered(response, 200)


def expected_frame(client: Client, instance: DataInstance, number: int) -> bytes:
    if isinstance(instance, HeldInstance):
        return uncompressed_frame(client, instance, number)
    if instance.name == "multiframe":
        return frame_bytes(number)
    return bytes(instance.dataset.PixelData[: pixel_size(instance.dataset)])


def same_frame(got: bytes, want: bytes) -> bool:
    """Equal, allowing the one pad byte an odd-length Pixel Data element carries."""
    return len(got) in (len(want), len(want) + 1) and got[: len(want)] == want


@pytest.mark.requirement("WADO-FRAME-BYTES")
@pytest.mark.parametrize("case", ["red-triangle/1", "multiframe/2"])
def test_frame_is_its_pixel_bytes(
    dicomweb: Client, request: pytest.FixtureRequest, case: str
) -> None:
    """Frames are defined on a multi-frame instance (Table 10.1-1): a single-frame image's
    frame 1 may be refused (INFO); served, it must be the image's bytes."""
    name, number = case.split("/")
    instance = instance_with(request, name)
    require_frames(dicomweb, frames_instance(request))
    response = frames(dicomweb, instance, number)
    if number_of_frames(instance) == 1 and 400 <= response.status_code < 500:
        response.close()
        expect.info(f"frames/{number} of a single-frame image refused: {response.status_code}")
    expect.status(response, 200)
    found = [part.body for part in parts(dicomweb, response)]
    assert len(found) == 1, f"frames/{number} came in {len(found)} parts, expected 1"
    want = expected_frame(dicomweb, instance, int(number))
    assert same_frame(found[0], want), (
        f"frames/{number} is {len(found[0])} bytes that are not frame {number} ({len(want)} bytes)"
    )


@pytest.mark.requirement("WADO-FRAME-OUT-OF-RANGE")
@pytest.mark.parametrize("case", ["red-triangle/2", "multiframe/5"])
def test_frame_past_the_last_answers_a_client_error(
    dicomweb: Client, request: pytest.FixtureRequest, case: str
) -> None:
    """The frame after the last its Number of Frames says (a held image's by its metadata)."""
    name = case.split("/")[0]
    instance = instance_with(request, name)
    number = number_of_frames(instance) + 1
    require_frames(dicomweb, frames_instance(request))
    response = frames(dicomweb, instance, str(number))
    response.close()
    assert_client_error(response, f"{name} has no frame {number}")


@pytest.mark.requirement("WADO-FRAME-NUMBER-INVALID-400")
@pytest.mark.parametrize("number", ["0", "abc"])
def test_invalid_frame_number_answers_a_client_error(
    dicomweb: Client, request: pytest.FixtureRequest, number: str
) -> None:
    multiframe = frames_instance(request)
    require_frames(dicomweb, multiframe)
    response = frames(dicomweb, multiframe, number)
    response.close()
    assert_client_error(response, "frame numbers are positive integers")


@pytest.mark.requirement("WADO-FRAMES-OF-NON-IMAGE")
def test_frames_of_an_sr_answer_a_client_error(
    dicomweb: Client, request: pytest.FixtureRequest
) -> None:
    """The run's SR; in a read-only run a held instance without pixel data."""
    no_pixels = instance_with(request, "no_pixels")
    require_frames(dicomweb, frames_instance(request))
    response = frames(dicomweb, no_pixels, "1")
    response.close()
    assert_client_error(response, "the SR has no pixel data, so no frames")


# --- rendered and thumbnail -------------------------------------------------------------------


def jpeg_frame(body: bytes) -> tuple[int, int, int]:
    """(SOF marker, height, width) of a JPEG, after checking SOI, the markers and EOI."""
    if not body.startswith(b"\xff\xd8"):
        raise ProtocolError(f"not a JPEG: it starts {body[:4]!r}")
    if not body.endswith(b"\xff\xd9"):
        raise ProtocolError(f"the JPEG does not end with EOI: it ends {body[-4:]!r}")
    pos = 2
    while pos + 4 <= len(body):
        if body[pos] != 0xFF:
            raise ProtocolError(f"the JPEG has no marker at byte {pos}")
        marker = body[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        (length,) = struct.unpack(">H", body[pos + 2 : pos + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            _, height, width = struct.unpack(">BHH", body[pos + 4 : pos + 9])
            return marker, height, width
        if marker == 0xDA:
            break
        pos += 2 + length
    raise ProtocolError("the JPEG has no frame header (SOF) before its scan")


def rendered(
    client: Client, path: str, accept: str, query: Sequence[tuple[str, str]] = ()
) -> requests.Response:
    """A rendering: NOT-IMPLEMENTED only without the resource (its absence is judged by
    WADO-MANDATORY-RESOURCES); image/jpeg (D) and image/png (R) are never optional for an image
    (Table 8.7.4-1), so a 406 for them fails."""
    response = client.get(f"{path}/rendered", headers={"Accept": accept}, query=list(query))
    if response.status_code in expect.ROUTE_ABSENT:
        expect.not_implemented(f"no rendered resource: it answered {response.status_code}")
    expect.status(response, 200, why=f"{accept} is a rendered type every image has (8.7.4)")
    return response


def assert_rendered_jpeg(response: requests.Response, ds: Dataset) -> None:
    kind = media_type(response)[0]
    assert kind == JPEG, f"expected {JPEG}, the answer is {kind}"
    marker, height, width = jpeg_frame(response.content)
    assert marker == 0xC0, f"the JPEG is not baseline: its frame marker is FF{marker:02X}, not FFC0"
    assert (height, width) == (ds.Rows, ds.Columns), (
        f"the JPEG is {width} x {height}, the image {ds.Columns} x {ds.Rows}"
    )


@pytest.mark.requirement("WADO-RENDERED-JPEG")
def test_rendered_jpeg_is_baseline_of_the_image_size(
    dicomweb: Client, request: pytest.FixtureRequest
) -> None:
    red = instance_with(request, "red-triangle")
    assert_rendered_jpeg(rendered(dicomweb, path_of(red), JPEG), red.dataset)


@pytest.mark.requirement("WADO-RENDERED-PNG")
def test_rendered_png_is_a_decodable_png_of_the_image_size(
    dicomweb: Client, request: pytest.FixtureRequest
) -> None:
    red = instance_with(request, "red-triangle")
    response = rendered(dicomweb, path_of(red), PNG)
    kind = media_type(response)[0]
    assert kind == PNG, f"Accept {PNG} was answered with {kind}"
    size = png_size(response.content)
    assert size == (red.dataset.Columns, red.dataset.Rows), (
        f"the PNG is {size[0]} x {size[1]}, the image {red.dataset.Columns} x {red.dataset.Rows}"
    )


@pytest.mark.requirement("WADO-RENDERED-DEFAULT-JPEG")
def test_rendered_wildcard_is_jpeg(dicomweb: Client, request: pytest.FixtureRequest) -> None:
    red = instance_with(request, "red-triangle")
    assert_rendered_jpeg(rendered(dicomweb, path_of(red), "*/*"), red.dataset)


@pytest.mark.requirement("WADO-RENDERED-FRAME")
def test_rendered_frame_of_multiframe(dicomweb: Client, request: pytest.FixtureRequest) -> None:
    """The run's multi-frame image; in a read-only run a held one, else any held image."""
    multiframe = frames_instance(request)
    response = rendered(dicomweb, f"{path_of(multiframe)}/frames/1", PNG)
    kind = media_type(response)[0]
    assert kind == PNG, f"Accept {PNG} was answered with {kind}"
    size = png_size(response.content)
    assert size == (multiframe.dataset.Columns, multiframe.dataset.Rows), (
        f"frame 1 rendered is {size[0]} x {size[1]}, the frame "
        f"{multiframe.dataset.Columns} x {multiframe.dataset.Rows}"
    )


@pytest.mark.requirement("WADO-RENDERED-QUALITY")
def test_rendered_quality_parameter(dicomweb: Client, request: pytest.FixtureRequest) -> None:
    red = instance_with(request, "red-triangle")
    sizes = {}
    for quality in ("10", "100"):
        response = rendered(dicomweb, path_of(red), JPEG, [("quality", quality)])
        assert_rendered_jpeg(response, red.dataset)
        sizes[quality] = len(response.content)
    if sizes["10"] >= sizes["100"]:
        expect.info(f"quality ignored: quality=10 gave {sizes['10']} bytes, 100 {sizes['100']}")


@pytest.mark.requirement("WADO-RENDERED-NON-IMAGE")
def test_an_sr_is_never_rendered_as_an_image(
    dicomweb: Client, request: pytest.FixtureRequest
) -> None:
    """An SR is Text (Table 8.7.2-1): image/jpeg is none of its rendered types, so it is
    ignored (8.7.7) and nothing acceptable is left: 406 (8.7.8.1) or the Text default text/html
    (Table 8.7.3-1, 8.7.4-1). Any other answer fits neither, unless the server has no rendered
    resources at all (an image's rendering is absent too)."""
    no_pixels = instance_with(request, "no_pixels")
    response = dicomweb.get(f"{path_of(no_pixels)}/rendered", headers={"Accept": JPEG})
    kind = media_type(response)[0] if response.status_code == 200 else ""
    assert not kind.startswith("image/"), f"the SR was rendered as an image: 200 {kind}"
    if expect.chose_406(response):
        return
    if kind == TEXT_HTML:
        expect.chose("default-media-type")
        return
    if response.status_code in expect.ROUTE_ABSENT:
        image = f"{path_of(frames_instance(request))}/rendered"
        if dicomweb.get(image, headers={"Accept": JPEG}).status_code in expect.ROUTE_ABSENT:
            expect.not_implemented(f"no rendered resources: it answered {response.status_code}")
    raise AssertionError(
        f"Accept {JPEG} on an SR was answered {response.status_code} {kind}".rstrip()
        + f": neither 406 (8.7.8.1) nor the Text default {TEXT_HTML} (Table 8.7.3-1, 8.7.4-1)"
    )


def images(instance: HeldInstance) -> bool:
    return heldstudy.has_feature(instance.dataset, "image")


@pytest.mark.requirement("WADO-THUMBNAIL")
def test_thumbnails_at_every_level_are_one_jpeg_or_none_exist(
    dicomweb: Client, request: pytest.FixtureRequest
) -> None:
    """Thumbnails are optional, but a server with one level has all (10.4.1.1.4): every level is
    asked, and only all of them absent (404/405/501) is NOT-IMPLEMENTED. The study is the
    article's, all images: which instance stands for a study that holds an SR is the server's
    choice ("The origin server will determine what constitutes a meaningful representation"),
    so on a held study the study and series levels are asked only where every instance of them
    is known to be an image."""
    red, multiframe = instance_with(request, "red-triangle"), frames_instance(request)
    levels = {
        "study": f"studies/{red.study_uid}",
        "series": f"studies/{red.study_uid}/series/{red.series_uid}",
        "instance": path_of(red),
        "frame": f"{path_of(multiframe)}/frames/1",
    }
    held = held_sample(request)
    if held is not None:
        # A held study or series may hold an SR: which instance stands for it is the server's
        # choice, so the level is asked only where every instance of it is known to be an image.
        series = [i for i in held if i.series_uid == red.series_uid]
        if not (heldstudy.is_whole(held) and all(images(i) for i in held)):
            del levels["study"]
        if not (heldstudy.is_whole(held, red.series_uid) and all(images(i) for i in series)):
            del levels["series"]
    answers = {
        level: dicomweb.get(f"{path}/thumbnail", headers={"Accept": JPEG})
        for level, path in levels.items()
    }
    if all(r.status_code in expect.ROUTE_ABSENT for r in answers.values()):
        codes = ", ".join(f"{level} {r.status_code}" for level, r in answers.items())
        expect.not_implemented(f"no thumbnail resources: {codes}")
    problems = []
    for level, response in answers.items():
        kind = media_type(response)[0] if response.status_code == 200 else ""
        if response.status_code != 200:
            problems.append(f"{level} {response.status_code}")
        elif kind != JPEG:
            problems.append(f"{level} 200 {kind}, not the one {JPEG} asked for")
        else:
            try:
                jpeg_frame(response.content)
            except ProtocolError as exc:
                problems.append(f"{level}: {exc}")
    assert not problems, (
        "a server with a thumbnail resource shall support all of them (10.4.1.1.4), each a "
        f"single image in the media type asked for; these are not: {'; '.join(problems)}"
    )
