"""The stateful properties queue the reads between two writes and ask them together just before
the next write (checks/test_properties_stateful.py, ``Archive``). What each read's failure says
was done before it is fixed when the read is queued: reads queued after it, and asked with it,
are not among them. No server: a client whose searches answer from a table."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import requests

from conformance.checks.stateful_study import SEARCHES, StudyModel
from conformance.checks.test_properties_stateful import Archive
from conformance.run.fixtures import EmptyStudy

STUDY = EmptyStudy("2.25.1", "DWC-test")


class TableClient:
    """Answers a GET of a path with the results ``table`` holds for it (none by default)."""

    def __init__(self, table: dict[str, list[dict[str, Any]]]) -> None:
        self.table = table
        self.asked: list[str] = []

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        self.asked.append(path)
        response = requests.Response()
        response.status_code = 200
        response.headers["Content-Type"] = "application/dicom+json"
        response._content = json.dumps(self.table.get(path, [])).encode()
        response.request = requests.Request("GET", f"http://server/{path}").prepare()
        return response

    def each(self, calls: Iterable[Callable[[], Any]], writes: bool = False) -> list[Any]:
        """As Client.each at once: every call asked, then the first error in order raised."""
        outcomes: list[tuple[Any, BaseException | None]] = []
        for call in calls:
            try:
                outcomes.append((call(), None))
            except AssertionError as failure:
                outcomes.append((None, failure))
        for _, raised in outcomes:
            if raised is not None:
                raise raised
        return [value for value, _ in outcomes]


def test_a_read_failing_among_others_asked_with_it_names_only_what_came_before_it() -> None:
    stray = {"0020000E": {"vr": "UI", "Value": ["2.25.9"]}}  # a series never stored
    client = TableClient({"studies/2.25.1/series": [stray]})
    archive = Archive(client, STUDY, 1, StudyModel(), SEARCHES)  # type: ignore[arg-type]
    archive.do(("search series", 1))
    archive.do(("list instances", 2))
    assert client.asked == []  # queued, not yet asked
    with pytest.raises(AssertionError) as failed:
        archive.flush()
    assert str(failed.value).startswith("after search series 1 (in a study holding 0 ")
    assert "list instances" not in str(failed.value)
    assert client.asked == ["studies/2.25.1/series", "studies/2.25.1/series/2.25.1.12/instances"]
