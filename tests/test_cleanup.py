"""Cleanup counts only what it found and removed, and asks what the server is without failing.

A fake client answers each request from a table, so every answer a server can give is a line
here; the guard is not part of these tests (it has its own, test_guard.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import pytest
import requests

from conformance.cleanup import IDENTITY_TIMEOUT, Cleaner, orthanc_name, orthanc_product
from conformance.client import Client
from conformance.errors import NoAnswer
from conformance.guard import Registry

T = TypeVar("T")

BASE = "http://pacs/dicom-web"
ROOT = "http://pacs"
ONE, TWO = "2.25.1", "2.25.2"

Answer = tuple[int, Any]  # status, JSON body (None: no body)


def response(status: int, body: Any = None) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = b"" if body is None else json.dumps(body).encode()
    return answer


class FakeClient:
    """Answers (method, path) from a table, a callable for answers that change; records calls."""

    def __init__(self, answers: Mapping[tuple[str, str], Any]) -> None:
        """``answers``: (method, path) -> an Answer, a callable giving one, or an exception."""
        self.base_url = BASE
        self.answers = dict(answers)
        self.sent: list[tuple[str, str]] = []
        self.brief_timeouts: list[float] = []

    def each(self, calls: Iterable[Callable[[], T]], writes: bool = False) -> list[T]:
        return [call() for call in calls]

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        key = (method, path.removeprefix(BASE + "/"))
        if kwargs.get("query"):
            key = (method, key[1] + "?" + "&".join(f"{k}={v}" for k, v in kwargs["query"]))
        self.sent.append(key)
        found = self.answers.get(key, (404, None))
        if isinstance(found, Exception):
            raise found
        status, body = found() if callable(found) else found
        return response(status, body)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    @contextmanager
    def brief(self, timeout: float) -> Iterator[None]:
        self.brief_timeouts.append(timeout)
        yield


def cleaner(client: FakeClient, mode: str, *studies: str) -> Cleaner:
    registry = Registry()
    for uid in studies:
        registry.add(uid, "a check", "DWC-run")
    return Cleaner(cast(Client, client), registry, mode)


def test_a_dicomweb_delete_counts_the_studies_it_deleted() -> None:
    client = FakeClient({("DELETE", f"studies/{ONE}"): (204, None)})
    report = cleaner(client, "dicomweb", ONE).run()
    assert (report.removed, report.leftovers) == ([ONE], {})


def test_a_study_never_stored_is_not_counted_as_removed() -> None:
    """Its store failed (or never happened): the DELETE finds nothing, and the report says
    nothing was removed, not "removed 1"."""
    client = FakeClient(
        {
            ("DELETE", f"studies/{ONE}"): (404, None),
            ("GET", f"studies?StudyInstanceUID={ONE}"): (200, []),
        }
    )
    report = cleaner(client, "dicomweb", ONE).run()
    assert (report.removed, report.leftovers, report.foreign) == ([], {}, {})


def test_auto_cleanup_counts_the_study_its_first_delete_removed_once() -> None:
    """In auto mode the first DELETE tells whether the server has DICOMweb DELETE; the study it
    removed is counted, and not deleted again (which would find it gone)."""
    deleted: set[str] = set()

    def delete(uid: str) -> Callable[[], Answer]:
        def answer() -> Answer:
            gone = uid in deleted
            deleted.add(uid)
            return (404, None) if gone else (204, None)

        return answer

    client = FakeClient(
        {
            ("DELETE", f"studies/{ONE}"): delete(ONE),
            ("DELETE", f"studies/{TWO}"): delete(TWO),
            ("GET", f"studies?StudyInstanceUID={ONE}"): (200, []),
        }
    )
    report = cleaner(client, "auto", ONE, TWO).run()
    assert (report.method, sorted(report.removed)) == ("dicomweb", [ONE, TWO])
    assert client.sent.count(("DELETE", f"studies/{ONE}")) == 1


def test_orthanc_cleanup_counts_only_studies_its_lookup_found() -> None:
    client = FakeClient({("POST", f"{ROOT}/tools/lookup"): (200, [])})
    report = cleaner(client, "orthanc", ONE).run()
    assert (report.method, report.removed, report.leftovers) == ("orthanc", [], {})


def test_orthanc_cleanup_counts_a_study_it_found_and_deleted() -> None:
    client = FakeClient(
        {
            ("POST", f"{ROOT}/tools/lookup"): (200, [{"Type": "Study", "ID": "abc"}]),
            ("DELETE", f"{ROOT}/studies/abc"): (200, {}),
        }
    )
    report = cleaner(client, "orthanc", ONE).run()
    assert report.removed == [ONE]


def test_a_refused_delete_is_a_leftover_saying_so() -> None:
    client = FakeClient({("DELETE", f"studies/{ONE}"): (403, None)})
    report = cleaner(client, "dicomweb", ONE).run()
    assert report.removed == [] and report.leftovers == {ONE: "dicomweb delete was refused"}


# --- what the server says it is -------------------------------------------------------------


def test_orthanc_names_itself_by_its_system_and_its_plugin() -> None:
    client = FakeClient(
        {
            ("GET", f"{ROOT}/system"): (200, {"Version": "1.10.1", "ApiVersion": 16}),
            ("GET", f"{ROOT}/plugins/dicom-web"): (200, {"ID": "dicom-web", "Version": "1.7"}),
        }
    )
    assert orthanc_product(cast(Client, client), ROOT + "/") == (
        "Orthanc 1.10.1 with the DICOMweb plugin 1.7"
    )
    assert client.sent == [("GET", f"{ROOT}/system"), ("GET", f"{ROOT}/plugins/dicom-web")]
    assert client.brief_timeouts == [IDENTITY_TIMEOUT]  # once each, briefly


def test_orthanc_without_its_plugins_answer_is_named_by_its_own_version() -> None:
    client = FakeClient({("GET", f"{ROOT}/system"): (200, {"Version": "1.13.0"})})
    assert orthanc_product(cast(Client, client), ROOT) == "Orthanc 1.13.0"


@pytest.mark.parametrize(
    "system",
    [
        (404, None),
        (200, ["not", "an", "object"]),
        (200, {"Version": ""}),
        (200, {"Name": "no version"}),
        NoAnswer("GET http://pacs/system: no complete answer", "refused"),
    ],
    ids=["404", "a list", "empty version", "no version", "no answer"],
)
def test_a_server_that_does_not_say_is_not_named(system: Any) -> None:
    """Never an error: the run goes on, and its reports say the server is not named."""
    client = FakeClient({("GET", f"{ROOT}/system"): system})
    assert orthanc_product(cast(Client, client), ROOT) is None
    assert client.sent == [("GET", f"{ROOT}/system")]  # one request, no more


def test_the_name_reads_as_a_product_and_its_versions() -> None:
    assert orthanc_name("1.12.7", "1.20") == "Orthanc 1.12.7 with the DICOMweb plugin 1.20"
    assert orthanc_name("1.12.7", None) == "Orthanc 1.12.7"
