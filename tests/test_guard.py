"""The guard in front of every request that could change data (conformance/guard.py).

Each rule is shown both ways: what the run created passes, what it did not is refused before
anything is sent, whatever the request looks like.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pytest
import requests

from conformance import multipart
from conformance.errors import ReadOnlyError, UnsafeRequestError
from conformance.guard import Guard, Registry, stored_studies
from conformance.samples import fresh_copy, load

BASE = "http://pacs.example/dicom-web"
ROOT = "http://pacs.example"
OURS, THEIRS, ABSENT = "2.25.100", "2.25.200", "2.25.300"
MARKER = "DWC-run1"


def answer(status: int, value: object) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps(value).encode() if value is not None else b""
    return response


def study_result(uid: str, patient_id: str | None) -> dict[str, object]:
    result: dict[str, object] = {"0020000D": {"vr": "UI", "Value": [uid]}}
    if patient_id is not None:
        result["00100020"] = {"vr": "LO", "Value": [patient_id]}
    return result


class Server:
    """What the guard's GETs see: a search answer per study, Orthanc's study descriptions."""

    def __init__(self) -> None:
        self.searches: dict[str, requests.Response] = {}
        self.orthanc: dict[str, requests.Response] = {}
        self.asked: list[str] = []

    def get(
        self, url: str, query: Sequence[tuple[str, str]], headers: Mapping[str, str]
    ) -> requests.Response:
        self.asked.append(url)
        if url == f"{BASE}/studies":
            return self.searches.get(dict(query)["StudyInstanceUID"], answer(204, None))
        return self.orthanc.get(url, answer(404, None))


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    registry.add(OURS, "a check", MARKER)
    registry.add(ABSENT, "what is not there", MARKER, stored=False)
    return registry


def check(
    guard: Guard, server: Server, method: str, url: str, body: bytes = b"", ct: str = ""
) -> None:
    guard.check(method, url, {"Content-Type": ct} if ct else {}, body, server.get)


def test_reads_always_pass_and_ask_nothing(registry: Registry) -> None:
    server = Server()
    guard = Guard(BASE, registry, read_only=True)
    for method in ("GET", "HEAD", "OPTIONS"):
        check(guard, server, method, f"{BASE}/studies/{THEIRS}")
    assert server.asked == []


@pytest.mark.parametrize(
    "path",
    [f"studies/{OURS}", f"studies/{OURS}/series/1.2", f"studies/{OURS}/series/1/instances/2"],
)
def test_delete_of_a_study_of_this_run_passes_once_the_server_shows_its_marker(
    registry: Registry, path: str
) -> None:
    server = Server()
    server.searches[OURS] = answer(200, [study_result(OURS, MARKER)])
    check(Guard(BASE, registry), server, "DELETE", f"{BASE}/{path}")


@pytest.mark.parametrize("path", [f"studies/{THEIRS}", f"studies/{THEIRS}/series/1", "studies"])
def test_delete_of_what_the_run_did_not_create_is_refused_unasked(
    registry: Registry, path: str
) -> None:
    server = Server()
    with pytest.raises(UnsafeRequestError, match="refused DELETE"):
        check(Guard(BASE, registry), server, "DELETE", f"{BASE}/{path}")
    assert server.asked == []


def test_a_minted_uid_holding_someone_elses_data_is_refused(registry: Registry) -> None:
    """The same UID, another PatientID: a reused run id, or a crafted collision."""
    server = Server()
    server.searches[OURS] = answer(200, [study_result(OURS, "SOMEONE-ELSE")])
    with pytest.raises(UnsafeRequestError, match="someone else's"):
        check(Guard(BASE, registry), server, "DELETE", f"{BASE}/studies/{OURS}")


@pytest.mark.parametrize(
    "search",
    [
        answer(500, None),
        answer(200, {"not": "an array"}),
        answer(200, [study_result(OURS, None)]),  # no PatientID: whose is it?
    ],
    ids=["500", "an object", "no PatientID"],
)
def test_a_delete_whose_owner_cannot_be_checked_is_refused(
    registry: Registry, search: requests.Response
) -> None:
    server = Server()
    server.searches[OURS] = search
    with pytest.raises(UnsafeRequestError):
        check(Guard(BASE, registry), server, "DELETE", f"{BASE}/studies/{OURS}")


def test_a_search_that_ignores_its_filter_does_not_make_another_study_ours(
    registry: Registry,
) -> None:
    server = Server()
    server.searches[OURS] = answer(
        200, [study_result(THEIRS, "SOMEONE-ELSE"), study_result(OURS, MARKER)]
    )
    check(Guard(BASE, registry), server, "DELETE", f"{BASE}/studies/{OURS}")


def test_what_is_not_there_may_be_deleted_when_nothing_is_there(registry: Registry) -> None:
    check(Guard(BASE, registry), Server(), "DELETE", f"{BASE}/studies/{ABSENT}")


def test_put_and_patch_follow_the_delete_rule_and_never_touch_the_collection(
    registry: Registry,
) -> None:
    server = Server()
    guard = Guard(BASE, registry)
    check(guard, server, "PUT", f"{BASE}/studies/{ABSENT}")
    check(guard, server, "PATCH", f"{BASE}/studies/{OURS}")
    for method in ("PUT", "PATCH"):
        with pytest.raises(UnsafeRequestError, match="every study"):
            check(guard, server, method, f"{BASE}/studies")
        with pytest.raises(UnsafeRequestError, match="not created by this run"):
            check(guard, server, method, f"{BASE}/studies/{THEIRS}")


def test_a_store_passes_only_with_instances_of_studies_this_run_minted() -> None:
    study = fresh_copy(load(), "run1", "x")
    registry = Registry()
    body, content_type = multipart.encode_related([i.data for i in study])
    server = Server()
    with pytest.raises(UnsafeRequestError, match=study.study_uid):
        check(Guard(BASE, registry), server, "POST", f"{BASE}/studies", body, content_type)
    registry.add(study.study_uid, "x", MARKER)
    check(Guard(BASE, registry), server, "POST", f"{BASE}/studies", body, content_type)
    check(
        Guard(BASE, registry),
        server,
        "POST",
        f"{BASE}/studies/{study.study_uid}",
        body,
        content_type,
    )
    with pytest.raises(UnsafeRequestError, match=THEIRS):
        check(Guard(BASE, registry), server, "POST", f"{BASE}/studies/{THEIRS}", body, content_type)
    assert server.asked == []  # a store creates: it needs no search


def test_the_studies_a_store_would_store_are_read_from_every_readable_part() -> None:
    a, b = fresh_copy(load(), "run1", "a"), fresh_copy(load(), "run1", "b")
    body, content_type = multipart.encode_related([a.blue.data, b"not dicom", b.red.data])
    assert stored_studies(body, content_type) == {a.study_uid, b.study_uid}
    assert stored_studies(a.blue.data, "application/dicom") == {a.study_uid}
    metadata = json.dumps([study_result(a.study_uid, MARKER)]).encode()
    assert stored_studies(metadata, "application/dicom+json") == {a.study_uid}
    assert stored_studies(b"--x\r\nbroken", "multipart/related; boundary=x") == set()
    assert stored_studies(b"", "text/plain") == set()


def test_orthanc_cleanup_deletes_only_a_study_of_this_run_with_its_marker(
    registry: Registry,
) -> None:
    server = Server()
    describe = {"MainDicomTags": {"StudyInstanceUID": OURS}, "PatientMainDicomTags": {}}
    server.orthanc[f"{ROOT}/studies/mine"] = answer(
        200, {**describe, "PatientMainDicomTags": {"PatientID": MARKER}}
    )
    server.orthanc[f"{ROOT}/studies/theirs"] = answer(
        200, {**describe, "PatientMainDicomTags": {"PatientID": "SOMEONE-ELSE"}}
    )
    guard = Guard(BASE, registry, orthanc_url=ROOT)
    check(guard, server, "POST", f"{ROOT}/tools/lookup", OURS.encode())
    check(guard, server, "DELETE", f"{ROOT}/studies/mine")
    with pytest.raises(UnsafeRequestError, match="someone else's"):
        check(guard, server, "DELETE", f"{ROOT}/studies/theirs")
    for url in (f"{ROOT}/studies/unknown", f"{ROOT}/patients/mine", f"{ROOT}/tools/reset"):
        with pytest.raises(UnsafeRequestError):
            check(guard, server, "POST" if "tools" in url else "DELETE", url)


def test_anything_outside_the_server_under_test_is_refused(registry: Registry) -> None:
    with pytest.raises(UnsafeRequestError, match="outside"):
        check(Guard(BASE, registry), Server(), "DELETE", f"http://elsewhere/studies/{OURS}")


def test_a_read_only_run_refuses_every_write(registry: Registry) -> None:
    guard = Guard(BASE, registry, read_only=True, orthanc_url=ROOT)
    for method, url in [
        ("POST", f"{BASE}/studies"),
        ("DELETE", f"{BASE}/studies/{OURS}"),
        ("PUT", f"{BASE}/studies/{ABSENT}"),
        ("POST", f"{ROOT}/tools/lookup"),
    ]:
        with pytest.raises(ReadOnlyError):
            check(guard, Server(), method, url)
