"""The map of what is read (conformance/readmap.py): off, nothing is noted and the readers answer
as ever; on, each read of a status code, a header, a part's header or a DICOM JSON attribute is
noted once, with the check that read it. docs/what-is-read.md is made from these records
(tests/whatisread.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import whatisread
from paths import ORTHANC_EXPECTATIONS, REPO
from scriptedserver import Answer, ScriptedServer
from suiterun import RunSuite

from conformance import dicomweb, expect, expectations, readmap
from conformance.client import Client
from conformance.local.orthanc import LocalOrthanc
from conformance.multipart import encode_related

CHECK = "conformance/checks/test_x.py::test_y"
STUDY = {
    "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
    "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^J"}]},
    "00081190": {"vr": "UR", "Value": ["http://x/studies/1.2.3"]},
}
STORE_ANSWER = {
    "00081190": {"vr": "UR", "Value": ["http://x/studies/1.2.3"]},
    "00081199": {
        "vr": "SQ",
        "Value": [
            {
                "00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.7"]},
                "00081155": {"vr": "UI", "Value": ["1.2.3.4"]},
            }
        ],
    },
}


def records(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [json.loads(line) for line in lines]


def reads(path: Path, **match: str) -> set[tuple[str, str]]:
    """(item, how) of the records matching ``match``."""
    return {
        (r["item"], r["how"]) for r in records(path) if all(r.get(k) == v for k, v in match.items())
    }


@pytest.fixture
def mapped(tmp_path: Path) -> Iterator[Path]:
    """The map on, for one check; the file its records go to."""
    path = readmap.start(tmp_path / "map", "main")
    readmap.enter(CHECK)
    try:
        yield path
    finally:
        readmap.stop()


@pytest.fixture
def client(server: ScriptedServer) -> Iterator[Client]:
    made = Client(server.url, retries=0, timeout=5)
    yield made
    made.session.close()


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("GET", "studies", "search studies"),
        ("GET", "studies/1.2/series", "search series"),
        ("GET", "series", "search series"),
        ("GET", "studies/1.2/series/3.4/instances", "search instances"),
        ("GET", "studies/1.2/instances", "search instances"),
        ("GET", "studies/1.2", "retrieve study"),
        ("GET", "studies/1.2/series/3.4", "retrieve series"),
        ("GET", "studies/1.2/series/3.4/instances/5.6", "retrieve instance"),
        ("GET", "studies/1.2/metadata", "study metadata"),
        ("GET", "studies/1.2/series/3.4/instances/5.6/metadata", "instance metadata"),
        ("GET", "studies/1.2/series/3.4/instances/5.6/frames/1,2", "frames"),
        ("GET", "studies/1.2/series/3.4/instances/5.6/rendered", "rendered"),
        ("GET", "studies/1.2/series/3.4/thumbnail", "thumbnail"),
        ("GET", "studies/1.2/series/3.4/instances/5.6/bulkdata/7FE00010", "bulkdata"),
        ("POST", "studies", "store"),
        ("POST", "studies/1.2", "store"),
        ("DELETE", "studies/1.2", "delete"),
        ("GET", "changefeed", "changefeed"),
        ("GET", "extendedquerytags", "other"),
        ("HEAD", "studies/1.2", "retrieve study (HEAD)"),
    ],
)
def test_the_transaction_is_named_from_the_method_and_the_path(
    method: str, path: str, kind: str
) -> None:
    base = "https://host/dicom-web/v2"
    assert readmap.kind_of(method, f"{base}/{path}?x=1", base) == kind


def test_off_the_readers_answer_plain_objects_and_note_nothing(
    server: ScriptedServer,
    client: Client,
    tmp_path: Path,
) -> None:
    assert not readmap.on
    server.script(Answer(200, {"Content-Type": dicomweb.DICOM_JSON}, json.dumps([STUDY]).encode()))
    response = dicomweb.search(client, "studies")
    objects = expect.results(response)
    assert type(response) is requests.Response
    assert type(objects[0]) is dict and objects == [STUDY]
    assert not list(tmp_path.iterdir())


def test_a_search_notes_the_status_judged_headers_and_attributes_read(
    server: ScriptedServer,
    client: Client,
    mapped: Path,
) -> None:
    server.script(Answer(200, {"Content-Type": dicomweb.DICOM_JSON}, json.dumps([STUDY]).encode()))
    response = dicomweb.search(client, "studies")
    objects = expect.results(response)
    assert objects == [STUDY]  # the same answer: a dict subclass, equal to the plain one
    assert dicomweb.first_value(objects[0], dicomweb.STUDY_UID) == "1.2.3"
    assert "00081190" in objects[0]
    assert response.headers.get("content-type") == dicomweb.DICOM_JSON
    got = records(mapped)
    assert {r["check"] for r in got} == {CHECK}
    assert {r["kind"] for r in got} == {"search studies"}
    status = [r for r in got if r["part"] == readmap.STATUS]
    assert status == [
        {
            "kind": "search studies",
            "part": "status",
            "item": "200",
            "how": "judged",
            "against": [200, 204],
            "check": CHECK,
        }
    ]
    assert reads(mapped, part="study") >= {
        (dicomweb.STUDY_UID, readmap.VALUE),
        ("00081190", readmap.PRESENT),
        ("*", readmap.ALL),  # objects == [STUDY]
    }
    assert ("00100010", readmap.VALUE) not in reads(mapped, part="study")
    assert ("content-type", readmap.VALUE) in reads(mapped, part=readmap.RESPONSE_HEADER)


def test_each_read_is_noted_once(
    server: ScriptedServer,
    client: Client,
    mapped: Path,
) -> None:
    server.script(Answer(200, {"Content-Type": dicomweb.DICOM_JSON}, json.dumps([STUDY]).encode()))
    objects = dicomweb.json_array(dicomweb.search(client, "studies"))
    for _ in range(3):
        dicomweb.values(objects[0], dicomweb.STUDY_UID)
    assert len([r for r in records(mapped) if r["item"] == dicomweb.STUDY_UID]) == 1


def test_a_store_answer_notes_its_sequences_items_apart(
    server: ScriptedServer,
    client: Client,
    mapped: Path,
) -> None:
    server.script(
        Answer(200, {"Content-Type": dicomweb.DICOM_JSON}, json.dumps(STORE_ANSWER).encode())
    )
    body, content_type = encode_related([b"DICM"])
    response = client.post("studies", body=body, headers={"Content-Type": content_type})
    expect.status(response, 200)
    module = dicomweb.store_module(response)
    assert dicomweb.referenced_sop_uids(module) == ["1.2.3.4"]
    assert reads(mapped, kind="store", part=readmap.STORE_MODULE) == {
        (dicomweb.REFERENCED_SOP_SEQUENCE, readmap.VALUE)
    }
    assert reads(mapped, kind="store", part="store answer > 00081199") == {
        (dicomweb.REFERENCED_SOP_INSTANCE_UID, readmap.VALUE)
    }


def test_a_failure_answer_read_by_store_module_if_any_is_tracked(mapped: Path) -> None:
    response = requests.Response()
    response.status_code = 409
    response._content = json.dumps(STORE_ANSWER).encode()
    response.request = requests.Request("POST", "http://x/dicom-web/studies").prepare()
    readmap.watch(response, "http://x/dicom-web")
    module = dicomweb.store_module_if_any(response)
    assert module is not None and "00081190" in module
    assert reads(mapped, kind="store", part=readmap.STORE_MODULE) == {("00081190", readmap.PRESENT)}


def test_parts_headers_are_noted_by_name(
    server: ScriptedServer,
    client: Client,
    mapped: Path,
) -> None:
    body, content_type = encode_related([b"one", b"two"], part_type="application/octet-stream")
    server.script(Answer(200, {"Content-Type": content_type}, body))
    response = dicomweb.retrieve(client, "studies/1.2/series/3.4/instances/5.6/frames/1,2")
    parts = dicomweb.parts(client, response)
    assert [p.body for p in parts] == [b"one", b"two"]
    assert parts[0].content_type == "application/octet-stream"
    assert reads(mapped, kind="frames", part=readmap.PART_HEADER) == {
        ("content-type", readmap.VALUE)
    }
    # The decoder read the response's Content-Type for its boundary.
    assert ("content-type", readmap.VALUE) in reads(
        mapped, kind="frames", part=readmap.RESPONSE_HEADER
    )


def test_a_precondition_and_a_metadata_route_are_noted_with_what_they_take(
    server: ScriptedServer,
    client: Client,
    mapped: Path,
) -> None:
    server.script(Answer(200, {"Content-Type": dicomweb.DICOM_JSON}, json.dumps([STUDY]).encode()))
    objects = expect.metadata_objects(client, "studies/1.2")
    assert objects == [STUDY]
    expect.answered(dicomweb.search(client, "studies"), 200)
    status = {
        (r["kind"], r["how"], tuple(r["against"]))
        for r in records(mapped)
        if r["part"] == readmap.STATUS
    }
    assert status == {
        ("study metadata", "judged", (404, 405, 501)),
        ("study metadata", "judged", (200,)),
        ("search studies", "precondition", (200,)),
    }
    assert ("*", readmap.ALL) in reads(mapped, part="metadata")


def test_reads_outside_a_check_and_the_guards_reads_are_not_noted(
    server: ScriptedServer,
    client: Client,
    mapped: Path,
) -> None:
    readmap.enter(None)
    server.script(Answer(200, {"Content-Type": dicomweb.DICOM_JSON}, json.dumps([STUDY]).encode()))
    expect.results(dicomweb.search(client, "studies"))
    assert records(mapped) == []
    readmap.enter(CHECK)
    response = client.request("GET", "studies")
    readmap.unwatch(response)
    assert type(response) is requests.Response
    assert response.json() == [STUDY] and response.headers.get("Content-Type")
    assert records(mapped) == []


TINY_CHECK = """
import pytest
from conformance import dicomweb, expect

@pytest.mark.requirement("QIDO-RESOURCE-ALL-STUDIES")
def test_tiny(dicomweb):
    response = dicomweb_search(dicomweb)
    (study,) = expect.results(response)
    assert dicomweb_first(study) == "1.2.3"

def dicomweb_search(client):
    return dicomweb.search(client, "studies")

def dicomweb_first(study):
    return dicomweb.first_value(study, dicomweb.STUDY_UID)

def test_not_a_check():
    pass
"""


def test_a_run_with_the_map_on_writes_what_its_check_read(
    pytester: pytest.Pytester,
    server: ScriptedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A check of one's own (it names a requirement) against a canned answer, the map on: one
    file of records, each naming the check."""
    server.script(Answer(200, {"Content-Type": dicomweb.DICOM_JSON}, json.dumps([STUDY]).encode()))
    for key in [k for k in __import__("os").environ if k.startswith("DICOMWEB_")]:
        monkeypatch.delenv(key)
    target = pytester.path / "map"
    monkeypatch.setenv(readmap.ENV, str(target))
    pytester.makepyfile(test_tiny=TINY_CHECK)
    result = pytester.runpytest_subprocess(
        f"--base-url={server.url}", "-p", "no:cacheprovider", "--dicomweb-cleanup=none"
    )
    result.assert_outcomes(passed=2)
    (path,) = target.glob("reads-main-*.jsonl")
    got = records(path)
    assert {r["check"] for r in got} == {"test_tiny.py::test_tiny"}
    assert (dicomweb.STUDY_UID, readmap.VALUE) in reads(path, kind="search studies", part="study")
    assert ("200", readmap.JUDGED) in reads(path, part=readmap.STATUS)


def test_the_document_puts_each_read_beside_what_the_standard_describes() -> None:
    """tests/whatisread.py: a study search's attributes read, presence only and unread."""
    check = "conformance/checks/test_qido.py::test_x[a/b]"
    canned: list[dict[str, Any]] = [
        {"kind": "search studies", "part": "status", "item": "200", "how": "judged",
         "against": [200, 204], "check": check},
        {"kind": "search studies", "part": "study", "item": "0020000D", "how": "value",
         "check": check},
        {"kind": "search studies", "part": "study", "item": "00100030", "how": "present",
         "check": check},
        {"kind": "search studies", "part": "response header", "item": "warning", "how": "value",
         "check": check},
    ]  # fmt: skip
    text = whatisread.render(canned, ["a server"])
    assert text.startswith("# What the checks read\n")
    assert "scripts/what-is-read" in text.split("\n\n")[1]
    assert "| judged against 200, 204 | `test_qido.py::test_x` (1) |" in text
    assert "| StudyInstanceUID `0020000D` | U | `test_qido.py::test_x` (1) |  |" in text
    assert "PatientBirthDate `00100030` — **presence only**" in text
    assert "PatientSex `00100040` — **unread**" in text
    assert "413 (10.6.3)" in text  # a code the standard describes and no helper takes
    assert "`www-authenticate`" in text.split("## What the map cannot see")[0]


def test_the_generated_document_is_there_and_linked() -> None:
    doc = whatisread.DOC.read_text(encoding="utf-8")
    assert doc.startswith("# What the checks read\n") and "generated by scripts/what-is-read" in doc
    assert "docs/what-is-read.md" in (REPO / "README.md").read_text(encoding="utf-8")


# --- on Orthanc: real checks, real answers -------------------------------------------------------

ON_ORTHANC = [
    "test_qido_attributes.py::test_study_result_has_required_attributes",
    "test_stow.py::test_referenced_sop_sequence_names_each_stored_instance",
    "test_http.py::test_head_answers_like_get",
]


def test_checks_on_orthanc_leave_the_records_of_what_they_read(
    orthanc: LocalOrthanc, run_suite: RunSuite, tmp_path: Path
) -> None:
    """Three checks with the map on: each one's reads are noted under its own name, and the
    verdicts are those recorded for Orthanc (without the map)."""
    target = tmp_path / "map"
    run = run_suite(
        orthanc.dicomweb_url,
        "--dicomweb-profile=orthanc",
        env={readmap.ENV: str(target)},
        checks=ON_ORTHANC,
    )
    recorded = expectations.load(ORTHANC_EXPECTATIONS).entries
    assert run.verdicts == {c: str(recorded[c].verdict) for c in run.verdicts}, run.stdout
    assert {c.split("[")[0] for c in run.verdicts} == set(ON_ORTHANC)
    got = [r for path in target.glob("reads-main-*.jsonl") for r in records(path)]
    by_check: dict[str, set[tuple[str, str, str, str]]] = {}
    for r in got:
        name = whatisread.short(r["check"])
        by_check.setdefault(name, set()).add((r["kind"], r["part"], r["item"], r["how"]))
    study, stow, head = (by_check.get(name, set()) for name in ON_ORTHANC)
    # Table 10.6.3-3's attributes, each asked for by name (PatientBirthDate: presence only).
    assert ("search studies", "study", "00100030", readmap.PRESENT) in study
    assert ("search studies", "study", "00200010", readmap.VALUE) in study
    assert ("search studies", readmap.STATUS, "200", readmap.JUDGED) in study
    # The STOW answer's Referenced SOP Sequence, and in its items the SOP Instance UIDs.
    assert ("store", readmap.STORE_MODULE, dicomweb.REFERENCED_SOP_SEQUENCE, readmap.VALUE) in stow
    assert ("store", "store answer > 00081199", dicomweb.REFERENCED_SOP_INSTANCE_UID, "value") in (
        stow
    )
    # A status code the check compares itself is noted with the code it saw.
    assert any(
        kind.endswith("(HEAD)") and part == readmap.STATUS and how == readmap.DIRECT
        for kind, part, _, how in head
    )
