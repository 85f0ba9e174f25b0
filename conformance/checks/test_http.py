"""HTTP rules common to every DICOMweb transaction: Content-Type, methods, Warning, auth.

PS3.18 builds on HTTP: its status-code tables end with "See also Section 8.5", and 8.5 defers
to HTTP's own codes. So the rules here are PS3.18 8.4 and Annex F where PS3.18 states them, and
RFC 9110 / RFC 7234 where it leaves them to HTTP. A check never judges an error message's text:
it is the server's own prose.

The checks that need only data on the server ask their questions of "the data" (fixture
study_data): the run's stored study, or in a read-only run a sample of the first study it reads.
What needs a write (a store response, PUT and PATCH, which a read-only run never sends) is the
writing run's: DISABLED read-only, and left out of a check that asks it among others.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from conformance import expect
from conformance.client import Client
from conformance.dicomweb import (
    ACCEPT_DICOM_ANY_TS,
    DICOM_JSON,
    declared_media_type,
    metadata,
    search,
    stow,
)
from conformance.heldstudy import HeldStudy, StudyData, first_instance, path_of
from conformance.run.fixtures import NewSynthetic
from conformance.synthetic import CatalogStudy

# RFC 7234 5.5: warn-code SP warn-agent SP warn-text. PS3.18 writes its warnings unquoted
# ("299 <service>: text"), so the text may be quoted or not.
WARNING = re.compile(r"\d{3} \S+ .+")
# RFC 7234 5.5's own form: warn-text a quoted-string, then an optional quoted warn-date.
QUOTED_WARNING = re.compile(r'\d{3} \S+ "(?:[^"\\]|\\.)*"(?: "[^"]*")?')


def unknown_uid() -> str:
    """A valid UID no server has seen."""
    return f"2.25.{uuid.uuid4().int}"


# --- Content-Type -----------------------------------------------------------------------------

JSON_ANSWERS = {
    "study-metadata": "GET studies/{study}/metadata",
    "studies-search": "GET studies?StudyInstanceUID={study}",
    "store-response": "POST studies",
}


@pytest.mark.requirement("HTTP-JSON-CONTENT-TYPE")
@pytest.mark.parametrize("kind", list(JSON_ANSWERS))
def test_dicom_json_answers_are_application_dicom_json(
    dicomweb: Client, study_data: StudyData, request: pytest.FixtureRequest, kind: str
) -> None:
    """Of the data; a store response needs a store (DISABLED in a read-only run)."""
    study = study_data.study_uid
    if kind == "study-metadata":
        response = metadata(dicomweb, f"studies/{study}")
        if response.status_code in expect.ROUTE_ABSENT:
            expect.not_implemented(f"no metadata resource: it answered {response.status_code}")
        expect.status(response, 200)
    elif kind == "studies-search":
        response = search(dicomweb, "studies", StudyInstanceUID=study)
        expect.status(response, 200)
    else:
        new_synthetic: NewSynthetic = request.getfixturevalue("new_synthetic")
        response = stow(dicomweb, [new_synthetic().sequence])
        expect.answered(response, 200)
    expect.precondition(bool(response.content), f"{JSON_ANSWERS[kind]} answered with no payload")
    found = declared_media_type(response)
    assert found == DICOM_JSON, (
        f"{JSON_ANSWERS[kind]}: Content-Type is {response.headers.get('Content-Type')!r}, "
        f"expected {DICOM_JSON}"
    )


def send_error_request(
    kind: str, client: Client, study: StudyData, absent_uid: str
) -> requests.Response:
    if kind == "metadata-of-unknown-study":
        return metadata(client, f"studies/{unknown_uid()}")
    if kind == "search-with-limit=abc":
        return search(client, "studies", ("limit", "abc"))
    if kind == "instance-with-accept=text/html":
        return client.get(path_of(first_instance(study)), headers={"Accept": "text/html"})
    if kind == "PUT studies/{unknown}":
        # Never on the collection (a PUT could replace it) nor on stored data: on a study UID
        # this run minted and never stored.
        return client.request("PUT", f"studies/{absent_uid}")
    raise ValueError(kind)


ERROR_REQUESTS = [
    "metadata-of-unknown-study",
    "search-with-limit=abc",
    "instance-with-accept=text/html",
    "PUT studies/{unknown}",
]
WRITES = ("PUT studies/{unknown}",)  # never sent by a read-only run (its case is DISABLED)


@pytest.mark.requirement("HTTP-PAYLOAD-CONTENT-TYPE")
@pytest.mark.parametrize("kind", ERROR_REQUESTS)
def test_answers_with_a_payload_have_a_content_type(
    dicomweb: Client, study_data: StudyData, absent_uid: str, kind: str
) -> None:
    """Error answers are where a payload most often comes without its media type."""
    response = send_error_request(kind, dicomweb, study_data, absent_uid)
    if not response.content:
        expect.info(f"{kind}: answered {response.status_code} with no payload")
    assert response.headers.get("Content-Type"), (
        f"{kind}: answered {response.status_code} with a {len(response.content)}-byte payload "
        "and no Content-Type"
    )


@pytest.mark.requirement("HTTP-ERROR-EXPLANATION")
def test_client_errors_say_what_went_wrong(
    dicomweb: Client, study_data: StudyData, absent_uid: str
) -> None:
    """Each 4xx answer carries an explanation; its text is the server's own and never judged.
    A read-only run asks only the requests that read (no PUT)."""
    answered = []
    reads_only = isinstance(study_data, HeldStudy)
    for kind in ERROR_REQUESTS:
        if reads_only and kind in WRITES:
            continue
        response = send_error_request(kind, dicomweb, study_data, absent_uid)
        if 400 <= response.status_code < 500:
            answered.append((kind, response))
    expect.precondition(bool(answered), "none of the erroneous requests was answered 4xx")
    silent = [f"{kind} -> {r.status_code}" for kind, r in answered if not r.content.strip()]
    assert not silent, f"4xx answers without any explanation: {silent}"


# --- methods ----------------------------------------------------------------------------------

# Never PUT or PATCH on the collection "studies": a server that supports it may replace every
# study. Only on a study of the check's own.
METHODS = {  # name -> (method, path)
    "PUT studies/{study}": ("PUT", "studies/{study}"),
    "PATCH studies/{study}": ("PATCH", "studies/{study}"),
}


@dataclass
class Refused:
    """An unsupported method sent to a resource, and what the run saw that resource do."""

    method: str
    path: str
    response: requests.Response
    supports: set[str]  # the methods the run saw the resource serve


def send_unsupported(name: str, client: Client, new_synthetic: NewSynthetic) -> Refused:
    """The request, on a study of the check's own (a server that does support the method may
    change it), stored by a POST to that study's resource where the server takes it (then POST
    is one of the resource's methods), else to studies. GET of a study is Retrieve (10.4)."""
    study = new_synthetic()
    method, path = METHODS[name]
    path = path.format(study=study.study_uid)
    supports = {"GET"}
    if stow(client, [study.sequence], study.study_uid).status_code == 200:
        supports.add("POST")
    else:
        expect.answered(stow(client, [study.sequence]), 200)
    response = client.request(method, path, headers={"Accept": DICOM_JSON})
    return Refused(method, path, response, supports)


@pytest.mark.requirement("HTTP-UNSUPPORTED-METHOD-405")
@pytest.mark.parametrize("name", list(METHODS))
def test_unsupported_method_is_405(
    dicomweb: Client, new_synthetic: NewSynthetic, name: str
) -> None:
    sent = send_unsupported(name, dicomweb, new_synthetic)
    method, path, response = sent.method, sent.path, sent.response
    if 200 <= response.status_code < 300:
        expect.info(f"{method} {path} is supported: it answered {response.status_code}")
    expect.status(
        response,
        405,
        501,
        why="a method the resource does not support is 405, or 501 when the server knows no "
        "such method (RFC 9110 15.5.6, 15.6.2)",
    )


OPTIONS_STUDIES = "OPTIONS studies"


@pytest.mark.requirement("HTTP-405-ALLOW")
@pytest.mark.parametrize("name", [*METHODS, OPTIONS_STUDIES])
def test_405_lists_the_allowed_methods(
    dicomweb: Client, study_data: StudyData, request: pytest.FixtureRequest, name: str
) -> None:
    """Every 405 of the method probes, and of OPTIONS (RFC 9110 9.1: optional), lists the
    methods the run saw the resource serve: GET (Retrieve of a study, Search of studies), and
    POST where a store to it succeeded (the sample study was stored by POST studies; a
    read-only run stores nothing, so it saw only GET). The probes need a study of their own."""
    if name == OPTIONS_STUDIES:
        response = dicomweb.request("OPTIONS", "studies")
        seen = {"GET"} if isinstance(study_data, HeldStudy) else {"GET", "POST"}
        sent = Refused("OPTIONS", "studies", response, seen)
    else:
        sent = send_unsupported(name, dicomweb, request.getfixturevalue("new_synthetic"))
    method, path, response = sent.method, sent.path, sent.response
    if response.status_code != 405:
        expect.info(f"{method} {path} answered {response.status_code}, not 405: no Allow to check")
    allow = response.headers.get("Allow")
    assert allow is not None, f"{method} {path} answered 405 without an Allow header"
    methods = {m.strip().upper() for m in allow.split(",") if m.strip()}
    assert method not in methods, f"Allow: {allow} lists {method}, the method it refused"
    assert sent.supports <= methods, (
        f"Allow: {allow} leaves out {sorted(sent.supports - methods)}, which {path} served in "
        "this run (PS3.18 Table 8.5-1: the resource's currently supported methods)"
    )


HEAD_TARGETS = ["studies-search", "instance"]


@pytest.mark.requirement("HTTP-HEAD-LIKE-GET")
@pytest.mark.parametrize("target", HEAD_TARGETS)
def test_head_answers_like_get(dicomweb: Client, study_data: StudyData, target: str) -> None:
    if target == "studies-search":
        path, query, accept = "studies", [("StudyInstanceUID", study_data.study_uid)], DICOM_JSON
    else:
        path, query, accept = path_of(first_instance(study_data)), [], ACCEPT_DICOM_ANY_TS
    get = dicomweb.get(path, query=query, headers={"Accept": accept}, stream=True)
    get.close()
    expect.answered(get, 200)
    head = dicomweb.request("HEAD", path, query=query, headers={"Accept": accept})
    assert head.status_code == get.status_code, (
        f"HEAD {path} answered {head.status_code} {head.reason}, GET answered {get.status_code}"
    )
    if "Content-Type" not in head.headers:
        # RFC 9110 9.3.2: "a server MAY omit header fields for which a value is determined only
        # while generating the content".
        expect.info(f"HEAD {path} answered {head.status_code} without Content-Type (9.3.2: MAY)")
    assert declared_media_type(head) == declared_media_type(get), (
        f"HEAD {path} has Content-Type {head.headers.get('Content-Type')!r}, GET has "
        f"{get.headers.get('Content-Type')!r}"
    )


@pytest.mark.requirement("HTTP-OPTIONS-ALLOW")
def test_options_lists_the_allowed_methods(dicomweb: Client) -> None:
    response = dicomweb.request("OPTIONS", "studies")
    if not 200 <= response.status_code < 300:
        # A 405's Allow is test_405_lists_the_allowed_methods[OPTIONS studies]'s (a MUST).
        expect.info(f"OPTIONS studies answered {response.status_code} (OPTIONS is optional)")
    allow = response.headers.get("Allow")
    assert allow, f"OPTIONS studies answered {response.status_code} without an Allow header"
    methods = {m.strip().upper() for m in allow.split(",")}
    assert {"GET", "POST"} <= methods, f"Allow: {allow} leaves out GET or POST of /studies"


# --- Warning ----------------------------------------------------------------------------------


def warning_values(response: requests.Response) -> list[str]:
    """Each Warning header field of the answer, as sent (not joined with commas)."""
    raw: Any = response.raw
    headers = getattr(raw, "headers", None)
    if headers is not None and hasattr(headers, "getlist"):
        return [str(v) for v in headers.getlist("Warning")]
    value = response.headers.get("Warning")
    return [value] if value else []


# The answers most likely to carry a Warning: a search cut short by limit, and flags a server may
# not support. PS3.18 prescribes a Warning for each (8.3.4.4.1, 8.3.4.2, 8.3.4.5, 8.3.4.6).
LIMITED = "instances?limit="  # a search of a series' instances cut short by limit
PRESCRIBED = (
    LIMITED,
    "fuzzymatching=true",
    "emptyvaluematching=true",
    "multiplevaluematching=true",
)
# The others ("an unknown parameter", "study metadata") have none prescribed: a Warning there
# is held to no verb of PS3.18's (INFO).


@pytest.mark.requirement("HTTP-WARNING-SYNTAX")
def test_warning_headers_follow_the_http_grammar(
    dicomweb: Client, held_study: str | None, request: pytest.FixtureRequest
) -> None:
    """Each Warning of an answer PS3.18 prescribes one for is warn-code SP warn-agent SP
    warn-text: the text quoted (reading rfc7234) or as PS3.18 writes it (reading
    ps3-18-unquoted). Asked of the synthetic study, or in a read-only run of the held one."""
    if held_study is None:
        stored: CatalogStudy = request.getfixturevalue("stored_synthetic")
        study, series = stored.study_uid, stored.charset_latin.series_uid
        limited: tuple[str, int, int] | None = (series, 2, 3)
    else:
        study = held_study
        limited = cut_short(request.getfixturevalue("study_data"))
    asked: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    if limited is not None:  # a held study of one-instance series has no search to cut short
        series, limit, of = limited
        asked[f"{LIMITED}{limit} (of {of})"] = (
            f"studies/{study}/series/{series}/instances",
            [("limit", str(limit))],
        )
    asked |= {
        "fuzzymatching=true": (
            "studies",
            [("PatientName", "Conformance^Synthetic"), ("fuzzymatching", "true")],
        ),
        "emptyvaluematching=true": (
            "studies",
            [("StudyInstanceUID", study), ("emptyvaluematching", "true")],
        ),
        "multiplevaluematching=true": (
            "studies",
            [("StudyInstanceUID", study), ("multiplevaluematching", "true")],
        ),
        "an unknown parameter": (
            "studies",
            [("StudyInstanceUID", study), ("dicomwebConformanceUnknown", "1")],
        ),
        "study metadata": (f"studies/{study}/metadata", []),
    }
    warnings: list[tuple[str, str]] = []
    for what, (path, query) in asked.items():
        response = dicomweb.get(path, query=query, headers={"Accept": DICOM_JSON})
        warnings += [(what, value) for value in warning_values(response)]
    malformed = [(what, value) for what, value in warnings if not WARNING.fullmatch(value)]
    breaches = [f"{what}: Warning: {value}" for what, value in malformed if prescribed(what)]
    assert not breaches, f"Warning headers not of the form '299 <agent> <text>': {breaches}"
    for what, value in warnings:
        if prescribed(what):
            expect.chose("rfc7234" if QUOTED_WARNING.fullmatch(value) else "ps3-18-unquoted")
    if malformed:  # where PS3.18 prescribes no Warning: no rule holds its syntax
        shown = "; ".join(f"{what}: Warning: {value}" for what, value in malformed)
        expect.info(f"a malformed Warning where PS3.18 prescribes none: {shown}")
    if not warnings:
        expect.info(f"no Warning header in {len(asked)} answers ({', '.join(asked)})")


def prescribed(what: str) -> bool:
    """Whether PS3.18 prescribes a Warning for the answer asked as ``what``."""
    return what.startswith(PRESCRIBED)


def cut_short(held: HeldStudy) -> tuple[str, int, int] | None:
    """A sampled series a search with limit cuts short, the limit and how many it holds (at
    least): the series with the most instances sampled, below its count where the sample holds
    the whole series, at the sample's count where it holds more. None if every series sampled
    holds a single instance."""
    series = max(held.series_uids, key=lambda uid: len(held.in_series(uid)))
    count = len(held.in_series(series))
    if held.is_whole(series):
        return (series, count - 1, count) if count > 1 else None
    return series, count, count + 1
