"""QIDO-RS, paging and negotiation (conformance/requirements/qido.toml): limit and offset
(8.3.4.4), fuzzymatching, emptyvaluematching and unknown parameters, and the media types a search
answers in (8.7, Table 10.6.4-1).
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pytest
import requests

from conformance import expect, multipart
from conformance.checks.test_qido import (
    ACCEPT_XML,
    DICOM_XML,
    is_or_not,
    not_supported_warning,
    patient_id_of,
    report_url_of,
    warning_of,
)
from conformance.client import Client
from conformance.dicomweb import (
    DICOM_JSON,
    SERIES_UID,
    STUDY_UID,
    parts,
    search,
)
from conformance.expect import request_line
from conformance.profiles import Profile
from conformance.samples import SampleStudy
from conformance.synthetic import CatalogStudy

# --- paging (8.3.4.4) ------------------------------------------------------------------------


def _series_path(syn: CatalogStudy) -> str:
    return f"studies/{syn.study_uid}/series"


@pytest.mark.requirement("QIDO-LIMIT")
def test_limit_caps_results(dicomweb: Client, stored_synthetic: CatalogStudy) -> None:
    """The synthetic study has 5 series; limit=2 returns 2 of them."""
    response = search(dicomweb, _series_path(stored_synthetic), ("limit", "2"))
    found = expect.unique_keys(response, SERIES_UID)
    assert len(found) == 2, (
        f"{request_line(response)}: {len(found)} results for limit=2 of 5 matches"
    )
    assert set(found) <= set(stored_synthetic.series_uids), f"not the study's series: {found}"


@pytest.mark.requirement("QIDO-OFFSET")
def test_offset_skips_matches(dicomweb: Client, stored_synthetic: CatalogStudy) -> None:
    response = search(dicomweb, _series_path(stored_synthetic), ("offset", "3"))
    found = expect.unique_keys(response, SERIES_UID)
    assert len(found) == 2, (
        f"{request_line(response)}: {len(found)} results for offset=3 of 5 matches"
    )


@pytest.mark.requirement("QIDO-PAGING-COMPLETE")
def test_pages_give_every_match_once(dicomweb: Client, stored_synthetic: CatalogStudy) -> None:
    pages: list[str] = []
    for offset in (0, 2, 4):
        response = search(
            dicomweb, _series_path(stored_synthetic), ("limit", "2"), ("offset", str(offset))
        )
        page = expect.unique_keys(response, SERIES_UID)
        assert len(page) <= 2, f"{request_line(response)}: {len(page)} results for limit=2"
        pages += page
    repeated = sorted({u for u in pages if pages.count(u) > 1})
    assert not repeated, f"pages of limit=2 repeat {repeated}: {pages}"
    assert sorted(pages) == sorted(stored_synthetic.series_uids), (
        f"pages of limit=2 at offsets 0, 2, 4 give {pages}, not the study's 5 series"
    )


@pytest.mark.requirement("QIDO-PAGING-IDEMPOTENT")
def test_same_search_same_order(dicomweb: Client, stored_synthetic: CatalogStudy) -> None:
    first = expect.unique_keys(search(dicomweb, _series_path(stored_synthetic)), SERIES_UID)
    response = search(dicomweb, _series_path(stored_synthetic))
    second = expect.unique_keys(response, SERIES_UID)
    assert first == second, f"{request_line(response)} twice: {first}, then {second}"


def _no_results(response: requests.Response, why: str) -> None:
    """A search answered with no result: 204 with an empty payload (8.3.4.4.1, reading 204) or
    200 with an empty DICOM JSON list (CP-2473, reading 200-empty); nothing else."""
    if response.status_code == 204:
        assert not response.content, (
            f"{request_line(response)}: the 204 answer has a payload: {response.content[:100]!r}"
        )
        expect.chose("204")
        return
    expect.status(
        response,
        200,
        204,
        why=f"{why}: 204 No Content (8.3.4.4.1) or, after CP-2473, 200 OK with an empty list",
    )
    found = expect.results(response)
    assert not found, f"{request_line(response)}: {why}, yet it answers {len(found)} result(s)"
    if response.content.strip():
        media_type = multipart.parse_media_type(response.headers.get("Content-Type", ""))[0]
        assert media_type == DICOM_JSON, (
            f"{request_line(response)}: an empty list in {media_type!r}, not {DICOM_JSON}"
        )
    expect.chose("200-empty")


@pytest.mark.requirement("QIDO-OFFSET-PAST-END-204")
def test_offset_past_the_end_is_an_empty_answer(
    dicomweb: Client, stored_synthetic: CatalogStudy
) -> None:
    offset = len(stored_synthetic.series_uids)
    response = search(dicomweb, _series_path(stored_synthetic), ("offset", str(offset)))
    _no_results(response, f"offset={offset} of {offset} matches leaves results = 0")


@pytest.mark.requirement("QIDO-NO-MATCH-204")
def test_no_match_is_an_empty_answer(dicomweb: Client, stored_study: SampleStudy) -> None:
    """A series search of a stored study (a resource that exists) that matches nothing."""
    path = f"studies/{stored_study.study_uid}/series"
    response = search(dicomweb, path, ("SeriesInstanceUID", f"2.25.{uuid.uuid4().int}"))
    _no_results(response, "a Series Instance UID never stored matches nothing")


@pytest.mark.requirement("QIDO-PAGING-WARNING")
def test_truncated_results_warn_of_more(dicomweb: Client, stored_synthetic: CatalogStudy) -> None:
    """limit=2 of the study's 5 series: remaining = 5 - 0 - 2 = 3 (8.3.4.4.1)."""
    response = search(dicomweb, _series_path(stored_synthetic), ("limit", "2"))
    assert len(expect.unique_keys(response, SERIES_UID)) == 2, (
        f"{request_line(response)}: limit=2 not applied"
    )
    warning = warning_of(response)
    remaining = re.search(r"There are (\d+) additional results", warning, re.IGNORECASE)
    if remaining:
        expect.chose("remaining-text")
        assert remaining.group(1) == "3", (
            f"{request_line(response)}: the Warning {warning!r} counts {remaining.group(1)} "
            "additional results; 3 of the 5 matches remain"
        )
        return
    if report_url_of(response, dicomweb.base_url):
        expect.chose("status-report-url")
        return
    raise AssertionError(
        f"{request_line(response)}: 3 of 5 matches not returned, but the Warning header is "
        f"{response.headers.get('Warning')!r}; expected '299 <service>: There are 3 additional "
        "results that can be requested' (8.3.4.4.1) or a 299 Warning with the URL of a Search "
        "Status report (Table 10.6.3-1)"
    )


@pytest.mark.requirement("QIDO-PAGING-INVALID-400")
@pytest.mark.parametrize("param", ["limit=abc", "offset=abc", "limit=-1", "offset=-1"])
def test_invalid_paging_value_is_bad_request(
    dicomweb: Client, stored_synthetic: CatalogStudy, param: str
) -> None:
    name, value = param.split("=")
    response = search(dicomweb, _series_path(stored_synthetic), (name, value))
    expect.status(response, 400, why=f"{name} is a uint; {value!r} is an invalid value (8.3)")


# --- fuzzymatching, emptyvaluematching, unknown parameters -----------------------------------


@pytest.mark.requirement("QIDO-FUZZY-INVALID-400")
def test_fuzzymatching_invalid_value_is_bad_request(
    dicomweb: Client, stored_study: SampleStudy
) -> None:
    response = search(
        dicomweb,
        "studies",
        ("StudyInstanceUID", stored_study.study_uid),
        ("fuzzymatching", "maybe"),
    )
    expect.status(response, 400, why="fuzzymatching is true or false (8.3.4.2, 8.3)")


@dataclass(frozen=True)
class FuzzyProbe:
    """One Person Name asked with fuzzymatching=true and with =false."""

    value: str
    fuzzy: requests.Response
    literal: requests.Response


def _fuzzy_probes(dicomweb: Client, study: CatalogStudy) -> list[FuzzyProbe]:
    """Referring Physician's Name 'Doctor^Synthetic' (a study attribute) asked as fuzzy
    matching may differ from literal matching (PS3.4 C.2.2.2.1.1: case, position): in lower
    case, and with its components reversed; each with fuzzymatching=true and =false, in the
    run's patient."""
    stored = str(study.multiframe.dataset.ReferringPhysicianName)
    family, given = stored.split("^")
    scope = ("PatientID", patient_id_of(study.multiframe))

    def ask(value: str, fuzzy: str) -> requests.Response:
        key = ("ReferringPhysicianName", value)
        return search(dicomweb, "studies", scope, key, ("fuzzymatching", fuzzy))

    return [
        FuzzyProbe(value, ask(value, "true"), ask(value, "false"))
        for value in (stored.lower(), f"{given}^{family}")
    ]


def _differences(probes: list[FuzzyProbe]) -> list[str]:
    """The probes whose fuzzy answer differs from their literal one, described."""
    found = []
    for probe in probes:
        fuzzy = expect.unique_keys(probe.fuzzy, STUDY_UID)
        literal = expect.unique_keys(probe.literal, STUDY_UID)
        if sorted(fuzzy) != sorted(literal):
            found.append(
                f"{probe.value!r} finds {fuzzy} with fuzzymatching=true, {literal} without"
            )
    return found


@pytest.mark.requirement("QIDO-FUZZY-UNSUPPORTED-WARNING")
def test_fuzzymatching_without_support_warns(
    dicomweb: Client, stored_synthetic: CatalogStudy, dicomweb_profile: Profile
) -> None:
    """A server that warns performs literal matching; one that does not warn must support
    Fuzzy Matching: its profile says so, or its answers show it. Fuzzy semantics are the
    server's, so identical answers prove no absence: without a declaration they stay INFO."""
    probes = _fuzzy_probes(dicomweb, stored_synthetic)
    readings = [not_supported_warning(p.fuzzy, "fuzzymatching", dicomweb.base_url) for p in probes]
    differences = _differences(probes)
    first = probes[0].fuzzy
    if any(readings):
        silent = [
            request_line(p.fuzzy)
            for p, reading in zip(probes, readings, strict=True)
            if not reading
        ]
        assert not silent, (
            f"{request_line(first)} warns fuzzymatching is not supported, {silent} not"
        )
        for reading in readings:
            expect.chose(reading)
        assert not differences, (
            f"{request_line(first)} warns that only literal matching was performed, yet "
            f"{'; '.join(differences)}: the search shall be performed without Fuzzy Matching"
        )
        return
    declared = dicomweb_profile.declared("fuzzy-matching")
    if declared is not None and declared.supported:
        return  # a server with Fuzzy Matching: the rule does not apply
    assert declared is None, (
        f"{request_line(first)}: no 'Warning: 299 <service>: The fuzzymatching parameter is not "
        "supported. Only literal matching has been performed.' (8.3.4.2) nor a Search Status "
        f"report URL, and the server has no Fuzzy Matching ({declared.source})"
    )
    if not differences:
        expect.info(
            f"{request_line(first)}: fuzzymatching=true neither warned nor changed any answer: "
            "either Fuzzy Matching is unsupported and the 299 Warning is missing, or its semantics "
            "(the server's, PS3.4 C.2.2.2.1.1) coincide with literal matching on these probes; "
            "declare fuzzy-matching in the profile"
        )


@pytest.mark.requirement("QIDO-FUZZY-MATCHING")
def test_fuzzy_matching_is_recorded(dicomweb: Client, stored_synthetic: CatalogStudy) -> None:
    """What fuzzymatching=true changes is the server's (every word of C.2.2.2.1.1 is a may):
    an answer that differs from literal matching shows it; none differing is INFO."""
    probes = _fuzzy_probes(dicomweb, stored_synthetic)
    for probe in probes:
        # An answer that is no search answer leaves fuzzy matching unseen: ERROR, never a FAIL.
        expect.answered(probe.fuzzy, 200, 204)
        if not_supported_warning(probe.fuzzy, "fuzzymatching", dicomweb.base_url):
            expect.not_implemented(f"no fuzzy matching: {probe.fuzzy.headers.get('Warning')}")
    if not _differences(probes):
        values = ", ".join(repr(p.value) for p in probes)
        expect.info(
            f"fuzzymatching=true answers as literal matching does for ReferringPhysicianName "
            f"{values} (stored 'Doctor^Synthetic'): no fuzzy semantics observed"
        )


@pytest.mark.requirement("QIDO-EMPTY-VALUE-MATCHING-WARNING")
def test_emptyvaluematching_is_performed_or_warned(
    dicomweb: Client, stored_study: SampleStudy, stored_synthetic: CatalogStudy
) -> None:
    """AccessionNumber="" with Empty Value Matching finds the sample study (empty), not the
    synthetic one (ACC-...). Literal matching of '""' cannot find ACC-... either; whether it
    finds the empty one (PS3.4 C.2.2.1.2) is not judged here."""
    empty, known = stored_study.study_uid, stored_synthetic.study_uid
    response = search(
        dicomweb,
        "studies",
        ("PatientID", patient_id_of(stored_study.red)),
        ("AccessionNumber", '""'),
        ("emptyvaluematching", "true"),
    )
    found = expect.unique_keys(response, STUDY_UID)
    known_value = stored_synthetic.accession_number
    reading = not_supported_warning(response, "emptyvaluematching", dicomweb.base_url)
    if reading:
        expect.chose(reading)
        assert known not in found, (
            f"{request_line(response)} warns that Empty Value Matching has not been performed, yet "
            f"'\"\"' finds the study whose Accession Number is {known_value}"
        )
        return
    assert empty in found and known not in found, (
        f"{request_line(response)}: no 299 'emptyvaluematching parameter is not supported' Warning "
        "(8.3.4.5) nor a Search Status report URL, so Empty Value Matching is due, but the study "
        f"with an empty Accession Number {is_or_not(empty in found)} found, the one with "
        f"{known_value} {is_or_not(known in found)}"
    )


@pytest.mark.requirement("QIDO-IGNORE-UNKNOWN-PARAMETER")
def test_unknown_parameter_is_ignored(dicomweb: Client, stored_synthetic: CatalogStudy) -> None:
    path = _series_path(stored_synthetic)
    plain = expect.unique_keys(search(dicomweb, path), SERIES_UID)
    response = search(dicomweb, path, ("foo", "bar"))
    with_foo = expect.unique_keys(response, SERIES_UID)
    assert sorted(with_foo) == sorted(plain) == sorted(stored_synthetic.series_uids), (
        f"{request_line(response)}: {with_foo}; without foo=bar: {plain}"
    )


# --- media types (8.7, Table 10.6.4-1) ---------------------------------------------------------


@pytest.mark.requirement("QIDO-ACCEPT-UNSUPPORTED-406")
def test_unacceptable_media_type_gets_406_or_the_default(
    dicomweb: Client, stored_study: SampleStudy
) -> None:
    """Accept: text/html, no search media type and no wildcard: 406 (8.7.8.1) or the default
    application/dicom+json with the results (Table 8.7.3-1, 8.3.3.1); nothing else."""
    s = stored_study.study_uid
    response = search(dicomweb, "studies", ("StudyInstanceUID", s), accept="text/html")
    if expect.chose_406(response):
        return
    expect.status(
        response,
        200,
        406,
        why="text/html is no search media type: 406 (8.7.8.1) or the default media type "
        "(Table 8.7.3-1)",
    )
    media_type = multipart.parse_media_type(response.headers.get("Content-Type", ""))[0]
    assert media_type == DICOM_JSON, (
        f"{request_line(response)} with Accept text/html: Content-Type {media_type!r}, neither 406 "
        f"nor the default {DICOM_JSON}"
    )
    assert expect.unique_keys(response, STUDY_UID) == [s], (
        f"{request_line(response)} does not find the study"
    )
    expect.chose("default-media-type")


@pytest.mark.requirement("QIDO-NO-ACCEPT-406")
def test_missing_accept_is_406(dicomweb: Client, stored_study: SampleStudy) -> None:
    response = dicomweb.get(
        "studies", query=[("StudyInstanceUID", stored_study.study_uid)], headers={"Accept": None}
    )
    assert "Accept" not in response.request.headers, "the request carried an Accept header"
    expect.status(response, 406, why="a request without Accept (8.7.5, 8.7.7)")


@pytest.mark.requirement("QIDO-DEFAULT-MEDIA-TYPE")
@pytest.mark.parametrize("accept", [DICOM_JSON, "*/*"])
def test_search_answers_dicom_json(
    dicomweb: Client, stored_study: SampleStudy, accept: str
) -> None:
    s = stored_study.study_uid
    response = search(dicomweb, "studies", ("StudyInstanceUID", s), accept=accept)
    expect.status(response, 200)
    media_type = multipart.parse_media_type(response.headers.get("Content-Type", ""))[0]
    assert media_type == DICOM_JSON, (
        f"{request_line(response)} with Accept {accept}: Content-Type {media_type!r}, "
        f"expected {DICOM_JSON}"
    )
    assert expect.unique_keys(response, STUDY_UID) == [s], (
        f"{request_line(response)} does not find the study"
    )


@pytest.mark.requirement("QIDO-XML-MEDIA-TYPE")
def test_search_answers_dicom_xml(dicomweb: Client, stored_study: SampleStudy) -> None:
    s = stored_study.study_uid
    response = search(dicomweb, "studies", ("StudyInstanceUID", s), accept=ACCEPT_XML)
    expect.status(response, 200, why="multipart/related; type=application/dicom+xml is Required")
    media_type, params = multipart.parse_media_type(response.headers.get("Content-Type", ""))
    assert media_type == "multipart/related" and params.get("type") == DICOM_XML, (
        f"{request_line(response)} with Accept {ACCEPT_XML}: Content-Type "
        f"{response.headers.get('Content-Type')!r}"
    )
    found = []
    for number, part in enumerate(parts(dicomweb, response), 1):
        part_type = multipart.parse_media_type(part.content_type or DICOM_XML)[0]
        assert part_type == DICOM_XML, f"part {number} has Content-Type {part.content_type!r}"
        try:
            root = ET.fromstring(part.body)
        except ET.ParseError as exc:
            raise AssertionError(f"part {number} is not XML: {exc}") from None
        found += [
            (v.text or "").strip()
            for v in root.findall(".//{*}DicomAttribute[@tag='0020000D']/{*}Value")
        ]
    assert found == [s], f"the XML parts give StudyInstanceUID {found}, expected [{s}]"
