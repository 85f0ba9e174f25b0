"""heldstudy: a study the server holds, sampled from its answers (no server: a fake answers)."""

from __future__ import annotations

import json
from typing import Any, cast

import pytest
import requests

from conformance import heldstudy, samples
from conformance.client import Client
from conformance.heldstudy import HeldStudy, first_instance, is_whole, path_of
from conformance.verdicts import PreconditionFailed

STUDY = "1.2.3"


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
    # One series search, one instance search per sampled series, one metadata read each.
    assert len(server.asked) == 1 + 3 + 9
    searches = [query for path, query in server.asked if not path.endswith("/metadata")]
    assert all(query == [("limit", "4")] for query in searches)


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
        {f"studies/{STUDY}/series/1.2.3.1/instances/1.2.3.1.1/metadata": (406, None)},
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
        "metadata-406",
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


def test_a_held_study_is_no_sample_study() -> None:
    held = heldstudy.read(study({"1.2.3.1": 1}).client, STUDY)
    assert isinstance(held, HeldStudy) and not hasattr(held.instances[0], "data")
