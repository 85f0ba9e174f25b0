"""QIDO-RS, the Search transaction (conformance/requirements/qido.toml): resources and matching.
The attributes a search returns are test_qido_attributes.py's; paging, search parameters and
media types test_qido_paging.py's. Both take their shared helpers from here.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from conformance import expect, synthetic
from conformance.client import Client
from conformance.dicomweb import (
    SERIES_UID,
    SOP_UID,
    STUDY_UID,
    first_value,
    search,
    stow,
    uids,
)
from conformance.expect import request_line
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


def relational_answer(response: requests.Response) -> requests.Response:
    """A relational resource is optional for a DIMSE proxy: absent is NOT-IMPLEMENTED."""
    if response.status_code in expect.ROUTE_ABSENT:
        expect.not_implemented(
            f"no relational search: {request_line(response)} answered {response.status_code}"
        )
    return response


def patient_id_of(instance: Instance) -> str:
    return str(instance.dataset.PatientID)


def as_number(value: Any) -> int:
    """An IS or US value, sent as a JSON number or string."""
    return int(str(value).strip())


WARNING_299 = re.compile(r"(?:^|,)\s*299\s")
URL = re.compile(r"https?://[^\s\"'<>,]+")


def warning_of(response: requests.Response) -> str:
    """The Warning header when it carries a 299 warning-value ("" otherwise)."""
    warning = response.headers.get("Warning", "")
    return warning if WARNING_299.search(warning) else ""


def report_url_of(response: requests.Response, base_url: str) -> str | None:
    """The URL a 299 Warning carries that is not the service's base URI (the <service> of the
    8.3.4 texts): Table 10.6.3-1's other form, "a URL referencing a Search Status report"."""
    for found in URL.findall(warning_of(response)):
        url = str(found).rstrip(".:;")
        if url.rstrip("/") != base_url.rstrip("/"):
            return url
    return None


def not_supported_warning(response: requests.Response, parameter: str, base_url: str) -> str:
    """The reading of a 299 Warning saying ``parameter`` is not supported (8.3.4.2, 8.3.4.5):
    "not-supported-text" for the section's text, "status-report-url" for a Search Status report
    URL (Table 10.6.3-1); "" when there is neither."""
    if f"{parameter} parameter is not supported" in warning_of(response).lower():
        return "not-supported-text"
    return "status-report-url" if report_url_of(response, base_url) else ""


def is_or_not(found: bool) -> str:
    return "is" if found else "is not"


def missing_tags(obj: dict[str, Any], tags: dict[str, str]) -> list[str]:
    return [f"{keyword} ({tag})" for tag, keyword in tags.items() if tag not in obj]


def only_result(response: requests.Response, tag: str, uid: str) -> dict[str, Any]:
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
    on_s = (("PatientID", patient_id_of(study.red)),)
    on_y = (("PatientID", patient_id_of(syn.multiframe)),)
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
        "PatientID": m(
            "PatientID", patient_id_of(study.red), s, wrong=patient_id_of(study.red) + "X"
        ),
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


def requirement_param(key: str, requirement: str, id: str | None = None) -> Any:
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
    "resource", [requirement_param(r, requirement) for r, (requirement, _) in RESOURCES.items()]
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
        params = [("PatientID", patient_id_of(red))]
    response = search(dicomweb, path, *params)
    if RESOURCES[resource][1]:
        relational_answer(response)
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
        response = search(dicomweb, "studies", ("PatientID", patient_id_of(stored_study.red)))
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


@pytest.mark.parametrize("key", [requirement_param(k, r) for k, r in STUDY_KEYS.items()])
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


@pytest.mark.parametrize("key", [requirement_param(k, r) for k, r in SERIES_KEYS.items()])
def test_series_match_required_key(
    dicomweb: Client, stored_synthetic: CatalogStudy, key: str
) -> None:
    _check_match(dicomweb, _series_cases(stored_synthetic)[key])


@pytest.mark.parametrize("key", [requirement_param(k, r) for k, r in INSTANCE_KEYS.items()])
def test_instances_match_required_key(
    dicomweb: Client, stored_synthetic: CatalogStudy, key: str
) -> None:
    _check_match(dicomweb, _instance_cases(stored_synthetic)[key])


PPS = {
    "PerformedProcedureStepStartDate": ("QIDO-MATCH-PPS-START-DATE", "20210102", "20210305"),
    "PerformedProcedureStepStartTime": ("QIDO-MATCH-PPS-START-TIME", "101010", "151515"),
}


@pytest.mark.parametrize("key", [requirement_param(k, r) for k, (r, _, _) in PPS.items()])
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
        m(key, value, study.study_uid, scope=(("PatientID", patient_id_of(study.red)),)),
        m(key, value, syn.study_uid, scope=(("PatientID", patient_id_of(syn.multiframe)),)),
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
    s, y, pid = study.study_uid, syn.study_uid, patient_id_of(study.red)
    on_y = (("PatientID", patient_id_of(syn.multiframe)),)
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
    scope = (("PatientID", patient_id_of(instance)),)
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
    obj = only_result(
        search(dicomweb, "studies", ("StudyInstanceUID", study_uid)), STUDY_UID, study_uid
    )
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
        target, value = stored_study.study_uid, patient_id_of(stored_study.red)
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


def check_study_description(
    dicomweb: Client, response: requests.Response, study_uid: str, expected: str
) -> None:
    obj = only_result(response, STUDY_UID, study_uid)
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
    obj = only_result(response, STUDY_UID, y)
    if STUDY_DESCRIPTION not in obj:
        included = search(
            dicomweb, "studies", ("StudyInstanceUID", y), ("includefield", STUDY_DESCRIPTION)
        )
        supported = [
            how
            for how, holds in (
                ("matches on it", _filters_on_study_description(dicomweb, y)),
                (
                    "returns it for includefield",
                    STUDY_DESCRIPTION in only_result(included, STUDY_UID, y),
                ),
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
