"""heldstudy: a study the server holds, sampled from its answers (no server: a fake answers)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

import pytest
import requests
from pydicom.dataset import Dataset

from conformance import held, heldstudy, samples
from conformance.checks.wadodata import assert_as_its_metadata_says
from conformance.client import Client
from conformance.heldstudy import HeldStudy, first_instance, is_whole, path_of
from conformance.verdicts import PreconditionFailed

STUDY = "1.2.3"
T = TypeVar("T")


def uid(value: str) -> dict[str, Any]:
    return {"vr": "UI", "Value": [value]}


class FakeServer:
    """Answers GETs from a table of path -> (status, body); records what was asked."""

    def __init__(self, answers: dict[str, tuple[int, Any]]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, list[tuple[str, str]]]] = []

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        query = list(kwargs.get("query") or [])
        self.asked.append((path, query))
        status, body = self.answers.get(path, (404, None))
        response = requests.Response()
        response.status_code = status
        response.reason = {200: "OK", 204: "No Content", 404: "Not Found"}.get(status, "")
        response._content = b"" if body is None else json.dumps(body).encode()
        response.headers["Content-Type"] = "application/dicom+json"
        response.request = requests.Request("GET", f"http://pacs/{path}").prepare()
        return response

    def each(self, calls: Iterable[Callable[[], T]]) -> list[T]:
        """As Client.each at concurrency 1: in turn."""
        return [call() for call in calls]

    @property
    def client(self) -> Client:
        return cast(Client, self)


def study(series: dict[str, int], **overrides: tuple[int, Any]) -> FakeServer:
    """A study of series -> instance count; its searches answer as a server honouring limit."""
    answers: dict[str, tuple[int, Any]] = {
        f"studies/{STUDY}/series": (200, [{"0020000E": uid(s)} for s in series][:4])
    }
    for s, count in series.items():
        path = f"studies/{STUDY}/series/{s}/instances"
        sops = [f"{s}.{n}" for n in range(1, count + 1)]
        answers[path] = (200, [{"00080018": uid(sop)} for sop in sops][:4])
        for sop in sops:
            answers[f"{path}/{sop}/metadata"] = (
                200,
                [
                    {
                        "00080018": uid(sop),
                        "00080060": {"vr": "CS", "Value": ["MR"]},
                        "0020000D": uid(STUDY),
                        "0020000E": uid(s),
                        "7FE00010": {"vr": "OW", "BulkDataURI": f"http://pacs/{sop}/pixels"},
                    }
                ],
            )
    answers.update(overrides)
    return FakeServer(answers)


def test_a_small_study_is_sampled_whole() -> None:
    server = study({"1.2.3.1": 2, "1.2.3.2": 1})
    held = heldstudy.read(server.client, STUDY)
    assert [i.name for i in held] == ["held-1", "held-2", "held-3"]
    assert held.series_uids == ["1.2.3.1", "1.2.3.2"] and len(held) == 3
    assert held.sop_uids == {"1.2.3.1.1", "1.2.3.1.2", "1.2.3.2.1"}
    assert [i.sop_uid for i in held.in_series("1.2.3.1")] == ["1.2.3.1.1", "1.2.3.1.2"]
    assert held.study_uid == STUDY and held.is_whole() and is_whole(held, "1.2.3.2")
    assert "(the whole study)" in held.sampled
    first = first_instance(held)
    assert first.dataset.Modality == "MR" and first.dataset.SOPInstanceUID == "1.2.3.1.1"
    assert path_of(first) == f"studies/{STUDY}/series/1.2.3.1/instances/1.2.3.1.1"


def test_bulk_data_is_left_out_and_never_fetched() -> None:
    server = study({"1.2.3.1": 1})
    held = heldstudy.read(server.client, STUDY)
    assert "PixelData" not in held.instances[0].dataset
    assert not any("pixels" in path for path, _ in server.asked)


def test_a_large_study_is_sampled_within_the_bounds_and_says_so() -> None:
    series = {f"1.2.3.{n}": 50 for n in range(1, 11)}
    server = study(series)
    held = heldstudy.read(server.client, STUDY)
    assert len(held.series_uids) == heldstudy.SERIES_SAMPLED
    assert len(held) == heldstudy.SERIES_SAMPLED * heldstudy.INSTANCES_SAMPLED
    assert not held.is_whole() and not held.is_whole("1.2.3.1")
    assert "a sample" in held.sampled
    # One series search, one instance search per sampled series, one metadata read each, and
    # one bounded search for the features the sample lacks (a multi-frame image, an instance
    # without pixel data; this server does not answer it, so none is found).
    assert len(server.asked) == 1 + 3 + 9 + 1
    searches = [query for path, query in server.asked if not path.endswith("/metadata")]
    assert all(query == [("limit", "4")] for query in searches[:-1])
    assert searches[-1][0] == ("limit", str(heldstudy.FEATURE_SEARCHED))
    assert held.extras == () and heldstudy.with_feature(held, "multiframe") is None


def test_one_large_series_makes_the_study_a_sample_but_not_the_others() -> None:
    held = heldstudy.read(study({"1.2.3.1": 1, "1.2.3.2": 7}).client, STUDY)
    assert held.is_whole("1.2.3.1") and not held.is_whole("1.2.3.2") and not held.is_whole()


def test_a_study_the_run_stored_is_always_whole_and_red_is_its_instance() -> None:
    stored = samples.load()
    assert is_whole(stored) and is_whole(stored, stored.blue.series_uid)
    assert first_instance(stored) is stored.red
    assert path_of(stored.red).endswith(f"/instances/{stored.red.sop_uid}")


@pytest.mark.parametrize(
    "broken",
    [
        {f"studies/{STUDY}/series": (500, None)},
        {f"studies/{STUDY}/series": (200, {"not": "an array"})},
        {f"studies/{STUDY}/series": (204, None)},
        {f"studies/{STUDY}/series": (200, [{"00080060": {"vr": "CS", "Value": ["MR"]}}])},
        {f"studies/{STUDY}/series/1.2.3.1/instances": (404, None)},
        {f"studies/{STUDY}/series/1.2.3.1/instances/1.2.3.1.1/metadata": (500, None)},
        {f"studies/{STUDY}/series/1.2.3.1/instances/1.2.3.1.1/metadata": (200, [])},
        {
            f"studies/{STUDY}/series/1.2.3.1/instances/1.2.3.1.1/metadata": (
                200,
                [{"00080018": uid("9.9.9")}],
            )
        },
        {
            f"studies/{STUDY}/series/1.2.3.1/instances/1.2.3.1.1/metadata": (
                200,
                [{"00080018": {"vr": "XX", "Value": [1]}}],
            )
        },
    ],
    ids=[
        "series-search-500",
        "series-search-not-an-array",
        "no-series",
        "series-without-uid",
        "instance-search-404",
        "metadata-500",
        "metadata-empty",
        "metadata-of-another-instance",
        "metadata-unreadable",
    ],
)
def test_an_answer_that_cannot_be_read_is_a_precondition_never_a_failure(
    broken: dict[str, tuple[int, Any]],
) -> None:
    server = study({"1.2.3.1": 1}, **broken)
    with pytest.raises(PreconditionFailed):
        heldstudy.read(server.client, STUDY)


@pytest.mark.parametrize("status", heldstudy.NO_METADATA)
def test_without_metadata_the_sample_is_what_the_searches_say(status: int) -> None:
    """A server with no metadata to give (tiny-pacs: 404) is still sampled, each instance as its
    search result describes it: the checks of metadata judge the absence, the others run."""
    path = f"studies/{STUDY}/series/1.2.3.1/instances/1.2.3.1.1/metadata"
    held = heldstudy.read(study({"1.2.3.1": 1}, **{path: (status, None)}).client, STUDY)
    assert [i.sop_uid for i in held] == ["1.2.3.1.1"]
    assert str(held.instances[0].dataset.SeriesInstanceUID) == "1.2.3.1"
    assert held.instances[0].bulk == frozenset()


def test_a_held_study_is_no_sample_study() -> None:
    held = heldstudy.read(study({"1.2.3.1": 1}).client, STUDY)
    assert isinstance(held, HeldStudy) and not hasattr(held.instances[0], "data")


def image(sop: str, series: str, frames: int | None = None) -> dict[str, Any]:
    """A search result or metadata of an image (Rows), multi-frame if ``frames`` > 1."""
    obj = {
        "00080016": uid("1.2.840.10008.5.1.4.1.1.7"),
        "00080018": uid(sop),
        "0020000D": uid(STUDY),
        "0020000E": uid(series),
        "00280010": {"vr": "US", "Value": [8]},
    }
    if frames is not None:
        obj["00280008"] = {"vr": "IS", "Value": [frames]}
    return obj


def report(sop: str, series: str) -> dict[str, Any]:
    """An instance without pixel data: an SR, no Rows."""
    return {
        "00080016": uid("1.2.840.10008.5.1.4.1.1.88.11"),
        "00080018": uid(sop),
        "0020000D": uid(STUDY),
        "0020000E": uid(series),
    }


def with_features_outside_the_sample(**overrides: tuple[int, Any]) -> FakeServer:
    """Five series of one image each (only three sampled); a multi-frame image and an SR in
    the two series the sample leaves out."""
    sampled = {f"1.2.3.{n}": 1 for n in range(1, 6)}
    server = study(sampled)
    for n in range(1, 4):
        path = f"studies/{STUDY}/series/1.2.3.{n}/instances/1.2.3.{n}.1/metadata"
        server.answers[path] = (200, [image(f"1.2.3.{n}.1", f"1.2.3.{n}")])
    found = [image(f"1.2.3.{n}.1", f"1.2.3.{n}") for n in range(1, 4)]
    found += [image("1.2.3.4.1", "1.2.3.4", frames=4), report("1.2.3.5.1", "1.2.3.5")]
    server.answers[f"studies/{STUDY}/instances"] = (200, found)
    for obj in found[3:]:
        series, sop = obj["0020000E"]["Value"][0], obj["00080018"]["Value"][0]
        path = f"studies/{STUDY}/series/{series}/instances/{sop}/metadata"
        server.answers[path] = (200, [obj])
    server.answers.update(overrides)
    return server


def test_features_the_sample_lacks_are_found_by_one_bounded_search() -> None:
    server = with_features_outside_the_sample()
    held = heldstudy.read(server.client, STUDY)
    multiframe = heldstudy.with_feature(held, "multiframe")
    no_pixels = heldstudy.with_feature(held, "no_pixels")
    assert multiframe is not None and multiframe.sop_uid == "1.2.3.4.1"
    assert heldstudy.number_of_frames(multiframe) == 4
    assert no_pixels is not None and no_pixels.sop_uid == "1.2.3.5.1"
    # The extras are no part of the sample: it stays three series, and not the whole study.
    assert len(held) == 3 and held.sop_uids == {"1.2.3.1.1", "1.2.3.2.1", "1.2.3.3.1"}
    assert [i.name for i in held.extras] == ["held-extra-1", "held-extra-2"]
    assert not held.is_whole()
    feature_search = [q for p, q in server.asked if p == f"studies/{STUDY}/instances"]
    assert feature_search == [
        [
            ("limit", str(heldstudy.FEATURE_SEARCHED)),
            ("includefield", heldstudy.NUMBER_OF_FRAMES),
            ("includefield", heldstudy.ROWS),
        ]
    ]
    assert len(server.asked) == 1 + 3 + 3 + 1 + 2
    image_held = heldstudy.with_feature(held, "image")
    assert image_held is not None and image_held.name == "held-1"


def test_a_sample_showing_every_feature_searches_no_further() -> None:
    server = with_features_outside_the_sample()
    server.answers[f"studies/{STUDY}/series"] = (200, [{"0020000E": uid("1.2.3.4")}])
    server.answers[f"studies/{STUDY}/series/1.2.3.4/instances"] = (
        200,
        [{"00080018": uid("1.2.3.4.1")}, {"00080018": uid("1.2.3.5.1")}],
    )
    server.answers[f"studies/{STUDY}/series/1.2.3.4/instances/1.2.3.5.1/metadata"] = (
        200,
        [report("1.2.3.5.1", "1.2.3.4")],
    )
    held = heldstudy.read(server.client, STUDY)
    assert held.extras == () and held.is_whole()
    assert heldstudy.with_feature(held, "multiframe") is not None
    assert heldstudy.with_feature(held, "no_pixels") is not None
    assert not any(p == f"studies/{STUDY}/instances" for p, _ in server.asked)


@pytest.mark.parametrize(
    "answer",
    [(500, None), (200, {"not": "an array"}), (200, [image("1.2.3.4.1", "1.2.3.4", frames=1)])],
    ids=["search-500", "not-an-array", "no-multi-frame-listed"],
)
def test_a_feature_search_that_finds_nothing_leaves_the_feature_absent_never_an_error(
    answer: tuple[int, Any],
) -> None:
    server = with_features_outside_the_sample(**{f"studies/{STUDY}/instances": answer})
    held = heldstudy.read(server.client, STUDY)
    assert heldstudy.with_feature(held, "multiframe") is None
    assert len(held) == 3


def test_a_listed_feature_the_metadata_does_not_show_is_not_taken() -> None:
    """The search says four frames, the metadata one: the metadata decides."""
    server = with_features_outside_the_sample()
    path = f"studies/{STUDY}/series/1.2.3.4/instances/1.2.3.4.1/metadata"
    server.answers[path] = (200, [image("1.2.3.4.1", "1.2.3.4", frames=1)])
    held = heldstudy.read(server.client, STUDY)
    assert heldstudy.with_feature(held, "multiframe") is None
    assert [p for p, _ in server.asked].count(path) == 1


@pytest.mark.parametrize(
    ("offered", "compressed"),
    [("1.2.840.10008.1.2.4.50", True), ("1.2.840.10008.1.2.1", False), (None, False)],
    ids=["jpeg-baseline", "explicit-vr-le", "not-said"],
)
def test_compressed_only_where_the_metadata_says_so(offered: str | None, compressed: bool) -> None:
    obj = image("1.2.3.1.1", "1.2.3.1")
    if offered is not None:
        obj["00083002"] = uid(offered)
    dataset = Dataset.from_json(obj)
    assert heldstudy.has_feature(dataset, "compressed") is compressed
    assert heldstudy.has_feature(dataset, "image") and not heldstudy.has_feature(
        dataset, "no_pixels"
    )


def test_of_instances_with_a_feature_the_smallest_stands_for_it() -> None:
    """The checks read it whole: the one with the fewest pixel bytes by its metadata."""
    server = study({"1.2.3.1": 3})
    sizes = {"1.2.3.1.1": 512, "1.2.3.1.2": 64, "1.2.3.1.3": 64}
    for sop, rows in sizes.items():
        obj = image(sop, "1.2.3.1")
        obj["00280010"] = {"vr": "US", "Value": [rows]}
        obj["00280011"] = {"vr": "US", "Value": [rows]}
        path = f"studies/{STUDY}/series/1.2.3.1/instances/{sop}/metadata"
        server.answers[path] = (200, [obj])
    held = heldstudy.read(server.client, STUDY)
    smallest = heldstudy.with_feature(held, "image")
    assert smallest is not None and smallest.sop_uid == "1.2.3.1.2"


@pytest.mark.parametrize(
    "result",
    [
        {"0020000D": {"vr": "UI", "Value": "1.2.3"}},  # a value that is no array
        {"0020000d": {"vr": "UI", "Value": [["1.2.3"]]}},  # a lower-case tag, a nested array
    ],
)
def test_a_malformed_search_result_names_no_study_and_never_stops_the_run(
    result: dict[str, Any],
) -> None:
    """The studies a read-only run reads are found by searches (conformance/held.py): a result
    the suite cannot read is a study not found, one line, never an internal error."""
    server = FakeServer({"studies": (200, [result])})
    named = held.held_studies(server.client, ["1.2.3"], None)
    assert named.studies == () and named.missing == ("1.2.3",) and named.problem
    found = held.held_studies(server.client, [], 2)
    assert found.problem == "nothing to read: a search of studies lists none"


def test_a_retrieve_is_held_only_to_what_a_search_says_of_the_instance_itself() -> None:
    """Without metadata the sample comes from searches, which say things of the study and series
    (one Patient's Name per patient, where the instances differ) and of the result (UTF-8,
    RetrieveURL): a retrieve is held to the instance-level values only, never accused for those."""
    path = f"studies/{STUDY}/series/1.2.3.1/instances"
    row = {
        "00080005": {"vr": "CS", "Value": ["ISO_IR 192"]},
        "00080018": uid("1.2.3.1.1"),
        "00081190": {"vr": "UR", "Value": ["http://pacs/studies/1.2.3"]},
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Kept^OnePerPatient"}]},
        "00200013": {"vr": "IS", "Value": [7]},
    }
    answers = {path: (200, [row]), f"{path}/1.2.3.1.1/metadata": (404, None)}
    held = heldstudy.read(study({"1.2.3.1": 1}, **answers).client, STUDY).instances[0]
    assert held.from_search and "PatientName" in held.dataset  # the searches still use it
    own = sorted(e.keyword for e in held.own())
    assert own == ["InstanceNumber", "SOPInstanceUID"], own
    retrieved = Dataset()
    retrieved.SpecificCharacterSet = "ISO_IR 100"
    retrieved.SOPInstanceUID = "1.2.3.1.1"
    retrieved.PatientName = "Its^Own"
    retrieved.InstanceNumber = 7
    assert_as_its_metadata_says(retrieved, held)  # no accusation for what is not its own
    retrieved.InstanceNumber = 8
    with pytest.raises(AssertionError, match=r"differs from its metadata in: \['InstanceNumber'\]"):
        assert_as_its_metadata_says(retrieved, held)
