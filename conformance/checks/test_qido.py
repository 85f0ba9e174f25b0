"""QIDO-RS, the Search transaction (conformance/requirements/qido.toml): resources, matching,
includefield, returned attributes, paging, search parameters and media types.

Every match is proven both ways: the search finds the study, series or instance that has the
value, and does not find one whose known value differs (another sample, or the same one asked
for with a wrong value). The article's study (``stored_study``) and the synthetic study
(``stored_synthetic``) are two studies of one patient (the run's Patient ID) with different
values almost everywhere. An entity whose value is empty is never counted on to be excluded:
PS3.4 C.2.2.1.2 lets a zero-length Required Key match anything.

Each answer read is also held to the result rules every search shares: 200 with a DICOM JSON
array or 204 with none, and each matching entity once, with its unique key.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from conformance import expect, multipart, synthetic
from conformance.client import Client
from conformance.dicomweb import (
    DICOM_JSON,
    SERIES_UID,
    SOP_UID,
    STUDY_UID,
    first_value,
    instance_path,
    parts,
    search,
    stow,
    uids,
    values,
)
from conformance.expect import request_line
from conformance.profiles import Profile
from conformance.run.fixtures import NewSynthetic
from conformance.samples import Instance, SampleStudy
from conformance.synthetic import CatalogStudy

Params = Sequence[tuple[str, str]]

DICOM_XML = "application/dicom+xml"
ACCEPT_XML = f'multipart/related; type="{DICOM_XML}"'
SECONDARY_CAPTURE = synthetic.SECONDARY_CAPTURE
MULTIFRAME_SC = synthetic.MULTIFRAME_GRAYSCALE_BYTE_SC

STUDY_DESCRIPTION = "00081030"
PATIENT_AGE = "00101010"
RETRIEVE_URL = "00081190"
REQUEST_ATTRIBUTES = "00400275"
SCHEDULED_STEP_ID = "00400009"
REQUESTED_PROCEDURE_ID = "00401001"

# Table 10.6.3-3: the study attributes of Type R and U (tag -> keyword).
STUDY_RETURN = {
    "00080020": "StudyDate",
    "00080030": "StudyTime",
    "00080050": "AccessionNumber",
    "00080061": "ModalitiesInStudy",
    "00080090": "ReferringPhysicianName",
    "00100010": "PatientName",
    "00100020": "PatientID",
    "00100030": "PatientBirthDate",
    "00100040": "PatientSex",
    "0020000D": "StudyInstanceUID",
    "00200010": "StudyID",
    "00201206": "NumberOfStudyRelatedSeries",
    "00201208": "NumberOfStudyRelatedInstances",
}
# Table 10.6.3-3 whole: its R and U rows and its C rows (Instance Availability, Timezone Offset
# From UTC, Retrieve URL).
STUDY_TABLE = {*STUDY_RETURN, "00080056", "00080201", RETRIEVE_URL}
# Table 10.6.3-4: the series attributes of Type R and U.
SERIES_RETURN = {
    "00080060": "Modality",
    "0020000E": "SeriesInstanceUID",
    "00200011": "SeriesNumber",
    "00201209": "NumberOfSeriesRelatedInstances",
}
# Table 10.6.3-5: the instance attributes of Type R and U (Retrieve URL has its own check).
INSTANCE_RETURN = {
    "00080016": "SOPClassUID",
    "00080018": "SOPInstanceUID",
    "00200013": "InstanceNumber",
}


# --- helpers ----------------------------------------------------------------------------------


def _relational(response: requests.Response) -> requests.Response:
    """A relational resource is optional for a DIMSE proxy: absent is NOT-IMPLEMENTED."""
    if response.status_code in expect.ROUTE_ABSENT:
        expect.not_implemented(
            f"no relational search: {request_line(response)} answered {response.status_code}"
        )
    return response


def _pid(instance: Instance) -> str:
    return str(instance.dataset.PatientID)


def _number(value: Any) -> int:
    """An IS or US value, sent as a JSON number or string."""
    return int(str(value).strip())


WARNING_299 = re.compile(r"(?:^|,)\s*299\s")
URL = re.compile(r"https?://[^\s\"'<>,]+")


def _warning(response: requests.Response) -> str:
    """The Warning header when it carries a 299 warning-value ("" otherwise)."""
    warning = response.headers.get("Warning", "")
    return warning if WARNING_299.search(warning) else ""


def _report_url(response: requests.Response, base_url: str) -> str | None:
    """The URL a 299 Warning carries that is not the service's base URI (the <service> of the
    8.3.4 texts): Table 10.6.3-1's other form, "a URL referencing a Search Status report"."""
    for found in URL.findall(_warning(response)):
        url = str(found).rstrip(".:;")
        if url.rstrip("/") != base_url.rstrip("/"):
            return url
    return None


def _not_supported_warning(response: requests.Response, parameter: str, base_url: str) -> str:
    """The reading of a 299 Warning saying ``parameter`` is not supported (8.3.4.2, 8.3.4.5):
    "not-supported-text" for the section's text, "status-report-url" for a Search Status report
    URL (Table 10.6.3-1); "" when there is neither."""
    if f"{parameter} parameter is not supported" in _warning(response).lower():
        return "not-supported-text"
    return "status-report-url" if _report_url(response, base_url) else ""


def _is(found: bool) -> str:
    return "is" if found else "is not"


def _missing(obj: dict[str, Any], tags: dict[str, str]) -> list[str]:
    return [f"{keyword} ({tag})" for tag, keyword in tags.items() if tag not in obj]


def _only(response: requests.Response, tag: str, uid: str) -> dict[str, Any]:
    """The single result of a search by unique key."""
    objects = expect.results(response)
    found = uids(objects, tag)
    assert found == [uid], f"{request_line(response)}: expected exactly [{uid}], got {found}"
    return objects[0]


def _stored_with(dicomweb: Client, instance: Instance, **attributes: str) -> Instance:
    """``instance`` (of a fresh synthetic study) with ``attributes`` set, stored alone: a study
    of its own, whose study attributes are the ones the check gave it."""
    for keyword, value in attributes.items():
        instance = synthetic.with_attribute(instance, keyword, value, keyword)
    expect.answered(stow(dicomweb, [instance]), 200)
    return instance


def _token(uid: str, shift: int = 0) -> str:
    """Eight digits of a UID (plus ``shift``): a value of this run, short enough for an SH."""
    digits = "".join(c for c in uid if c.isdigit())
    return f"{(int(digits[-8:]) + shift) % 10**8:08d}"


@dataclass(frozen=True)
class Match:
    """One matching rule, proven both ways.

    Searching ``path`` with ``scope`` and key=value finds ``target`` and none of ``others``
    (entities whose value is known and differs); searching with key=wrong, restricted to the
    target by its unique key, does not find it.
    """

    path: str
    key: str
    value: str
    tag: str  # the unique key of the results (study, series or SOP Instance UID)
    target_key: str  # its keyword, for the search restricted to the target
    target: str
    others: tuple[str, ...] = ()
    wrong: str | None = None
    scope: tuple[tuple[str, str], ...] = ()


def _check_match(dicomweb: Client, case: Match) -> None:
    response = search(dicomweb, case.path, *case.scope, (case.key, case.value))
    found = expect.unique_keys(response, case.tag)
    assert case.target in found, (
        f"{request_line(response)}: {case.key}={case.value!r} does not find {case.target}, which "
        f"has that value (found {found})"
    )
    wrongly = [uid for uid in case.others if uid in found]
    assert not wrongly, (
        f"{request_line(response)}: {case.key}={case.value!r} also finds {wrongly}, whose "
        f"{case.key} is another value"
    )
    if case.wrong is None:
        return
    response = search(dicomweb, case.path, (case.target_key, case.target), (case.key, case.wrong))
    found = expect.unique_keys(response, case.tag)
    assert case.target not in found, (
        f"{request_line(response)}: {case.key}={case.wrong!r} finds {case.target}, whose "
        f"{case.key} is {case.value!r}: the key was not matched"
    )


def _study(path: str = "studies", **fields: Any) -> Callable[..., Match]:
    """A factory of study-level Match cases."""

    def make(key: str, value: str, target: str, **more: Any) -> Match:
        return Match(path, key, value, STUDY_UID, "StudyInstanceUID", target, **fields, **more)

    return make


def _study_cases(study: SampleStudy, syn: CatalogStudy) -> dict[str, Match]:
    s, y = study.study_uid, syn.study_uid
    on_s = (("PatientID", _pid(study.red)),)
    on_y = (("PatientID", _pid(syn.multiframe)),)
    m = _study()
    return {
        "StudyDate": m("StudyDate", "20200922", s, wrong="20200923", scope=on_s),
        "StudyTime": m("StudyTime", "120000", s, wrong="130000", scope=on_s),
        "AccessionNumber": m(
            "AccessionNumber", syn.accession_number, y, wrong="ACC-0000000000", scope=on_y
        ),
        "ModalitiesInStudy": m("ModalitiesInStudy", "SR", y, others=(s,), wrong="MR", scope=on_y),
        "ReferringPhysicianName": m(
            "ReferringPhysicianName",
            "Doctor^Synthetic",
            y,
            others=(s,),
            wrong="Doctor^Other",
            scope=on_y,
        ),
        # The value is the name the server gives the study (see _patient_name).
        "PatientName": m("PatientName", "", s, wrong="Other^Name", scope=on_s),
        "PatientID": m("PatientID", _pid(study.red), s, wrong=_pid(study.red) + "X"),
        "StudyInstanceUID": m("StudyInstanceUID", s, s, others=(y,), scope=on_s),
        "StudyID": m("StudyID", "DWC1", y, others=(s,), wrong="DWC2", scope=on_y),
    }


def _series_cases(syn: CatalogStudy) -> dict[str, Match]:
    path = f"studies/{syn.study_uid}/series"
    report, request = syn.no_pixels.series_uid, syn.sequence.series_uid
    first = syn.multiframe.series_uid

    def m(key: str, value: str, target: str, **more: Any) -> Match:
        return Match(path, key, value, SERIES_UID, "SeriesInstanceUID", target, **more)

    def besides(uid: str) -> tuple[str, ...]:
        return tuple(u for u in syn.series_uids if u != uid)

    return {
        "Modality": m("Modality", "SR", report, others=besides(report), wrong="MR"),
        "SeriesInstanceUID": m("SeriesInstanceUID", first, first, others=besides(first)),
        "SeriesNumber": m("SeriesNumber", "3", report, others=besides(report), wrong="9"),
        "ScheduledProcedureStepID": m(
            "RequestAttributesSequence.ScheduledProcedureStepID",
            syn.scheduled_procedure_step_id,
            request,
            wrong="SPS-0000000000",
        ),
        "RequestedProcedureID": m(
            "RequestAttributesSequence.RequestedProcedureID",
            syn.requested_procedure_id,
            request,
            wrong="RP-0000000000",
        ),
    }


def _instance_cases(syn: CatalogStudy) -> dict[str, Match]:
    latin, ideographic, greek = syn.charsets
    path = f"studies/{syn.study_uid}/series/{latin.series_uid}/instances"

    def m(key: str, value: str, target: str, **more: Any) -> Match:
        return Match(path, key, value, SOP_UID, "SOPInstanceUID", target, **more)

    return {
        "SOPClassUID": m("SOPClassUID", SECONDARY_CAPTURE, latin.sop_uid, wrong=MULTIFRAME_SC),
        "SOPInstanceUID": m(
            "SOPInstanceUID",
            ideographic.sop_uid,
            ideographic.sop_uid,
            others=(latin.sop_uid, greek.sop_uid),
        ),
        "InstanceNumber": m(
            "InstanceNumber",
            "2",
            ideographic.sop_uid,
            others=(latin.sop_uid, greek.sop_uid),
            wrong="7",
        ),
    }


def _requirement(key: str, requirement: str, id: str | None = None) -> Any:
    return pytest.param(key, id=id or key, marks=pytest.mark.requirement(requirement))


# --- resources and scope (10.6.1.1) ---------------------------------------------------------

RESOURCES = {
    "studies": ("QIDO-RESOURCE-ALL-STUDIES", False),
    "studies/{study}/series": ("QIDO-RESOURCE-STUDY-SERIES", False),
    "studies/{study}/series/{series}/instances": ("QIDO-RESOURCE-STUDY-SERIES-INSTANCES", False),
    "studies/{study}/instances": ("QIDO-RESOURCE-STUDY-INSTANCES", True),
    "series": ("QIDO-RESOURCE-ALL-SERIES", True),
    "instances": ("QIDO-RESOURCE-ALL-INSTANCES", True),
}


@pytest.mark.parametrize(
    "resource", [_requirement(r, requirement) for r, (requirement, _) in RESOURCES.items()]
)
def test_search_resource_returns_its_collection(
    dicomweb: Client, stored_study: SampleStudy, stored_synthetic: CatalogStudy, resource: str
) -> None:
    """Each search resource answers with exactly the entities it names (the article's study:
    2 series; green-square and red-triangle in one, blue-circle in the other), and nothing of
    the other study stored."""
    red = stored_study.red
    s = stored_study.study_uid
    series_uids = sorted({i.series_uid for i in stored_study})
    path = resource.format(study=s, series=red.series_uid)
    params: list[tuple[str, str]] = []
    if resource in ("series", "instances"):
        params = [("StudyInstanceUID", s)]
    elif resource == "studies":
        params = [("PatientID", _pid(red))]
    response = search(dicomweb, path, *params)
    if RESOURCES[resource][1]:
        _relational(response)
    if resource == "studies":
        found = expect.unique_keys(response, STUDY_UID)
        assert s in found, f"{request_line(response)} does not find the stored study {s}"
        return
    tag, expected = {
        "studies/{study}/series": (SERIES_UID, series_uids),
        "series": (SERIES_UID, series_uids),
        "studies/{study}/series/{series}/instances": (
            SOP_UID,
            sorted(i.sop_uid for i in stored_study.in_series(red.series_uid)),
        ),
        "studies/{study}/instances": (SOP_UID, sorted(stored_study.sop_uids)),
        "instances": (SOP_UID, sorted(stored_study.sop_uids)),
    }[resource]
    found = expect.unique_keys(response, tag)
    assert sorted(found) == expected, f"{request_line(response)}: expected {expected}, got {found}"


@pytest.mark.requirement("QIDO-SCOPE-STUDY-SERIES")
def test_study_series_search_stays_in_its_study(
    dicomweb: Client, stored_study: SampleStudy, stored_synthetic: CatalogStudy
) -> None:
    """Modality=OT matches series of both studies; a study's series search returns only its own."""
    s = stored_study.study_uid
    response = search(dicomweb, f"studies/{s}/series", ("Modality", "OT"))
    found = expect.unique_keys(response, SERIES_UID)
    expected = sorted({i.series_uid for i in stored_study})
    outside = [uid for uid in found if uid in stored_synthetic.series_uids]
    assert not outside, f"{request_line(response)} returns series of another study: {outside}"
    assert sorted(found) == expected, f"{request_line(response)}: expected {expected}, got {found}"


@pytest.mark.requirement("QIDO-SCOPE-SERIES-INSTANCES")
def test_series_instances_search_stays_in_its_series(
    dicomweb: Client, stored_study: SampleStudy
) -> None:
    """InstanceNumber=1 is red-triangle's and blue-circle's (another series): blue is not
    found. Whether green (Instance Number 2, in red's series) is left out is
    QIDO-MATCH-INSTANCE-NUMBER's business, not the scope's."""
    red = stored_study.red
    response = search(
        dicomweb,
        f"studies/{red.study_uid}/series/{red.series_uid}/instances",
        ("InstanceNumber", "1"),
    )
    found = expect.unique_keys(response, SOP_UID)
    in_series = {i.sop_uid for i in stored_study.in_series(red.series_uid)}
    outside = [uid for uid in found if uid not in in_series]
    assert not outside, (
        f"{request_line(response)} returns instances of another series: {outside} (the series "
        f"holds {sorted(in_series)})"
    )
    if red.sop_uid not in found:
        expect.info(
            f"{request_line(response)} does not find red-triangle (Instance Number 1) at all (see "
            "QIDO-MATCH-INSTANCE-NUMBER): nothing outside the series, but the scope is not seen "
            "at work"
        )


@pytest.mark.requirement("QIDO-RESULT-PER-MATCH")
@pytest.mark.parametrize("level", ["studies", "series", "instances"])
def test_each_match_is_one_result(
    dicomweb: Client, stored_study: SampleStudy, stored_synthetic: CatalogStudy, level: str
) -> None:
    y = stored_synthetic.study_uid
    latin = stored_synthetic.charset_latin
    if level == "studies":
        response = search(dicomweb, "studies", ("PatientID", _pid(stored_study.red)))
        found = expect.unique_keys(response, STUDY_UID)
        assert stored_study.study_uid in found, f"{request_line(response)} misses the stored study"
        return
    if level == "series":
        response = search(dicomweb, f"studies/{y}/series")
        found = expect.unique_keys(response, SERIES_UID)
        expected = sorted(stored_synthetic.series_uids)
    else:
        response = search(dicomweb, f"studies/{y}/series/{latin.series_uid}/instances")
        found = expect.unique_keys(response, SOP_UID)
        expected = sorted(i.sop_uid for i in stored_synthetic.in_series(latin.series_uid))
    assert sorted(found) == expected, f"{request_line(response)}: expected {expected}, got {found}"


# --- required matching attributes (Table 10.6.1-5) --------------------------------------------

STUDY_KEYS = {
    "StudyDate": "QIDO-MATCH-STUDY-DATE",
    "StudyTime": "QIDO-MATCH-STUDY-TIME",
    "AccessionNumber": "QIDO-MATCH-ACCESSION-NUMBER",
    "ModalitiesInStudy": "QIDO-MATCH-MODALITIES-IN-STUDY",
    "ReferringPhysicianName": "QIDO-MATCH-REFERRING-PHYSICIAN-NAME",
    "PatientName": "QIDO-MATCH-PATIENT-NAME",
    "PatientID": "QIDO-MATCH-PATIENT-ID",
    "StudyInstanceUID": "QIDO-MATCH-STUDY-INSTANCE-UID",
    "StudyID": "QIDO-MATCH-STUDY-ID",
}
SERIES_KEYS = {
    "Modality": "QIDO-MATCH-MODALITY",
    "SeriesInstanceUID": "QIDO-MATCH-SERIES-INSTANCE-UID",
    "SeriesNumber": "QIDO-MATCH-SERIES-NUMBER",
    "ScheduledProcedureStepID": "QIDO-MATCH-SCHEDULED-PROCEDURE-STEP-ID",
    "RequestedProcedureID": "QIDO-MATCH-REQUESTED-PROCEDURE-ID",
}
INSTANCE_KEYS = {
    "SOPClassUID": "QIDO-MATCH-SOP-CLASS-UID",
    "SOPInstanceUID": "QIDO-MATCH-SOP-INSTANCE-UID",
    "InstanceNumber": "QIDO-MATCH-INSTANCE-NUMBER",
}


@pytest.mark.parametrize("key", [_requirement(k, r) for k, r in STUDY_KEYS.items()])
def test_studies_match_required_key(
    dicomweb: Client, stored_study: SampleStudy, stored_synthetic: CatalogStudy, key: str
) -> None:
    case = _study_cases(stored_study, stored_synthetic)[key]
    if key == "PatientName":
        # Every study of the run has one Patient ID: a server may keep one name for the
        # patient, so the name searched is the one it gives this study, and the other study
        # is not counted on to be excluded.
        case = dataclasses.replace(case, value=_patient_name(dicomweb, case.target))
    _check_match(dicomweb, case)


@pytest.mark.parametrize("key", [_requirement(k, r) for k, r in SERIES_KEYS.items()])
def test_series_match_required_key(
    dicomweb: Client, stored_synthetic: CatalogStudy, key: str
) -> None:
    _check_match(dicomweb, _series_cases(stored_synthetic)[key])


@pytest.mark.parametrize("key", [_requirement(k, r) for k, r in INSTANCE_KEYS.items()])
def test_instances_match_required_key(
    dicomweb: Client, stored_synthetic: CatalogStudy, key: str
) -> None:
    _check_match(dicomweb, _instance_cases(stored_synthetic)[key])


PPS = {
    "PerformedProcedureStepStartDate": ("QIDO-MATCH-PPS-START-DATE", "20210102", "20210305"),
    "PerformedProcedureStepStartTime": ("QIDO-MATCH-PPS-START-TIME", "101010", "151515"),
}


@pytest.mark.parametrize("key", [_requirement(k, r) for k, (r, _, _) in PPS.items()])
def test_series_match_performed_procedure_step_start(
    dicomweb: Client, new_synthetic: NewSynthetic, key: str
) -> None:
    """No sample has it: two series of a fresh study get different values, one is found."""
    study = new_synthetic()
    _, value, other = PPS[key]
    wanted = synthetic.with_attribute(study.sequence, key, value, f"pps-{key}")
    unwanted = synthetic.with_attribute(study.no_pixels, key, other, f"pps-{key}")
    expect.answered(stow(dicomweb, [wanted, unwanted]), 200)
    response = search(dicomweb, f"studies/{study.study_uid}/series", (key, value))
    found = expect.unique_keys(response, SERIES_UID)
    assert found == [wanted.series_uid], (
        f"{request_line(response)}: expected only series {wanted.series_uid} ({key} {value}); "
        f"the other series has {other}; got {found}"
    )


# --- forms of matching (8.3.4.1; PS3.4 C.2.2.2) ---------------------------------------------


@pytest.mark.requirement("QIDO-MATCH-TAG-FORM")
@pytest.mark.parametrize("tag", ["0020000D", "00080061", "0020000E", "00200013"])
def test_tag_form_matches_like_keyword(
    dicomweb: Client, stored_study: SampleStudy, stored_synthetic: CatalogStudy, tag: str
) -> None:
    """The keyword-form cases of the required-key checks, asked with the tag instead. The
    keyword form is asked first: a key the server does not match by keyword either is its
    required-key check's failure, and says nothing of the tag form."""
    cases = {
        "0020000D": _study_cases(stored_study, stored_synthetic)["StudyInstanceUID"],
        "00080061": _study_cases(stored_study, stored_synthetic)["ModalitiesInStudy"],
        "0020000E": _series_cases(stored_synthetic)["SeriesInstanceUID"],
        "00200013": _instance_cases(stored_synthetic)["InstanceNumber"],
    }
    case = cases[tag]
    try:
        _check_match(dicomweb, case)
    except AssertionError as failure:
        requirement = {**STUDY_KEYS, **SERIES_KEYS, **INSTANCE_KEYS}[case.key]
        expect.info(
            f"{case.key} is not matched by keyword either ({requirement}): the tag form is not "
            f"observable; {failure}"
        )
    _check_match(dicomweb, dataclasses.replace(case, key=tag))


@pytest.mark.requirement("QIDO-MATCH-UID-LIST")
@pytest.mark.parametrize("level", ["StudyInstanceUID=S1,S2", "SOPInstanceUID=I1,I3"])
def test_uid_list_matches_each_listed_uid(
    dicomweb: Client, stored_study: SampleStudy, stored_synthetic: CatalogStudy, level: str
) -> None:
    if level.startswith("Study"):
        wanted = [stored_study.study_uid, stored_synthetic.study_uid]
        response = search(dicomweb, "studies", ("StudyInstanceUID", ",".join(wanted)))
        found = expect.unique_keys(response, STUDY_UID)
    else:
        latin, _, greek = stored_synthetic.charsets
        wanted = [latin.sop_uid, greek.sop_uid]
        path = f"studies/{latin.study_uid}/series/{latin.series_uid}/instances"
        response = search(dicomweb, path, ("SOPInstanceUID", ",".join(wanted)))
        found = expect.unique_keys(response, SOP_UID)
    assert sorted(found) == sorted(wanted), (
        f"{request_line(response)}: expected exactly the listed {sorted(wanted)}, got {found}"
    )


def _both(study: SampleStudy, syn: CatalogStudy, key: str, value: str) -> list[Match]:
    """The key matched against the article's study and the synthetic one, each in its scope."""
    m = _study()
    return [
        m(key, value, study.study_uid, scope=(("PatientID", _pid(study.red)),)),
        m(key, value, syn.study_uid, scope=(("PatientID", _pid(syn.multiframe)),)),
    ]


@pytest.mark.requirement("QIDO-MATCH-UNIVERSAL")
@pytest.mark.parametrize("key", ["PatientName", "AccessionNumber"])
def test_empty_value_matches_every_study(
    dicomweb: Client, stored_study: SampleStudy, stored_synthetic: CatalogStudy, key: str
) -> None:
    """PatientName= and AccessionNumber= find studies whose value is not empty."""
    for case in _both(stored_study, stored_synthetic, key, ""):
        _check_match(dicomweb, case)


def _wildcard_cases(study: SampleStudy, syn: CatalogStudy) -> dict[str, Match]:
    s, y, pid = study.study_uid, syn.study_uid, _pid(study.red)
    on_y = (("PatientID", _pid(syn.multiframe)),)
    only_s = (("StudyInstanceUID", s),)
    m = _study()
    return {
        # '*'
        "PatientID=prefix*": m("PatientID", pid[:-1] + "*", s, wrong="Z" + pid + "*", scope=only_s),
        "AccessionNumber=ACC-*": m("AccessionNumber", "ACC-*", y, wrong="ACX-*", scope=on_y),
        "ModalitiesInStudy=S*": m(
            "ModalitiesInStudy", "S*", y, others=(s,), wrong="X*", scope=on_y
        ),
        "StudyID=D*1": m("StudyID", "D*1", y, others=(s,), wrong="D*2", scope=on_y),
        # '?'
        "StudyID=DWC?": m("StudyID", "DWC?", y, others=(s,), wrong="DWC??", scope=on_y),
        "ModalitiesInStudy=S?": m(
            "ModalitiesInStudy", "S?", y, others=(s,), wrong="S??", scope=on_y
        ),
        "PatientID=prefix?": m("PatientID", pid[:-1] + "?", s, wrong=pid + "?", scope=only_s),
    }


WILDCARD_ANY = [
    "PatientID=prefix*",
    "AccessionNumber=ACC-*",
    "ModalitiesInStudy=S*",
    "StudyID=D*1",
]
WILDCARD_ONE = ["StudyID=DWC?", "ModalitiesInStudy=S?", "PatientID=prefix?"]


@pytest.mark.requirement("QIDO-MATCH-WILDCARD-ANY")
@pytest.mark.parametrize("case", WILDCARD_ANY)
def test_star_matches_any_characters(
    dicomweb: Client, stored_study: SampleStudy, stored_synthetic: CatalogStudy, case: str
) -> None:
    """'*' in LO (Patient ID), SH (Accession Number, Study ID) and CS (Modalities in Study)."""
    _check_match(dicomweb, _wildcard_cases(stored_study, stored_synthetic)[case])


@pytest.mark.requirement("QIDO-MATCH-WILDCARD-ONE")
@pytest.mark.parametrize("case", WILDCARD_ONE)
def test_question_mark_matches_one_character(
    dicomweb: Client, stored_study: SampleStudy, stored_synthetic: CatalogStudy, case: str
) -> None:
    _check_match(dicomweb, _wildcard_cases(stored_study, stored_synthetic)[case])


@pytest.mark.requirement("QIDO-MATCH-WILDCARD-ALONE")
@pytest.mark.parametrize("key", ["AccessionNumber", "StudyID"])
def test_star_alone_matches_every_study(
    dicomweb: Client, stored_study: SampleStudy, stored_synthetic: CatalogStudy, key: str
) -> None:
    """'*' matches a zero-length value too: the article's study has an empty Accession Number."""
    for case in _both(stored_study, stored_synthetic, key, "*"):
        _check_match(dicomweb, case)


DATE_RANGES = {
    "20200901-20200930": True,
    "-20200922": True,
    "20200922-": True,
    "20200922-20200922": True,
    "20200923-20201231": False,
    "-20200921": False,
    "20200923-": False,
}
TIME_RANGES = {
    "110000-130000": True,
    "120000-": True,
    "-120000": True,
    "120001-": False,
    "-115959": False,
    "130000-140000": False,
}


def _check_range(dicomweb: Client, study: SampleStudy, key: str, value: str, inside: bool) -> None:
    s = study.study_uid
    stored = str(getattr(study.red.dataset, key))
    response = search(dicomweb, "studies", ("StudyInstanceUID", s), (key, value))
    found = expect.unique_keys(response, STUDY_UID)
    if inside:
        assert found == [s], f"{request_line(response)}: {key} {stored} is in {value}, got {found}"
    else:
        assert s not in found, (
            f"{request_line(response)}: {key} {stored} is outside {value}, got {found}"
        )


@pytest.mark.requirement("QIDO-MATCH-DATE-RANGE")
@pytest.mark.parametrize(
    "value, inside", [pytest.param(v, i, id=f"StudyDate={v}") for v, i in DATE_RANGES.items()]
)
def test_study_date_range(
    dicomweb: Client, stored_study: SampleStudy, value: str, inside: bool
) -> None:
    """The sample study's date is 20200922."""
    _check_range(dicomweb, stored_study, "StudyDate", value, inside)


@pytest.mark.requirement("QIDO-MATCH-TIME-RANGE")
@pytest.mark.parametrize(
    "value, inside", [pytest.param(v, i, id=f"StudyTime={v}") for v, i in TIME_RANGES.items()]
)
def test_study_time_range(
    dicomweb: Client, stored_study: SampleStudy, value: str, inside: bool
) -> None:
    """The sample study's time is 120000."""
    _check_range(dicomweb, stored_study, "StudyTime", value, inside)


@pytest.mark.requirement("QIDO-MATCH-SEQUENCE-TAG-PATH")
@pytest.mark.parametrize("path", ["00400275.00400009", "00400275.00401001"])
def test_sequence_item_matches_by_tag_path(
    dicomweb: Client, stored_synthetic: CatalogStudy, path: str
) -> None:
    keyword = {"00400009": "ScheduledProcedureStepID", "00401001": "RequestedProcedureID"}
    case = _series_cases(stored_synthetic)[keyword[path.split(".")[1]]]
    _check_match(dicomweb, dataclasses.replace(case, key=path))


def _accession_number_case(instance: Instance, value: str, wrong: str) -> Match:
    """The study of ``instance`` (alone with its Accession Number) found by ``value`` in the
    run's patient, and not by ``wrong``."""
    scope = (("PatientID", _pid(instance)),)
    return _study()("AccessionNumber", value, instance.study_uid, wrong=wrong, scope=scope)


@pytest.mark.requirement("QIDO-MATCH-PERCENT-ENCODED")
def test_percent_encoded_value_matches_decoded(
    dicomweb: Client, new_synthetic: NewSynthetic
) -> None:
    """Accession Number 'A^B C_<token>' in a study of its own goes on the wire as
    A%5EB%20C_<token>: neither '^' nor a space is a qp-char (8.3.1). An SH of Table 10.6.1-5,
    so that no Person Name rule (C.2.2.2.1.1) stands between the decoded value and the match;
    the same value with another token must not match. (Percent-encoded unreserved characters
    cannot be sent as such: the HTTP client, like most, normalises them to the characters.)"""
    study = new_synthetic()
    value, wrong = (f"A^B C_{_token(study.study_uid, shift)}" for shift in (0, 1))
    instance = _stored_with(dicomweb, study.multiframe, AccessionNumber=value)
    _check_match(dicomweb, _accession_number_case(instance, value, wrong))


@pytest.mark.requirement("QIDO-MATCH-NON-ASCII")
def test_non_ascii_value_matches(dicomweb: Client, new_synthetic: NewSynthetic) -> None:
    """Accession Number 'Üü_<token>', stored in UTF-8 (ISO_IR 192) in a study of its own, asked
    as %C3%9C%C3%BC_<token>; the same value with another token must not match. No character
    but the non-ASCII ones needs encoding, and the wrong value differs in digits, not in case
    or accent (QIDO-MATCH-CASE-SENSITIVE's)."""
    study = new_synthetic()
    value, wrong = (f"Üü_{_token(study.study_uid, shift)}" for shift in (0, 1))
    instance = _stored_with(dicomweb, study.charset_latin, AccessionNumber=value)
    _check_match(dicomweb, _accession_number_case(instance, value, wrong))


def _patient_name(dicomweb: Client, study_uid: str) -> str:
    """The Patient's Name the server gives the study (it may keep one name per Patient ID)."""
    obj = _only(search(dicomweb, "studies", ("StudyInstanceUID", study_uid)), STUDY_UID, study_uid)
    name = first_value(obj, "00100010")
    alphabetic = name.get("Alphabetic") if isinstance(name, dict) else None
    assert isinstance(alphabetic, str) and alphabetic, (
        f"the study's PatientName (0010,0010) is {name!r}, not a PN object with Alphabetic"
    )
    return alphabetic


@pytest.mark.requirement("QIDO-MATCH-PN-CASE")
def test_person_name_case_handling_is_recorded(
    dicomweb: Client, new_synthetic: NewSynthetic
) -> None:
    """Referring Physician's Name 'Roe' (a study attribute: no name kept per patient) in a
    study of its own, asked as 'Roe', 'Rae' and 'rOE': no value needs percent-encoding, so the
    case handling shows whatever the server's decoding. Ignoring case is the MAY taken (PASS);
    matching it is allowed too (INFO)."""
    study = new_synthetic()
    y = study.study_uid
    _stored_with(dicomweb, study.multiframe, ReferringPhysicianName="Roe")

    def finds(value: str) -> bool:
        key = ("ReferringPhysicianName", value)
        response = search(dicomweb, "studies", ("StudyInstanceUID", y), key)
        # Case is the server's choice (MAY); an answer that is no search answer leaves it
        # unseen: ERROR, never a FAIL of this rule.
        expect.answered(response, 200, 204)
        return y in expect.unique_keys(response, STUDY_UID)

    if not finds("Roe") or finds("Rae"):
        expect.info(
            "ReferringPhysicianName='Roe' is not matched as itself (see "
            "QIDO-MATCH-REFERRING-PHYSICIAN-NAME): case handling is not observable"
        )
    if not finds("rOE"):
        expect.info(
            "ReferringPhysicianName='rOE' does not find the study of 'Roe': Person Name matching "
            "is case-sensitive, which C.2.2.2.1.1 allows as well"
        )
    # Found: Person Name matching ignores case, as the rule allows (PASS).


@pytest.mark.requirement("QIDO-MATCH-CASE-SENSITIVE")
@pytest.mark.parametrize("key", ["PatientID", "StudyID"])
def test_non_person_name_match_is_case_sensitive(
    dicomweb: Client, stored_study: SampleStudy, stored_synthetic: CatalogStudy, key: str
) -> None:
    """The value in another case must not match, on a key the server matches at all: one that
    misses its own value, or finds it by a wrong one in the same case, fails its required-key
    check (QIDO-MATCH-PATIENT-ID, QIDO-MATCH-STUDY-ID) and shows nothing of case."""
    if key == "PatientID":
        target, value = stored_study.study_uid, _pid(stored_study.red)
    else:
        target, value = stored_synthetic.study_uid, "DWC1"

    def finds(asked: str) -> tuple[requests.Response, bool]:
        response = search(dicomweb, "studies", ("StudyInstanceUID", target), (key, asked))
        return response, target in expect.unique_keys(response, STUDY_UID)

    wrong = value + "X"
    if not finds(value)[1] or finds(wrong)[1]:
        expect.info(
            f"{key}={value!r} is not matched as itself, or {wrong!r} finds it too (see "
            f"{STUDY_KEYS[key]}): case handling is not observable"
        )
    other = value.swapcase()
    response, found = finds(other)
    assert not found, (
        f"{request_line(response)}: {key}={other!r} finds the study whose {key} is {value!r}; "
        "single value matching of a non-PN attribute is case-sensitive (PS3.4 C.2.2.2.1)"
    )


def _filters_on_study_description(dicomweb: Client, study_uid: str) -> bool:
    """Whether the server matches on Study Description (it then supports the attribute)."""
    response = search(
        dicomweb, "studies", ("StudyInstanceUID", study_uid), ("StudyDescription", "NOSUCHVALUE")
    )
    return study_uid not in expect.unique_keys(response, STUDY_UID)


def _check_study_description(
    dicomweb: Client, response: requests.Response, study_uid: str, expected: str
) -> None:
    obj = _only(response, STUDY_UID, study_uid)
    if STUDY_DESCRIPTION not in obj:
        assert not _filters_on_study_description(dicomweb, study_uid), (
            f"{request_line(response)}: no StudyDescription (0008,1030) in the result, though the "
            "server supports it (it filters on it)"
        )
        expect.info(
            "the server neither returns nor matches Study Description: it does not support it"
        )
    got = first_value(obj, STUDY_DESCRIPTION)
    assert got == expected, (
        f"{request_line(response)}: StudyDescription is {got!r}, stored {expected!r}"
    )


@pytest.mark.requirement("QIDO-MATCH-KEYS-RETURNED")
def test_matching_key_is_returned(dicomweb: Client, new_synthetic: NewSynthetic) -> None:
    """StudyDescription=Chest, on a study of its own whose description is Chest: an exact value
    with nothing to percent-encode and no wildcard. Study Description is no default attribute;
    a server that supports it (matches on it, or returns it for includefield) returns it."""
    study = new_synthetic()
    y = study.study_uid
    _stored_with(dicomweb, study.multiframe, StudyDescription="Chest")
    response = search(dicomweb, "studies", ("StudyInstanceUID", y), ("StudyDescription", "Chest"))
    if y not in expect.unique_keys(response, STUDY_UID):
        expect.info(
            f"{request_line(response)} does not find the study whose Study Description is 'Chest': "
            "whether a matching key is returned is not observable"
        )
    obj = _only(response, STUDY_UID, y)
    if STUDY_DESCRIPTION not in obj:
        included = search(
            dicomweb, "studies", ("StudyInstanceUID", y), ("includefield", STUDY_DESCRIPTION)
        )
        supported = [
            how
            for how, holds in (
                ("matches on it", _filters_on_study_description(dicomweb, y)),
                ("returns it for includefield", STUDY_DESCRIPTION in _only(included, STUDY_UID, y)),
            )
            if holds
        ]
        assert not supported, (
            f"{request_line(response)}: no StudyDescription (0008,1030) in the result, though the "
            f"server supports it (it {' and '.join(supported)}); a supported matching key is "
            "returned (10.6.3.3.1)"
        )
        expect.info(
            "the server neither returns, matches nor includes Study Description: it does not "
            "support it"
        )
    got = first_value(obj, STUDY_DESCRIPTION)
    assert got == "Chest", f"{request_line(response)}: StudyDescription is {got!r}, stored 'Chest'"


# --- includefield (8.3.4.3) --------------------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        _requirement("00081030", "QIDO-INCLUDEFIELD-TAG", id="includefield=00081030"),
        _requirement(
            "StudyDescription", "QIDO-INCLUDEFIELD-KEYWORD", id="includefield=StudyDescription"
        ),
    ],
)
def test_includefield_adds_the_attribute(
    dicomweb: Client, stored_synthetic: CatalogStudy, field: str
) -> None:
    y = stored_synthetic.study_uid
    expected = str(stored_synthetic.multiframe.dataset.StudyDescription)
    response = search(dicomweb, "studies", ("StudyInstanceUID", y), ("includefield", field))
    _check_study_description(dicomweb, response, y, expected)


@pytest.mark.requirement("QIDO-INCLUDEFIELD-LIST")
@pytest.mark.parametrize("form", ["repeated", "comma-separated"])
def test_includefield_list_adds_every_attribute(
    dicomweb: Client, stored_study: SampleStudy, form: str
) -> None:
    """StudyDescription and PatientAge (024Y): each returned alone is returned when combined."""
    s = stored_study.study_uid
    fields = ["StudyDescription", "PatientAge"]
    alone: set[str] = set()
    for field in fields:
        response = search(dicomweb, "studies", ("StudyInstanceUID", s), ("includefield", field))
        alone |= set(_only(response, STUDY_UID, s))
    params = (
        [("includefield", f) for f in fields]
        if form == "repeated"
        else [("includefield", ",".join(fields))]
    )
    response = search(dicomweb, "studies", ("StudyInstanceUID", s), *params)
    missing = sorted(alone - set(_only(response, STUDY_UID, s)))
    assert not missing, (
        f"{request_line(response)}: {missing} are returned when asked for alone, not in the list"
    )


@pytest.mark.requirement("QIDO-INCLUDEFIELD-ALL")
def test_includefield_all_is_a_superset(dicomweb: Client, stored_synthetic: CatalogStudy) -> None:
    """includefield=all carries the attributes of Table 10.6.3-3 the server returns by default,
    and Study Description (an Optional Key of PS3.4 C.6.2.1.2) if it returns it when named.
    Other attributes a server adds by default (Specific Character Set, say) are not counted."""
    y = stored_synthetic.study_uid
    default = set(_only(search(dicomweb, "studies", ("StudyInstanceUID", y)), STUDY_UID, y))
    asked = set(
        _only(
            search(
                dicomweb, "studies", ("StudyInstanceUID", y), ("includefield", "StudyDescription")
            ),
            STUDY_UID,
            y,
        )
    )
    response = search(dicomweb, "studies", ("StudyInstanceUID", y), ("includefield", "all"))
    wanted = (default | asked) & (STUDY_TABLE | {STUDY_DESCRIPTION})
    missing = sorted(wanted - set(_only(response, STUDY_UID, y)))
    assert not missing, (
        f"{request_line(response)}: lacks {missing}, returned by default or when named; with 'all' "
        "the response shall contain all Study Level Attributes specified as Optional Keys [...] "
        "that are supported by the origin server (10.6.3.3.1), besides Table 10.6.3-3's"
    )


LOWER_LEVEL = {  # id: (level searched, includefield value, tag, keyword)
    "studies?includefield=0020000E": ("studies", "0020000E", "0020000E", "SeriesInstanceUID"),
    "studies?includefield=Modality": ("studies", "Modality", "00080060", "Modality"),
    "studies?includefield=SeriesDescription": (
        "studies",
        "SeriesDescription",
        "0008103E",
        "SeriesDescription",
    ),
    "series?includefield=00080018": ("series", "00080018", "00080018", "SOPInstanceUID"),
    "series?includefield=InstanceNumber": (
        "series",
        "InstanceNumber",
        "00200013",
        "InstanceNumber",
    ),
}


@pytest.mark.requirement("QIDO-INCLUDEFIELD-LOWER-LEVEL-EXCLUDED")
@pytest.mark.parametrize("case", list(LOWER_LEVEL))
def test_includefield_of_a_lower_level_is_not_returned(
    dicomweb: Client, stored_synthetic: CatalogStudy, case: str
) -> None:
    """The synthetic study's series have descriptions, so a server has them to return."""
    level, field, tag, keyword = LOWER_LEVEL[case]
    y = stored_synthetic.study_uid
    path = "studies" if level == "studies" else f"studies/{y}/series"
    params = [("StudyInstanceUID", y)] if level == "studies" else []
    response = search(dicomweb, path, *params, ("includefield", field))
    objects = expect.results(response)
    assert objects, f"{request_line(response)} finds nothing"
    carrying = sum(1 for obj in objects if tag in obj)
    lower = "series" if level == "studies" else "instance"
    assert not carrying, (
        f"{request_line(response)}: {carrying} result(s) carry {keyword} ({tag}), a {lower} "
        f"attribute; in a {level} search it shall not be returned"
    )


# --- returned attributes (Tables 10.6.3-3, -4, -5) --------------------------------------------


@pytest.mark.requirement("QIDO-RETURN-STUDY-ATTRIBUTES")
def test_study_result_has_required_attributes(dicomweb: Client, stored_study: SampleStudy) -> None:
    s, ds = stored_study.study_uid, stored_study.red.dataset
    response = search(dicomweb, "studies", ("StudyInstanceUID", s))
    obj = _only(response, STUDY_UID, s)
    missing = _missing(obj, STUDY_RETURN)
    assert not missing, f"{request_line(response)}: the study result lacks {missing}"
    checks = {
        "StudyDate": (first_value(obj, "00080020"), str(ds.StudyDate)),
        "PatientID": (first_value(obj, "00100020"), str(ds.PatientID)),
        "StudyID": (first_value(obj, "00200010"), str(ds.StudyID)),
    }
    wrong = {k: got for k, (got, want) in checks.items() if got != want}
    assert not wrong, f"{request_line(response)}: values differ from the stored ones: {wrong}"
    time = str(first_value(obj, "00080030"))
    assert time.startswith(str(ds.StudyTime)), f"StudyTime is {time!r}, stored {ds.StudyTime}"
    modalities = values(obj, "00080061")
    assert "OT" in modalities, f"ModalitiesInStudy is {modalities}, the series are OT"


@pytest.mark.requirement("QIDO-RETURN-STUDY-COUNTS")
def test_study_counts_its_series_and_instances(dicomweb: Client, stored_study: SampleStudy) -> None:
    s = stored_study.study_uid
    response = search(dicomweb, "studies", ("StudyInstanceUID", s))
    obj = _only(response, STUDY_UID, s)
    series, instances = first_value(obj, "00201206"), first_value(obj, "00201208")
    assert series is not None and _number(series) == 2, (
        f"{request_line(response)}: NumberOfStudyRelatedSeries is {series!r}, the study has 2 "
        "series"
    )
    assert instances is not None and _number(instances) == 3, (
        f"{request_line(response)}: NumberOfStudyRelatedInstances is {instances!r}, it has 3 "
        "instances"
    )


@pytest.mark.requirement("QIDO-RETURN-RETRIEVE-URL")
@pytest.mark.parametrize("level", ["study", "series", "instance"])
def test_result_has_retrieve_url(dicomweb: Client, stored_study: SampleStudy, level: str) -> None:
    red = stored_study.red
    path, tag, uid, resource = {
        "study": (f"studies/{red.study_uid}", STUDY_UID, red.study_uid, "studies"),
        "series": (
            f"studies/{red.study_uid}/series/{red.series_uid}",
            SERIES_UID,
            red.series_uid,
            f"studies/{red.study_uid}/series",
        ),
        "instance": (
            instance_path(red),
            SOP_UID,
            red.sop_uid,
            f"studies/{red.study_uid}/series/{red.series_uid}/instances",
        ),
    }[level]
    key = {"study": "StudyInstanceUID", "series": "SeriesInstanceUID", "instance": "SOPInstanceUID"}
    response = search(dicomweb, resource, (key[level], uid))
    url = first_value(_only(response, tag, uid), RETRIEVE_URL)
    assert url is not None, (
        f"{request_line(response)}: no RetrieveURL (0008,1190) in the {level} result"
    )
    assert str(url).rstrip("/").endswith(path), (
        f"{request_line(response)}: RetrieveURL {url!r} does not name {path}"
    )


def _series_by_uid(response: requests.Response) -> dict[str, dict[str, Any]]:
    objects = expect.results(response)
    expect.unique_keys(response, SERIES_UID)
    return {str(first_value(o, SERIES_UID)): o for o in objects}


@pytest.mark.requirement("QIDO-RETURN-SERIES-ATTRIBUTES")
def test_series_result_has_required_attributes(dicomweb: Client, stored_study: SampleStudy) -> None:
    response = search(dicomweb, f"studies/{stored_study.study_uid}/series")
    by_uid = _series_by_uid(response)
    for instance in stored_study:
        obj = by_uid.get(instance.series_uid)
        assert obj is not None, f"{request_line(response)} misses series {instance.series_uid}"
        missing = _missing(obj, SERIES_RETURN)
        assert not missing, (
            f"{request_line(response)}: series {instance.series_uid} lacks {missing}"
        )
        ds = instance.dataset
        assert first_value(obj, "00080060") == ds.Modality, f"Modality differs: {obj['00080060']}"
        number = first_value(obj, "00200011")
        assert number is not None and _number(number) == int(ds.SeriesNumber), (
            f"{request_line(response)}: SeriesNumber is {number!r}, stored {ds.SeriesNumber}"
        )


@pytest.mark.requirement("QIDO-RETURN-SERIES-COUNT")
def test_series_counts_its_instances(dicomweb: Client, stored_study: SampleStudy) -> None:
    response = search(dicomweb, f"studies/{stored_study.study_uid}/series")
    by_uid = _series_by_uid(response)
    for uid in {i.series_uid for i in stored_study}:
        expected = len(stored_study.in_series(uid))
        count = first_value(by_uid.get(uid, {}), "00201209")
        assert count is not None and _number(count) == expected, (
            f"{request_line(response)}: NumberOfSeriesRelatedInstances of {uid} is {count!r}, "
            f"the series has {expected}"
        )


@pytest.mark.requirement("QIDO-RETURN-SERIES-IF-KNOWN")
@pytest.mark.parametrize("attribute", ["SeriesDescription", "RequestAttributesSequence"])
def test_series_result_has_known_conditional_attributes(
    dicomweb: Client, stored_synthetic: CatalogStudy, attribute: str
) -> None:
    response = search(dicomweb, f"studies/{stored_synthetic.study_uid}/series")
    by_uid = _series_by_uid(response)
    if attribute == "SeriesDescription":
        for instance in stored_synthetic:
            got = first_value(by_uid.get(instance.series_uid, {}), "0008103E")
            assert got == instance.dataset.SeriesDescription, (
                f"{request_line(response)}: SeriesDescription of series {instance.series_uid} is "
                f"{got!r}, stored {instance.dataset.SeriesDescription!r}"
            )
        return
    request = stored_synthetic.sequence
    items = values(by_uid.get(request.series_uid, {}), REQUEST_ATTRIBUTES)
    assert items, (
        f"{request_line(response)}: series {request.series_uid} has no RequestAttributesSequence "
        "(0040,0275), though its instance has one"
    )
    pairs = [
        (first_value(i, SCHEDULED_STEP_ID), first_value(i, REQUESTED_PROCEDURE_ID)) for i in items
    ]
    wanted = (stored_synthetic.scheduled_procedure_step_id, stored_synthetic.requested_procedure_id)
    assert wanted in pairs, (
        f"{request_line(response)}: the sequence items are {pairs}, stored {wanted}"
    )


@pytest.mark.requirement("QIDO-RETURN-INSTANCE-ATTRIBUTES")
def test_instance_result_has_required_attributes(
    dicomweb: Client, stored_study: SampleStudy
) -> None:
    red = stored_study.red
    response = search(dicomweb, f"studies/{red.study_uid}/series/{red.series_uid}/instances")
    objects = expect.results(response)
    expect.unique_keys(response, SOP_UID)
    by_uid = {str(first_value(o, SOP_UID)): o for o in objects}
    for instance in stored_study.in_series(red.series_uid):
        obj = by_uid.get(instance.sop_uid)
        assert obj is not None, f"{request_line(response)} misses instance {instance.sop_uid}"
        missing = _missing(obj, INSTANCE_RETURN)
        assert not missing, f"{request_line(response)}: instance {instance.sop_uid} lacks {missing}"
        ds = instance.dataset
        assert first_value(obj, "00080016") == ds.SOPClassUID, "SOPClassUID differs"
        number = first_value(obj, "00200013")
        assert number is not None and _number(number) == int(ds.InstanceNumber), (
            f"{request_line(response)}: InstanceNumber of {instance.sop_uid} is {number!r}, "
            f"stored {ds.InstanceNumber}"
        )


@pytest.mark.requirement("QIDO-RETURN-INSTANCE-IF-KNOWN")
def test_instance_result_has_image_attributes(
    dicomweb: Client, stored_synthetic: CatalogStudy
) -> None:
    """The multi-frame image: 16 rows, 16 columns, 8 bits allocated, 4 frames."""
    image = stored_synthetic.multiframe
    response = search(dicomweb, f"studies/{image.study_uid}/series/{image.series_uid}/instances")
    obj = _only(response, SOP_UID, image.sop_uid)
    expected = {"00280010": 16, "00280011": 16, "00280100": 8, "00280008": 4}
    got = {tag: first_value(obj, tag) for tag in expected}
    wrong = {t: v for t, v in got.items() if v is None or _number(v) != expected[t]}
    assert not wrong, f"{request_line(response)}: expected {expected}, got {got}"


RELATIONAL_RETURN = {
    "series": ("QIDO-RETURN-ALL-SERIES-STUDY-ATTRIBUTES", {**STUDY_RETURN}),
    "instances": ("QIDO-RETURN-ALL-INSTANCES-UPPER-ATTRIBUTES", {**STUDY_RETURN, **SERIES_RETURN}),
    "studies/{study}/instances": (
        "QIDO-RETURN-STUDY-INSTANCES-SERIES-ATTRIBUTES",
        {**SERIES_RETURN},
    ),
}


@pytest.mark.parametrize(
    "resource", [_requirement(r, req) for r, (req, _) in RELATIONAL_RETURN.items()]
)
def test_relational_result_has_upper_level_attributes(
    dicomweb: Client, stored_study: SampleStudy, resource: str
) -> None:
    red = stored_study.red
    if resource == "series":
        response = search(dicomweb, "series", ("SeriesInstanceUID", red.series_uid))
        tag, uid = SERIES_UID, red.series_uid
    else:
        path = resource.format(study=red.study_uid)
        response = search(dicomweb, path, ("SOPInstanceUID", red.sop_uid))
        tag, uid = SOP_UID, red.sop_uid
    _relational(response)
    missing = _missing(_only(response, tag, uid), RELATIONAL_RETURN[resource][1])
    assert not missing, f"{request_line(response)}: the result lacks {missing}"


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
    warning = _warning(response)
    remaining = re.search(r"There are (\d+) additional results", warning, re.IGNORECASE)
    if remaining:
        expect.chose("remaining-text")
        assert remaining.group(1) == "3", (
            f"{request_line(response)}: the Warning {warning!r} counts {remaining.group(1)} "
            "additional results; 3 of the 5 matches remain"
        )
        return
    if _report_url(response, dicomweb.base_url):
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
    scope = ("PatientID", _pid(study.multiframe))

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
    readings = [_not_supported_warning(p.fuzzy, "fuzzymatching", dicomweb.base_url) for p in probes]
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
        if _not_supported_warning(probe.fuzzy, "fuzzymatching", dicomweb.base_url):
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
        ("PatientID", _pid(stored_study.red)),
        ("AccessionNumber", '""'),
        ("emptyvaluematching", "true"),
    )
    found = expect.unique_keys(response, STUDY_UID)
    known_value = stored_synthetic.accession_number
    reading = _not_supported_warning(response, "emptyvaluematching", dicomweb.base_url)
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
        f"with an empty Accession Number {_is(empty in found)} found, the one with {known_value} "
        f"{_is(known in found)}"
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
