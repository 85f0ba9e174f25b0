"""Microsoft's article "Use DICOMweb Standard APIs with Python", step by step, as checks.

Each check asserts what the rule behind a step says must hold (status codes, instance counts,
UIDs) and verifies by reading back: a 200 from a store proves nothing until retrieve and search
return the data. Steps needing a feature the server lacks (change feed, single-part STOW or
retrieve, DELETE) are skipped as NOT-IMPLEMENTED with the server's answer; they never pass. Where
the rules allow several answers (a deleted resource: 404 or 410), each passes, and the check
records which one the server gave.
"""

from __future__ import annotations

import pytest
import requests

from conformance import expect
from conformance.client import Client
from conformance.dicomweb import (
    ACCEPT_DICOM_ANY_TS,
    ACCEPT_FRAMES_ANY_TS,
    DICOM,
    FAILED_SOP_SEQUENCE,
    SERIES_UID,
    SOP_UID,
    STUDY_UID,
    declared_media_type,
    instance_path,
    json_body,
    media_type,
    parts,
    read_dicom,
    referenced_sop_uids,
    retrieve,
    search,
    search_results,
    sequence_items,
    store_module,
    stow,
    stow_single,
    uids,
)
from conformance.run.fixtures import NewStudy
from conformance.samples import Instance, SampleStudy

FRAME_BYTES = 979 * 985 * 3  # one RGB frame of the article's samples: 2,892,945 bytes
SINGLE_PART_ACCEPT = "application/dicom; transfer-syntax=*"  # the article's instance retrieve


def assert_store_response(response: requests.Response, stored: list[Instance]) -> None:
    """The STOW response references every instance sent and reports no failure (Annex I)."""
    module = store_module(response)
    failed = sequence_items(module, FAILED_SOP_SEQUENCE)
    assert not failed, f"the store response lists failed instances: {failed}"
    referenced = referenced_sop_uids(module)
    assert sorted(referenced) == sorted(i.sop_uid for i in stored), (
        f"ReferencedSOPSequence names {referenced}, expected {[i.sop_uid for i in stored]}"
    )


# Step 1: the article checks the reader's credentials with the change feed ----------------------


@pytest.mark.requirement("AZ-CHANGEFEED-LIST")
def test_changefeed_answers_200(dicomweb: Client) -> None:
    """GET {base}/changefeed answers a JSON array (the change feed overview). The article's own
    sentence, "returns a 200 if authentication is successful", tests the reader's token, not the
    server: it is no rule (ARTICLE-CHANGEFEED-200 is withdrawn)."""
    response = dicomweb.get("changefeed", headers={"Accept": "application/json"})
    if response.status_code in expect.ROUTE_ABSENT:
        expect.not_implemented(f"no change feed: GET changefeed answered {response.status_code}")
    expect.status(response, 200)
    assert isinstance(json_body(response), list), "the change feed is not a JSON array"


# Step 2: store (STOW-RS) ------------------------------------------------------------------------


@pytest.mark.requirement("ARTICLE-STORE-ONE")
def test_store_one_instance_multipart(dicomweb: Client, new_article_study: NewStudy) -> None:
    """POST /studies with blue-circle.dcm as multipart/related stores it."""
    study = new_article_study()
    response = stow(dicomweb, [study.blue])
    expect.status(response, 200)
    assert_store_response(response, [study.blue])
    expect.stored_and_retrievable(dicomweb, [study.blue])


@pytest.mark.requirement("ARTICLE-STORE-TWO")
def test_store_two_instances_in_one_request(dicomweb: Client, new_article_study: NewStudy) -> None:
    """POST /studies with red-triangle.dcm and green-square.dcm in one request stores both."""
    study = new_article_study()
    response = stow(dicomweb, [study.red, study.green])
    expect.status(response, 200)
    assert_store_response(response, [study.red, study.green])
    expect.stored_and_retrievable(dicomweb, [study.red, study.green])


@pytest.mark.requirement("ARTICLE-STORE-STUDY-PATH")
def test_store_to_study_path(dicomweb: Client, new_article_study: NewStudy) -> None:
    """POST /studies/{study} with an instance of that study stores it."""
    study = new_article_study()
    response = stow(dicomweb, [study.blue], study_uid=study.study_uid)
    expect.status(response, 200)
    assert_store_response(response, [study.blue])
    expect.stored_and_retrievable(dicomweb, [study.blue])


# Step 3: a single-part store of an instance already stored -------------------------------------


@pytest.mark.requirement("ARTICLE-STORE-SINGLE-PART-CONFLICT")
def test_single_part_store_of_stored_instance_conflicts(
    dicomweb: Client, new_study: NewStudy
) -> None:
    """POST /studies with Content-Type application/dicom of a stored instance: 409 Conflict."""
    study = new_study()
    expect.answered(stow(dicomweb, [study.blue]), 200)
    response = stow_single(dicomweb, study.blue)
    if response.status_code == 415 or response.status_code in expect.ROUTE_ABSENT:
        expect.not_implemented(
            f"no single-part application/dicom STOW: it answered {response.status_code}"
        )
    expect.status(response, 409)
    expect.stored_and_retrievable(dicomweb, [study.blue])


# Step 4: retrieve (WADO-RS) ---------------------------------------------------------------------


@pytest.mark.requirement("ARTICLE-RETRIEVE-STUDY")
def test_study_retrieve_returns_the_three_instances(
    dicomweb: Client, stored_study: SampleStudy
) -> None:
    got = expect.retrieved(dicomweb, f"studies/{stored_study.study_uid}")
    expect.same_instances(got, list(stored_study))


@pytest.mark.requirement("ARTICLE-RETRIEVE-SERIES")
def test_series_retrieve_returns_only_that_series(
    dicomweb: Client, stored_study: SampleStudy
) -> None:
    red = stored_study.red
    got = expect.retrieved(dicomweb, f"studies/{red.study_uid}/series/{red.series_uid}")
    expect.same_instances(got, stored_study.in_series(red.series_uid))


def _retrieve_as_single_part(dicomweb: Client, instance: Instance) -> requests.Response:
    """The article's request: the instance, with application/dicom the only media type asked."""
    return retrieve(dicomweb, instance_path(instance), SINGLE_PART_ACCEPT)


def _content_type(response: requests.Response) -> str:
    value = response.headers.get("Content-Type")
    return f"Content-Type {value!r}" if value else "no Content-Type"


@pytest.mark.parametrize(
    "accept",
    [
        pytest.param(
            SINGLE_PART_ACCEPT,
            id="accept=application/dicom",
            marks=pytest.mark.requirement("ARTICLE-RETRIEVE-INSTANCE-UNSUPPORTED-MEDIA-TYPE"),
        ),
        pytest.param(
            ACCEPT_DICOM_ANY_TS,
            id='accept=multipart/related; type="application/dicom"',
            marks=pytest.mark.requirement("ARTICLE-RETRIEVE-INSTANCE"),
        ),
    ],
)
def test_instance_retrieve_returns_red_triangle(
    dicomweb: Client, stored_study: SampleStudy, accept: str
) -> None:
    """The article asks for the instance single-part, an optional media type; multipart is the
    default, which every server has. Asked for application/dicom alone, a server without it
    answers in the default media type (PS3.18 Table 8.7.3-1, 8.7.3.1, 8.3.3.1) or 406 (8.7.8.1):
    2024c says both, so either passes and the one given is recorded."""
    red = stored_study.red
    if accept == SINGLE_PART_ACCEPT:
        response = _retrieve_as_single_part(dicomweb, red)
        if expect.chose_406(response):
            return
        expect.status(
            response,
            200,
            406,
            why="application/dicom if offered; else the default media type (PS3.18 Table "
            "8.7.3-1) or 406 (8.7.8.1)",
        )
        kind, params = media_type(response)
        if kind == DICOM:
            expect.chose("single-part")
            datasets = [read_dicom(response.content, "the response body")]
        else:
            assert kind == "multipart/related" and params.get("type", DICOM).lower() == DICOM, (
                f"Accept {SINGLE_PART_ACCEPT} was answered with {_content_type(response)}: "
                f'neither {DICOM} nor the default multipart/related; type="{DICOM}"'
            )
            expect.chose("default-media-type")
            datasets = expect.dicom_parts(dicomweb, response)
        expect.same_instances(datasets, [red])
        return
    response = retrieve(dicomweb, instance_path(red), accept)
    expect.status(response, 200)
    assert media_type(response)[0] == "multipart/related", (
        f"Accept {accept} was answered with {_content_type(response)}"
    )
    expect.same_instances(expect.iter_dicom_parts(dicomweb, response), [red])


@pytest.mark.requirement("ARTICLE-RETRIEVE-INSTANCE-SINGLE-PART")
def test_instance_retrieve_single_part_is_red_triangle(
    dicomweb: Client, stored_study: SampleStudy
) -> None:
    """A server that offers application/dicom for an instance selects it when it is the only
    media type asked, and the body is exactly the instance. Any other answer is a server
    without it (how that server must answer is the check above's)."""
    red = stored_study.red
    response = _retrieve_as_single_part(dicomweb, red)
    if response.status_code != 200 or declared_media_type(response) != DICOM:
        expect.not_implemented(
            f"no single-part {DICOM} retrieve: it answered {response.status_code} "
            f"with {_content_type(response)}"
        )
    expect.same_instances([read_dicom(response.content, "the response body")], [red])


# Step 5: metadata -------------------------------------------------------------------------------


@pytest.mark.requirement("ARTICLE-METADATA")
@pytest.mark.parametrize("level", ["study", "series", "instance"])
def test_metadata_describes_each_instance(
    dicomweb: Client, stored_study: SampleStudy, level: str
) -> None:
    red = stored_study.red
    path, expected = {
        "study": (f"studies/{red.study_uid}", list(stored_study)),
        "series": (
            f"studies/{red.study_uid}/series/{red.series_uid}",
            stored_study.in_series(red.series_uid),
        ),
        "instance": (instance_path(red), [red]),
    }[level]
    objects = expect.metadata_objects(dicomweb, path)
    assert sorted(uids(objects, SOP_UID)) == sorted(i.sop_uid for i in expected), (
        f"{level} metadata describes SOP instances {uids(objects, SOP_UID)}, "
        f"expected {[i.sop_uid for i in expected]}"
    )
    # Each object names its own instance's study and series: the same UIDs shuffled between
    # objects are as wrong as UIDs of no instance.
    by_uid = {i.sop_uid: i for i in expected}
    wrong = []
    for sop, study, series in zip(
        uids(objects, SOP_UID), uids(objects, STUDY_UID), uids(objects, SERIES_UID), strict=True
    ):
        if (study, series) != (by_uid[sop].study_uid, by_uid[sop].series_uid):
            wrong.append(f"{sop}: study {study}, series {series}")
    assert not wrong, f"{level} metadata names another study or series than stored: {wrong}"


# Step 6: frames ---------------------------------------------------------------------------------


@pytest.mark.requirement("ARTICLE-FRAME")
def test_frame_1_of_red_triangle_is_its_pixel_data(
    dicomweb: Client, stored_study: SampleStudy
) -> None:
    red = stored_study.red
    response = retrieve(dicomweb, f"{instance_path(red)}/frames/1", ACCEPT_FRAMES_ANY_TS)
    if response.status_code in expect.ROUTE_ABSENT:
        expect.not_implemented(f"no frames resource: it answered {response.status_code}")
    expect.status(response, 200)
    found = parts(dicomweb, response)
    assert len(found) == 1, f"expected 1 part for one frame, got {len(found)}"
    frame = found[0].body
    # The PixelData element is padded to an even length; a server may send the pad byte along.
    expect.same_bytes(
        frame,
        red.dataset.PixelData[:FRAME_BYTES],
        "frame 1 (979 x 985 x 3 bytes of the red triangle)",
        padded=True,
    )


# Step 7: search (QIDO-RS) ----------------------------------------------------------------------

SEARCHES = {
    "studies?StudyInstanceUID": ("studies", "StudyInstanceUID", STUDY_UID),
    "series?SeriesInstanceUID": ("series", "SeriesInstanceUID", SERIES_UID),
    "studies/{study}/series?SeriesInstanceUID": (
        "studies/{study}/series",
        "SeriesInstanceUID",
        SERIES_UID,
    ),
    "instances?SOPInstanceUID": ("instances", "SOPInstanceUID", SOP_UID),
    "studies/{study}/instances?SOPInstanceUID": (
        "studies/{study}/instances",
        "SOPInstanceUID",
        SOP_UID,
    ),
    "studies/{study}/series/{series}/instances?SOPInstanceUID": (
        "studies/{study}/series/{series}/instances",
        "SOPInstanceUID",
        SOP_UID,
    ),
}


RELATIONAL = {"series?SeriesInstanceUID", "instances?SOPInstanceUID"}
RELATIONAL.add("studies/{study}/instances?SOPInstanceUID")


@pytest.mark.parametrize(
    "resource",
    [
        pytest.param(
            resource,
            marks=pytest.mark.requirement(
                "ARTICLE-SEARCH-RELATIONAL-BY-UID"
                if resource in RELATIONAL
                else "ARTICLE-SEARCH-BY-UID"
            ),
        )
        for resource in SEARCHES
    ],
)
def test_search_finds_exactly_the_one_by_uid(
    dicomweb: Client, stored_study: SampleStudy, resource: str
) -> None:
    path, key, tag = SEARCHES[resource]
    red = stored_study.red
    wanted = {
        "StudyInstanceUID": red.study_uid,
        "SeriesInstanceUID": red.series_uid,
        "SOPInstanceUID": red.sop_uid,
    }[key]
    response = search(
        dicomweb, path.format(study=red.study_uid, series=red.series_uid), **{key: wanted}
    )
    if resource in RELATIONAL and response.status_code in expect.ROUTE_ABSENT:
        expect.not_implemented(f"no relational search: {path} answered {response.status_code}")
    expect.status(response, 200)
    found = uids(search_results(response), tag)
    assert found == [wanted], f"expected exactly [{wanted}], the search returned {found}"


# Step 8: delete (an Azure extension) and what must follow it -----------------------------------


def _gone(response: requests.Response, what: str) -> None:
    """What was deleted answers 404 (the article: "never existed or are already deleted") or
    410 (PS3.18 Table 8.5-1, where the server knows of the deletion); records which."""
    expect.status(response, 404, 410, why=f"{what} was deleted")
    expect.chose("404-not-found" if response.status_code == 404 else "410-gone")


def _sop_uids_in_study(
    dicomweb: Client, study: SampleStudy, *, all_deleted: bool = False
) -> list[str]:
    """The instances searches find in the study (read back after a delete), through the
    hierarchical resources every server has. The study has two series: a server listing more
    (or series without a UID) has already failed, and is not asked once per series it invents.
    Once the whole study is deleted, "not there" (404, 410) is a fair answer too."""
    gone = (404, 410) if all_deleted else ()
    response = search(dicomweb, f"studies/{study.study_uid}/series")
    if response.status_code in gone:
        return []
    series = uids(expect.results(response), SERIES_UID)
    assert None not in series, "a series in the search results has no SeriesInstanceUID"
    assert len(series) <= len(study.series_uids), (
        f"a search lists {len(series)} series in a study of {len(study.series_uids)}"
    )
    found = []
    for series_uid in series:
        response = search(dicomweb, f"studies/{study.study_uid}/series/{series_uid}/instances")
        if response.status_code in gone:
            continue
        found += uids(expect.results(response), SOP_UID)
    return found


@pytest.mark.requirement("ARTICLE-DELETE", "AZ-DELETE-GONE-404")
@pytest.mark.parametrize(
    "target",
    [
        pytest.param(target, marks=pytest.mark.requirement(f"AZ-DELETE-{target.upper()}"))
        for target in ("instance", "series", "study")
    ],
)
def test_delete_removes_exactly_its_target(
    dicomweb: Client, new_study: NewStudy, target: str
) -> None:
    """DELETE answers 204; the deleted resource then answers 404 or 410 and the rest of the
    study stays.

    The article deletes red-triangle, then its series (removing green-square), then the study.
    """
    study = new_study()
    expect.answered(stow(dicomweb, list(study)), 200)
    red = study.red
    path, deleted = {
        "instance": (instance_path(red), [red]),
        "series": (f"studies/{red.study_uid}/series/{red.series_uid}", [red, study.green]),
        "study": (f"studies/{red.study_uid}", list(study)),
    }[target]
    deleted_uids = {i.sop_uid for i in deleted}

    response = dicomweb.delete(path)
    # The DELETE's own answer first: a server without DELETE is judged on that, not on a search.
    if response.status_code in (405, 501):
        expect.not_implemented(f"no DELETE of the {target}: it answered {response.status_code}")
    if response.status_code == 404:
        still_there = deleted_uids & set(_sop_uids_in_study(dicomweb, study))
        if still_there:
            expect.not_implemented(f"no DELETE of the {target}: it answered 404")
    expect.status(response, 204)

    _gone(dicomweb.get(path, headers={"Accept": ACCEPT_DICOM_ANY_TS}), f"the {target}")
    for instance in deleted:
        _gone(dicomweb.get(instance_path(instance)), f"instance {instance.sop_uid}")
    _gone(dicomweb.delete(path), f"the {target} (DELETE again)")
    expected = study.sop_uids - deleted_uids
    remaining = sorted(_sop_uids_in_study(dicomweb, study, all_deleted=not expected))
    assert remaining == sorted(expected), (
        f"after deleting the {target}, a search finds {remaining} in the study"
    )
