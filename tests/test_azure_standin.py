"""The Azure stand-in (tests/azurestandin.py) over a real Orthanc, exercised directly with requests:
versioned paths, STOW, DELETE, the change feed, metadata ETags, and each fault producing its wrong
behaviour."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from datetime import datetime
from typing import Any

import pydicom
import pytest
import requests
from azurestandin import FAULTS, STAND_IN, AzureStandIn

from conformance import multipart, samples
from conformance.dicomweb import instance_path
from conformance.samples import Instance, SampleStudy

DICOM_JSON = "application/dicom+json"
MULTIPART_DICOM = 'multipart/related; type="application/dicom"'
# How the article's urllib3 encoder labels each part.
FORM_DATA = {"Content-Disposition": 'form-data; name="file"; filename="dicomfile"'}
OTHER_UID = "2.25.1234567890"

StartFault = Callable[[str], AzureStandIn]


@pytest.fixture(scope="module")
def template() -> SampleStudy:
    return samples.load()


@pytest.fixture
def standin(azure_standin: AzureStandIn) -> AzureStandIn:
    """The session's stand-in with an empty Orthanc and an empty change feed."""
    azure_standin.orthanc.purge()
    azure_standin.reset()
    return azure_standin


@pytest.fixture
def study(template: SampleStudy, request: pytest.FixtureRequest) -> SampleStudy:
    """The article's study with UIDs of this test's own."""
    return samples.fresh_copy(template, "azure-standin", request.node.name)


@pytest.fixture
def start_fault(azure_standin: AzureStandIn) -> Iterator[StartFault]:
    """Start a stand-in with a fault over the session's Orthanc (emptied first)."""
    azure_standin.orthanc.purge()
    with ExitStack() as stack:
        yield lambda fault: stack.enter_context(AzureStandIn(azure_standin.orthanc, fault))


# --- helpers ---------------------------------------------------------------------------------


def stow(
    base: str,
    instances: Sequence[Instance],
    study: str | None = None,
    accept: str | None = DICOM_JSON,
) -> requests.Response:
    """A multipart STOW as the article sends it: no ``type`` parameter, form-data part headers."""
    body, content_type = multipart.encode_related(
        [i.data for i in instances], root_type=None, part_headers=FORM_DATA
    )
    url = f"{base}/studies" + (f"/{study}" if study else "")
    headers = {"Content-Type": content_type, "Accept": accept}
    return requests.post(url, data=body, headers=headers, timeout=60)


def stow_single(base: str, instance: Instance) -> requests.Response:
    headers = {"Content-Type": "application/dicom", "Accept": DICOM_JSON}
    return requests.post(f"{base}/studies", data=instance.data, headers=headers, timeout=60)


def instance_url(base: str, instance: Instance) -> str:
    return f"{base}/{instance_path(instance)}"


def retrieve(url: str) -> requests.Response:
    return requests.get(url, headers={"Accept": MULTIPART_DICOM}, timeout=60)


def delete(url: str) -> requests.Response:
    return requests.delete(url, timeout=60)


def sequence(answer: dict[str, Any], tag: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = answer.get(tag, {}).get("Value", [])
    return items


def value(item: dict[str, Any], tag: str) -> Any:
    return item[tag]["Value"][0]


def feed(url: str, **params: str | int) -> requests.Response:
    """GET ``url`` (``{base}/changefeed`` or ``{base}/changefeed/latest``)."""
    return requests.get(url, params=params, headers={"Accept": "application/json"}, timeout=60)


def entries(base: str, **params: str | int) -> list[dict[str, Any]]:
    response = feed(f"{base}/changefeed", **params)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    result: list[dict[str, Any]] = response.json()
    return result


def sequences(items: Sequence[dict[str, Any]]) -> list[int]:
    return [entry["Sequence"] for entry in items]


def store_and_delete_study(base: str, study: SampleStudy) -> None:
    """Six events: three creates, then three deletes."""
    assert stow(base, study.instances).status_code == 200
    assert delete(f"{base}/studies/{study.study_uid}").status_code == 204


# --- versioned base paths --------------------------------------------------------------------


def test_v1_and_v2_map_to_orthanc_and_other_paths_are_404(
    standin: AzureStandIn, study: SampleStudy
) -> None:
    assert stow(standin.base_url("v1"), [study.blue]).status_code == 200
    root = standin.base_url().removesuffix("/v2")
    answers = [
        requests.get(f"{standin.base_url(v)}/studies", params={"StudyInstanceUID": study.study_uid})
        for v in ("v1", "v2")
    ]
    assert [len(a.json()) for a in answers] == [1, 1]
    unversioned = [requests.get(f"{root}{path}/studies") for path in ("", "/v3", "/dicom-web")]
    assert [a.status_code for a in unversioned] == [404, 404, 404]
    for answer in [*answers, *unversioned, feed(f"{standin.base_url()}/changefeed")]:
        assert answer.headers["X-DICOMweb-Stand-In"] == STAND_IN
        assert answer.headers["api-supported-versions"] == "1.0,2.0"


# --- STOW ------------------------------------------------------------------------------------


def test_stow_multipart_references_each_instance_with_a_working_retrieve_url(
    standin: AzureStandIn, study: SampleStudy
) -> None:
    response = stow(standin.base_url(), [study.red, study.green])
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == DICOM_JSON
    answer = response.json()
    assert list(answer) == ["00081199"]  # no study RetrieveURL without a study in the path
    items = sequence(answer, "00081199")
    assert [value(i, "00081155") for i in items] == [study.red.sop_uid, study.green.sop_uid]
    for item, instance in zip(items, [study.red, study.green], strict=True):
        assert list(item) == ["00081150", "00081155", "00081190"]
        assert {tag: element["vr"] for tag, element in item.items()} == {
            "00081150": "UI",
            "00081155": "UI",
            "00081190": "UR",
        }
        assert value(item, "00081190") == instance_url(standin.base_url(), instance)
        retrieved = retrieve(value(item, "00081190"))
        assert retrieved.status_code == 200
        (part,) = multipart.decode(retrieved.content, retrieved.headers["Content-Type"])
        assert pydicom.dcmread(io.BytesIO(part.body)).SOPInstanceUID == instance.sop_uid


def test_retrieve_and_search_are_forwarded_and_streamed(
    standin: AzureStandIn, study: SampleStudy
) -> None:
    """Orthanc ends a study retrieve by closing the connection; the stand-in re-frames it."""
    base = standin.base_url()
    assert stow(base, study.instances).status_code == 200
    retrieved = requests.get(
        f"{base}/studies/{study.study_uid}", headers={"Accept": MULTIPART_DICOM}, stream=True
    )
    assert retrieved.status_code == 200
    parts = list(
        multipart.iter_parts(retrieved.iter_content(1 << 16), retrieved.headers["Content-Type"])
    )
    found = {str(pydicom.dcmread(io.BytesIO(p.body)).SOPInstanceUID) for p in parts}
    assert found == study.sop_uids
    metadata = requests.get(
        f"{base}/studies/{study.study_uid}/metadata", headers={"Accept": DICOM_JSON}
    )
    assert len(metadata.json()) == 3
    search = requests.get(f"{base}/instances", params={"SOPInstanceUID": study.red.sop_uid})
    assert [value(match, "00080018") for match in search.json()] == [study.red.sop_uid]


def test_stow_to_a_study_path_adds_the_study_retrieve_url(
    standin: AzureStandIn, study: SampleStudy
) -> None:
    response = stow(standin.base_url("v1"), [study.blue], study=study.study_uid)
    assert response.status_code == 200
    answer = response.json()
    assert list(answer) == ["00081190", "00081199"]
    assert answer["00081190"] == {
        "vr": "UR",
        "Value": [f"{standin.base_url('v1')}/studies/{study.study_uid}"],
    }


def test_stow_single_part_stores_then_conflicts_with_45070(
    standin: AzureStandIn, study: SampleStudy
) -> None:
    first = stow_single(standin.base_url(), study.blue)
    assert first.status_code == 200
    assert [value(i, "00081155") for i in sequence(first.json(), "00081199")] == [
        study.blue.sop_uid
    ]
    assert retrieve(instance_url(standin.base_url(), study.blue)).status_code == 200
    for again in (
        stow_single(standin.base_url(), study.blue),
        stow(standin.base_url(), [study.blue]),
    ):
        assert again.status_code == 409
        answer = again.json()
        assert list(answer) == ["00081198"]
        (failed,) = sequence(answer, "00081198")
        assert failed["00081197"] == {"vr": "US", "Value": [45070]}
        assert value(failed, "00081155") == study.blue.sop_uid
        assert value(failed, "00081150") == "1.2.840.10008.5.1.4.1.1.7"
    assert len(standin.events) == 1


def test_stow_of_one_new_and_one_duplicate_is_202(
    standin: AzureStandIn, study: SampleStudy
) -> None:
    assert stow(standin.base_url(), [study.blue]).status_code == 200
    response = stow(standin.base_url(), [study.blue, study.red])
    assert response.status_code == 202
    answer = response.json()
    assert [value(i, "00081155") for i in sequence(answer, "00081198")] == [study.blue.sop_uid]
    assert [value(i, "00081155") for i in sequence(answer, "00081199")] == [study.red.sop_uid]
    assert value(sequence(answer, "00081198")[0], "00081197") == 45070


def test_stow_study_mismatch_43265_and_non_dicom_43264(
    standin: AzureStandIn, study: SampleStudy
) -> None:
    mismatch = stow(standin.base_url(), [study.blue], study=OTHER_UID)
    assert mismatch.status_code == 409
    assert list(mismatch.json()) == ["00081198"]  # nothing stored: no study RetrieveURL
    (failed,) = sequence(mismatch.json(), "00081198")
    assert (value(failed, "00081155"), value(failed, "00081197")) == (study.blue.sop_uid, 43265)
    assert retrieve(instance_url(standin.base_url(), study.blue)).status_code == 404

    body, content_type = multipart.encode_related([b"this is not DICOM"])
    headers = {"Content-Type": content_type, "Accept": DICOM_JSON}
    garbage = requests.post(f"{standin.base_url()}/studies", data=body, headers=headers)
    assert garbage.status_code == 409
    assert garbage.json() == {
        "00081198": {"vr": "SQ", "Value": [{"00081197": {"vr": "US", "Value": [43264]}}]}
    }
    assert standin.events == ()


@pytest.mark.parametrize(
    ("content_type", "accept", "status"),
    [
        ("text/plain", DICOM_JSON, 415),
        ("multipart/related", DICOM_JSON, 415),  # no boundary
        ('multipart/related; type="application/dicom+json"; boundary=b', DICOM_JSON, 415),
        ("multipart/related; boundary=b; start=<root>", DICOM_JSON, 400),
        ("multipart/related; boundary=b", "text/html", 406),
        ("multipart/related; boundary=b", "*/*", 406),
        ("multipart/related; boundary=b", "application/json", 406),
        ("multipart/related; boundary=b", "application/dicom+json; q=0.9, */*", 200),
        ("multipart/related; boundary=b", None, 200),  # no Accept at all
    ],
)
def test_stow_media_types(
    standin: AzureStandIn, study: SampleStudy, content_type: str, accept: str | None, status: int
) -> None:
    body, _ = multipart.encode_related([study.blue.data], boundary="b")
    headers = {"Content-Type": content_type, "Accept": accept}  # None: requests sends none
    response = requests.post(f"{standin.base_url()}/studies", data=body, headers=headers)
    assert response.status_code == status, response.text


def test_stow_of_an_empty_multipart_is_204_and_a_dicom_json_part_415(
    standin: AzureStandIn,
) -> None:
    url = f"{standin.base_url()}/studies"
    headers = {"Content-Type": f"{MULTIPART_DICOM}; boundary=b", "Accept": DICOM_JSON}
    empty = requests.post(url, data=b"--b--\r\n", headers=headers)
    assert (empty.status_code, empty.content) == (204, b"")
    body, headers["Content-Type"] = multipart.encode_related(
        [b"[]"], part_type=DICOM_JSON, root_type=None
    )
    assert requests.post(url, data=body, headers=headers).status_code == 415


# --- DELETE ----------------------------------------------------------------------------------


def test_delete_instance_series_study_then_gone(standin: AzureStandIn, study: SampleStudy) -> None:
    base = standin.base_url()
    assert stow(base, study.instances).status_code == 200
    red, green, blue = study.red, study.green, study.blue
    targets = [
        (instance_url(base, red), [red]),
        (f"{base}/studies/{green.study_uid}/series/{green.series_uid}", [green]),
        (f"{base}/studies/{study.study_uid}", [blue]),
    ]
    for url, removed in targets:
        first = delete(url)
        assert (first.status_code, first.content) == (204, b"")
        for instance in removed:
            assert retrieve(instance_url(base, instance)).status_code == 404
        assert delete(url).status_code == 404
    assert retrieve(f"{base}/studies/{study.study_uid}").status_code == 404


def test_delete_checks_that_the_target_lies_under_the_given_parents(
    standin: AzureStandIn, study: SampleStudy
) -> None:
    base = standin.base_url()
    assert stow(base, study.instances).status_code == 200
    red, blue = study.red, study.blue
    assert delete(f"{base}/studies/{OTHER_UID}/series/{red.series_uid}").status_code == 404
    wrong_series = (
        f"{base}/studies/{red.study_uid}/series/{blue.series_uid}/instances/{red.sop_uid}"
    )
    assert delete(wrong_series).status_code == 404
    assert delete(f"{base}/studies/{OTHER_UID}").status_code == 404
    assert retrieve(instance_url(base, red)).status_code == 200


@pytest.mark.parametrize("uid", ["1.2_3", "1.2+3", "1.2%203", "1." + "2" * 63])
@pytest.mark.parametrize("level", ["study", "series", "instance"])
def test_delete_of_a_malformed_uid_is_400(standin: AzureStandIn, uid: str, level: str) -> None:
    """Outside Azure's documented format: 1 to 64 letters, digits, "." and "-"."""
    path = {
        "study": f"studies/{uid}",
        "series": f"studies/1.2/series/{uid}",
        "instance": f"studies/1.2/series/1.3/instances/{uid}",
    }[level]
    assert delete(f"{standin.base_url()}/{path}").status_code == 400


@pytest.mark.parametrize("uid", ["1..2", "1.2.", ".1", "1.2a", "A-b.C", "1." + "2" * 62])
def test_delete_of_a_uid_inside_the_documented_format_is_404(
    standin: AzureStandIn, uid: str
) -> None:
    """Azure validates its own format, not PS3.5's grammar: such a UID is merely not there."""
    assert delete(f"{standin.base_url()}/studies/{uid}").status_code == 404


def test_gone_410_answers_what_was_deleted_410(
    azure_standin: AzureStandIn, study: SampleStudy
) -> None:
    """gone=410: what the stand-in deleted answers 410 (a GET, a second DELETE); what was never
    stored, or is stored again, answers as ever."""
    azure_standin.orthanc.purge()
    with AzureStandIn(azure_standin.orthanc, gone=410) as standin:
        base = standin.base_url()
        assert stow(base, study.instances).status_code == 200
        red, green, blue = study.red, study.green, study.blue
        series = f"{base}/studies/{red.study_uid}/series/{red.series_uid}"
        assert delete(series).status_code == 204
        for url in (series, instance_url(base, red), instance_url(base, green)):
            assert retrieve(url).status_code == 410
        assert delete(series).status_code == 410
        assert delete(instance_url(base, red)).status_code == 410
        assert retrieve(f"{base}/studies/{study.study_uid}").status_code == 200  # blue is there
        assert delete(f"{base}/studies/{red.study_uid}/series/{OTHER_UID}").status_code == 404
        assert stow(base, [red]).status_code == 200  # stored again: no longer gone
        assert retrieve(instance_url(base, red)).status_code == 200
        assert delete(f"{base}/studies/{study.study_uid}").status_code == 204
        assert retrieve(instance_url(base, blue)).status_code == 410
        assert retrieve(f"{base}/studies/{study.study_uid}").status_code == 410
    with pytest.raises(ValueError, match="404 or 410"):
        AzureStandIn(azure_standin.orthanc, gone=400)


def test_delete_ignores_accept_content_type_and_body(
    standin: AzureStandIn, study: SampleStudy
) -> None:
    assert stow(standin.base_url(), [study.blue]).status_code == 200
    headers = {"Accept": "anything/at+all", "Content-Type": "text/plain"}
    response = requests.delete(
        instance_url(standin.base_url(), study.blue), headers=headers, data=b"why not"
    )
    assert response.status_code == 204


# --- change feed -----------------------------------------------------------------------------


def test_changefeed_logs_creates_and_deletes_with_their_states(
    standin: AzureStandIn, study: SampleStudy
) -> None:
    base = standin.base_url()
    assert entries(base) == []
    empty_latest = feed(f"{base}/changefeed/latest")
    assert (empty_latest.status_code, empty_latest.content) == (204, b"")

    assert stow(base, study.instances).status_code == 200
    created = entries(base)
    assert sequences(created) == [1, 2, 3]
    for entry, instance in zip(created, study.instances, strict=True):
        assert (entry["StudyInstanceUid"], entry["SeriesInstanceUid"], entry["SopInstanceUid"]) == (
            instance.study_uid,
            instance.series_uid,
            instance.sop_uid,
        )
        assert (entry["Action"], entry["State"]) == ("create", "current")
        assert entry["Timestamp"].endswith("Z")
        datetime.fromisoformat(entry["Timestamp"])
        assert value(entry["Metadata"], "00080018") == instance.sop_uid
        assert "7FE00010" not in entry["Metadata"]

    assert delete(instance_url(base, study.red)).status_code == 204
    after_delete = entries(base)
    red_create = 1 + [i.name for i in study.instances].index("red-triangle")
    assert after_delete[3]["Action"] == "delete"
    assert after_delete[3]["SopInstanceUid"] == study.red.sop_uid
    states = {e["Sequence"]: e["State"] for e in after_delete}
    assert states == {1: "current", 2: "current", 3: "current", 4: "deleted", red_create: "deleted"}
    assert [e["Sequence"] for e in after_delete if "Metadata" in e] == [
        s for s, state in states.items() if state == "current"
    ]

    assert stow_single(base, study.red).status_code == 200  # stored again after its delete
    final = entries(base)
    assert {e["Sequence"]: e["State"] for e in final} == {
        **{s: "current" for s in (1, 2, 3)},
        red_create: "replaced",
        4: "replaced",
        5: "current",
    }
    assert not any("Metadata" in e for e in entries(base, includeMetadata="false"))
    latest = feed(f"{base}/changefeed/latest")
    assert latest.json()["Sequence"] == 5 and "Metadata" in latest.json()
    assert "Metadata" not in feed(f"{base}/changefeed/latest", includeMetadata="false").json()
    assert [(e.sequence, e.action, e.state) for e in standin.events] == [
        (e["Sequence"], e["Action"], e["State"]) for e in final
    ]


def test_v2_offset_limit_and_time_window_page_without_gaps(
    standin: AzureStandIn, study: SampleStudy
) -> None:
    base = standin.base_url()
    store_and_delete_study(base, study)
    assert stow(base, study.instances).status_code == 200
    everything = entries(base)
    assert sequences(everything) == list(range(1, 10))
    pages = [entries(base, offset=offset, limit=2) for offset in range(0, 10, 2)]
    assert [len(page) for page in pages] == [2, 2, 2, 2, 1]
    assert [entry for page in pages for entry in page] == everything

    start, end = everything[2]["Timestamp"], everything[6]["Timestamp"]
    window = entries(base, startTime=start, endTime=end)
    assert sequences(window) == [3, 4, 5, 6]  # start inclusive, end exclusive
    paged = [entries(base, startTime=start, endTime=end, offset=o, limit=3) for o in (0, 3, 6)]
    assert [sequences(page) for page in paged] == [[3, 4, 5], [6], []]


def test_v1_offset_is_a_sequence_number_and_limit_defaults_to_10(
    standin: AzureStandIn, study: SampleStudy
) -> None:
    v1, v2 = standin.base_url("v1"), standin.base_url("v2")
    store_and_delete_study(v1, study)
    store_and_delete_study(v1, study)
    assert sequences(entries(v1)) == list(range(1, 11))
    assert sequences(entries(v1, offset=10)) == [11, 12]
    assert sequences(entries(v1, offset=5, limit=3)) == [6, 7, 8]
    assert sequences(entries(v1, offset=12)) == []
    assert len(entries(v1, limit=100)) == 12
    assert len(entries(v2)) == 12  # v2's default limit is 100
    assert len(entries(v2, limit=200)) == 12


@pytest.mark.parametrize(
    ("version", "params", "message"),
    [
        ("v1", {"limit": 101}, "The limit must be between 1 and 100"),
        ("v1", {"limit": 0}, "The limit must be between 1 and 100"),
        ("v2", {"limit": 201}, "The limit must be between 1 and 200"),
        ("v2", {"limit": 0}, "The limit must be between 1 and 200"),
        ("v1", {"offset": -1}, "The offset cannot be a negative value"),
        ("v2", {"offset": -1}, "The offset cannot be a negative value"),
        ("v2", {"limit": "blah"}, "not valid for limit"),
        ("v2", {"includeMetadata": "true-ish"}, "not valid for includeMetadata"),
        ("v2", {"startTime": "2023-05-03T10:58:00"}, "not valid for startTime"),  # no zone
        ("v2", {"endTime": "bar"}, "not valid for endTime"),
        ("v2", {"startTime": "2023-05-03T10:59:00Z", "endTime": "2023-05-03T10:58:00Z"}, "before"),
    ],
)
def test_changefeed_bad_parameters_are_400_with_a_message(
    standin: AzureStandIn, version: str, params: dict[str, str | int], message: str
) -> None:
    response = feed(f"{standin.base_url(version)}/changefeed", **params)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/plain")
    assert message in response.text


# --- metadata ETags --------------------------------------------------------------------------


def metadata(url: str, if_none_match: str | None = None) -> requests.Response:
    headers = {"Accept": DICOM_JSON, "If-None-Match": if_none_match}  # None: requests sends none
    return requests.get(f"{url}/metadata", headers=headers, timeout=60)


def test_metadata_etag_answers_304_while_unchanged_and_changes_with_the_data(
    standin: AzureStandIn, study: SampleStudy
) -> None:
    base = standin.base_url()
    assert stow(base, [study.red, study.blue]).status_code == 200
    red = study.red
    for url in (
        f"{base}/studies/{study.study_uid}",
        f"{base}/studies/{red.study_uid}/series/{red.series_uid}",
        instance_url(base, red),
    ):
        first = metadata(url)
        assert first.status_code == 200
        assert first.headers["Content-Type"] == DICOM_JSON
        etag = first.headers["ETag"]
        assert etag.startswith('"') and etag.endswith('"')  # a strong entity tag
        assert metadata(url).headers["ETag"] == etag  # the same data, the same tag
        for condition in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            again = metadata(url, condition)
            assert (again.status_code, again.content) == (304, b""), condition
            assert again.headers["ETag"] == etag
            assert again.headers["X-DICOMweb-Stand-In"] == STAND_IN
        changed = metadata(url, '"not-the-etag"')
        assert (changed.status_code, changed.headers["ETag"]) == (200, etag)
        assert changed.content == first.content

    study_url = f"{base}/studies/{study.study_uid}"
    before = metadata(study_url).headers["ETag"]
    assert stow(base, [study.green]).status_code == 200
    after = metadata(study_url, before)
    assert after.status_code == 200  # the study gained an instance: its metadata changed
    assert after.headers["ETag"] != before
    assert len(after.json()) == 3


def test_metadata_of_what_is_not_there_is_orthancs_answer_without_etag(
    standin: AzureStandIn, study: SampleStudy
) -> None:
    missing = metadata(f"{standin.base_url()}/studies/{study.study_uid}", "*")
    assert missing.status_code == 404
    assert "ETag" not in missing.headers


# --- faults ----------------------------------------------------------------------------------


def test_faults_are_fifteen_each_with_its_test_and_unknown_ones_are_refused(
    azure_standin: AzureStandIn,
) -> None:
    assert len(set(FAULTS)) == len(FAULTS) == 15
    tested = {name for name in globals() if name.startswith("test_fault_")}
    assert tested == {f"test_fault_{fault.replace('-', '_')}" for fault in FAULTS}
    with pytest.raises(ValueError, match="unknown fault"):
        AzureStandIn(azure_standin.orthanc, "no-such-fault")


def test_fault_delete_keeps_data(start_fault: StartFault, study: SampleStudy) -> None:
    base = start_fault("delete-keeps-data").base_url()
    assert stow(base, [study.red]).status_code == 200
    assert delete(instance_url(base, study.red)).status_code == 204
    assert retrieve(instance_url(base, study.red)).status_code == 200  # still there
    assert delete(instance_url(base, study.red)).status_code == 204  # not 404


def test_fault_changefeed_misses_delete(start_fault: StartFault, study: SampleStudy) -> None:
    base = start_fault("changefeed-misses-delete").base_url()
    store_and_delete_study(base, study)
    assert retrieve(f"{base}/studies/{study.study_uid}").status_code == 404  # really deleted
    log = entries(base)
    assert [(e["Action"], e["State"]) for e in log] == [("create", "current")] * 3


def test_fault_changefeed_paging_skips(start_fault: StartFault, study: SampleStudy) -> None:
    standin = start_fault("changefeed-paging-skips")
    v1, v2 = standin.base_url("v1"), standin.base_url("v2")
    store_and_delete_study(v2, study)
    assert sequences(entries(v2)) == [1, 2, 3, 4, 5, 6]  # one page: nothing lost
    paged = [s for offset in (0, 2, 4) for s in sequences(entries(v2, offset=offset, limit=2))]
    assert paged == [1, 2, 5, 6]
    assert sequences(entries(v1, offset=0)) == [1, 3, 4, 5, 6]


def test_fault_duplicate_accepted(start_fault: StartFault, study: SampleStudy) -> None:
    base = start_fault("duplicate-accepted").base_url()
    assert stow(base, [study.blue]).status_code == 200
    again = stow_single(base, study.blue)
    assert again.status_code == 200
    assert list(again.json()) == ["00081199"]


def test_fault_single_part_ignored(start_fault: StartFault, study: SampleStudy) -> None:
    standin = start_fault("single-part-ignored")
    response = stow_single(standin.base_url(), study.blue)
    assert response.status_code == 200
    (item,) = sequence(response.json(), "00081199")
    assert value(item, "00081155") == study.blue.sop_uid
    assert retrieve(instance_url(standin.base_url(), study.blue)).status_code == 404
    assert entries(standin.base_url()) == []
    assert stow(standin.base_url(), [study.blue]).status_code == 200  # multipart still stores


def test_fault_changefeed_wrong_uids(start_fault: StartFault, study: SampleStudy) -> None:
    standin = start_fault("changefeed-wrong-uids")
    assert stow(standin.base_url(), [study.blue]).status_code == 200
    (entry,) = entries(standin.base_url())
    assert entry["SopInstanceUid"] != study.blue.sop_uid
    assert standin.events[0].sop == study.blue.sop_uid  # the log itself is right


def test_fault_changefeed_latest_stale(start_fault: StartFault, study: SampleStudy) -> None:
    base = start_fault("changefeed-latest-stale").base_url()
    assert feed(f"{base}/changefeed/latest").status_code == 204  # an empty feed is still empty
    assert stow(base, study.instances).status_code == 200
    assert sequences(entries(base)) == [1, 2, 3]
    assert feed(f"{base}/changefeed/latest").json()["Sequence"] == 1  # not 3


def test_fault_changefeed_metadata_always(start_fault: StartFault, study: SampleStudy) -> None:
    base = start_fault("changefeed-metadata-always").base_url()
    assert stow(base, [study.blue]).status_code == 200
    (entry,) = entries(base, includeMetadata="false")
    assert value(entry["Metadata"], "00080018") == study.blue.sop_uid
    assert "Metadata" in feed(f"{base}/changefeed/latest", includeMetadata="false").json()
    assert feed(f"{base}/changefeed", includeMetadata="maybe").status_code == 400  # still parsed


def test_fault_changefeed_range_500(start_fault: StartFault, study: SampleStudy) -> None:
    standin = start_fault("changefeed-range-500")
    v1, v2 = standin.base_url("v1"), standin.base_url("v2")
    store_and_delete_study(v2, study)
    for base, params in [
        (v2, {"limit": 0}),
        (v2, {"limit": 201}),
        (v2, {"offset": -1}),
        (v1, {"limit": 101}),
        (v1, {"offset": -5}),
    ]:
        assert feed(f"{base}/changefeed", **params).status_code == 500, params
    assert sequences(entries(v2, limit=200, offset=1)) == list(range(2, 7))  # in range: fine
    assert feed(f"{v2}/changefeed", limit="blah").status_code == 400  # still parsed


def test_fault_changefeed_window_end_inclusive(start_fault: StartFault, study: SampleStudy) -> None:
    base = start_fault("changefeed-window-end-inclusive").base_url()
    store_and_delete_study(base, study)
    everything = entries(base)
    start, end = everything[1]["Timestamp"], everything[4]["Timestamp"]
    assert sequences(entries(base, startTime=start, endTime=end)) == [2, 3, 4, 5]  # 5 is the end
    assert feed(f"{base}/changefeed", startTime=end, endTime=end).status_code == 400


def test_fault_changefeed_object_not_array(start_fault: StartFault, study: SampleStudy) -> None:
    base = start_fault("changefeed-object-not-array").base_url()
    assert stow(base, [study.blue]).status_code == 200
    response = feed(f"{base}/changefeed")
    assert response.status_code == 200
    answer = response.json()
    assert list(answer) == ["entries"]
    assert sequences(answer["entries"]) == [1]
    assert feed(f"{base}/changefeed/latest").json()["Sequence"] == 1  # latest is still an entry


def test_fault_delete_unknown_204(start_fault: StartFault, study: SampleStudy) -> None:
    standin = start_fault("delete-unknown-204")
    base = standin.base_url()
    assert stow(base, [study.blue]).status_code == 200
    assert delete(f"{base}/studies/{OTHER_UID}").status_code == 204
    assert delete(instance_url(base, study.blue)).status_code == 204
    assert retrieve(instance_url(base, study.blue)).status_code == 404  # really deleted
    assert delete(instance_url(base, study.blue)).status_code == 204  # not 404
    assert delete(f"{base}/studies/1.2_3").status_code == 400  # UIDs are still checked
    assert [e.action for e in standin.events] == ["create", "delete"]  # no entry for nothing


def test_fault_delete_malformed_uid_404(start_fault: StartFault, study: SampleStudy) -> None:
    base = start_fault("delete-malformed-uid-404").base_url()
    assert stow(base, [study.blue]).status_code == 200
    blue = study.blue
    assert delete(f"{base}/studies/{blue.study_uid}/series/1.2_3").status_code == 404
    assert delete(f"{base}/studies/1.{'2' * 63}").status_code == 404
    assert delete(instance_url(base, blue)).status_code == 204  # a valid delete still works


def test_fault_etag_ignored(start_fault: StartFault, study: SampleStudy) -> None:
    base = start_fault("etag-ignored").base_url()
    assert stow(base, [study.blue]).status_code == 200
    url = instance_url(base, study.blue)
    etag = metadata(url).headers["ETag"]
    again = metadata(url, etag)
    assert (again.status_code, again.headers["ETag"]) == (200, etag)
    assert again.json()[0]["00080018"]["Value"] == [study.blue.sop_uid]


def test_fault_search_cached_past_delete(start_fault: StartFault, study: SampleStudy) -> None:
    base = start_fault("search-cached-past-delete").base_url()
    listing = f"{base}/studies/{study.study_uid}/series/{study.red.series_uid}/instances"

    def listed() -> list[str]:
        answer = requests.get(listing, headers={"Accept": "application/dicom+json"}, timeout=30)
        return sorted(value(o, "00080018") for o in answer.json()) if answer.text else []

    assert stow(base, [study.red, study.green]).status_code == 200
    both = sorted([study.red.sop_uid, study.green.sop_uid])
    assert listed() == both
    assert delete(instance_url(base, study.red)).status_code == 204
    assert retrieve(instance_url(base, study.red)).status_code == 404  # really deleted
    assert listed() == both  # the search answered before the delete
    assert stow(base, [study.blue]).status_code == 200  # a store clears what was kept
    assert listed() == [study.green.sop_uid]
