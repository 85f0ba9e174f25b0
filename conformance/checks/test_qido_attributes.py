"""QIDO-RS, the attributes a search returns (conformance/requirements/qido.toml): includefield
(8.3.4.3) and the attributes each level must return (Tables 10.6.3-3 to -5), with the counts and
the Retrieve URL.

The checks that ask only what any study holds judge "the data" (fixture study_data): the run's
stored article study, or in a read-only run a sample of the first study it reads, whose values
are what the server's metadata says (a search's answer is then held to the metadata's). Counts
are judged only where the sample is the whole study or series; the checks that need the
synthetic study's special content need the run's own.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
import requests
from pydicom.dataset import Dataset

from conformance import expect
from conformance.checks.test_qido import (
    INSTANCE_RETURN,
    REQUEST_ATTRIBUTES,
    REQUESTED_PROCEDURE_ID,
    RETRIEVE_URL,
    SCHEDULED_STEP_ID,
    SERIES_RETURN,
    STUDY_DESCRIPTION,
    STUDY_RETURN,
    STUDY_TABLE,
    as_number,
    check_study_description,
    missing_tags,
    only_result,
    patient_id_of,
    relational_answer,
    requirement_param,
)
from conformance.client import Client
from conformance.dicomweb import (
    SERIES_UID,
    SOP_UID,
    STUDY_UID,
    first_value,
    search,
    values,
)
from conformance.expect import request_line
from conformance.heldstudy import DataInstance, StudyData, first_instance, is_whole
from conformance.samples import SampleStudy
from conformance.synthetic import CatalogStudy

# --- includefield (8.3.4.3) --------------------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        requirement_param("00081030", "QIDO-INCLUDEFIELD-TAG", id="includefield=00081030"),
        requirement_param(
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
    check_study_description(dicomweb, response, y, expected)


@pytest.mark.requirement("QIDO-INCLUDEFIELD-LIST")
@pytest.mark.parametrize("form", ["repeated", "comma-separated"])
def test_includefield_list_adds_every_attribute(
    dicomweb: Client, study_data: StudyData, form: str
) -> None:
    """StudyDescription and PatientAge (024Y): each returned alone is returned when combined."""
    s = study_data.study_uid
    fields = ["StudyDescription", "PatientAge"]
    alone: set[str] = set()
    for field in fields:
        response = search(dicomweb, "studies", ("StudyInstanceUID", s), ("includefield", field))
        alone |= set(only_result(response, STUDY_UID, s))
    params = (
        [("includefield", f) for f in fields]
        if form == "repeated"
        else [("includefield", ",".join(fields))]
    )
    response = search(dicomweb, "studies", ("StudyInstanceUID", s), *params)
    missing = sorted(alone - set(only_result(response, STUDY_UID, s)))
    assert not missing, (
        f"{request_line(response)}: {missing} are returned when asked for alone, not in the list"
    )


@pytest.mark.requirement("QIDO-INCLUDEFIELD-ALL")
def test_includefield_all_is_a_superset(dicomweb: Client, stored_synthetic: CatalogStudy) -> None:
    """includefield=all carries the attributes of Table 10.6.3-3 the server returns by default,
    and Study Description (an Optional Key of PS3.4 C.6.2.1.2) if it returns it when named.
    Other attributes a server adds by default (Specific Character Set, say) are not counted."""
    y = stored_synthetic.study_uid
    default = set(only_result(search(dicomweb, "studies", ("StudyInstanceUID", y)), STUDY_UID, y))
    asked = set(
        only_result(
            search(
                dicomweb, "studies", ("StudyInstanceUID", y), ("includefield", "StudyDescription")
            ),
            STUDY_UID,
            y,
        )
    )
    response = search(dicomweb, "studies", ("StudyInstanceUID", y), ("includefield", "all"))
    wanted = (default | asked) & (STUDY_TABLE | {STUDY_DESCRIPTION})
    missing = sorted(wanted - set(only_result(response, STUDY_UID, y)))
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
def test_study_result_has_required_attributes(dicomweb: Client, study_data: StudyData) -> None:
    s, ds = study_data.study_uid, first_instance(study_data).dataset
    response = search(dicomweb, "studies", ("StudyInstanceUID", s))
    obj = only_result(response, STUDY_UID, s)
    missing = missing_tags(obj, STUDY_RETURN)
    compared = {  # keyword -> tag; stored empty (Type 2), an R key comes without a Value
        "StudyDate": "00080020",
        "PatientID": "00100020",
        "StudyID": "00200010",
        "PatientBirthDate": "00100030",
        "PatientSex": "00100040",
    }
    # Every value the result carries of these, whatever else it lacks: a result missing one
    # attribute must not hide another's wrong value. (Only what the data holds: a held study's
    # metadata may leave one out.)
    wrong = {
        keyword: got
        for keyword, tag in compared.items()
        if keyword in ds and (got := first_value(obj, tag) or None) != text_of(ds, keyword)
    }
    assert not missing and not wrong, f"{request_line(response)}: " + "; ".join(
        ([f"the study result lacks {missing}"] if missing else [])
        + ([f"values differ from the stored ones: {wrong}"] if wrong else [])
    )
    time = str(first_value(obj, "00080030"))
    study_time = text_of(ds, "StudyTime") or ""
    assert time.startswith(study_time), f"StudyTime is {time!r}, stored {study_time}"
    modalities = values(obj, "00080061")
    series_modalities = sorted({m for i in study_data if (m := text_of(i.dataset, "Modality"))})
    lacking = [m for m in series_modalities if m not in modalities]
    assert not lacking, (
        f"ModalitiesInStudy is {modalities}, the series are {', '.join(series_modalities)}"
    )


def text_of(ds: Dataset, keyword: str) -> str | None:
    """An attribute's value as text, None if empty or absent (a held study's metadata may
    leave out a Type 2 attribute its search returns empty)."""
    return str(ds.get(keyword, "") or "") or None


def run_studies(dicomweb: Client, stored_study: SampleStudy) -> requests.Response:
    """A search of the run's Patient ID: an answer of several studies, among them the article's
    and the synthetic one (two studies of the run's patient), and the run's other checks'."""
    return search(dicomweb, "studies", ("PatientID", patient_id_of(stored_study.red)))


def patient_studies(dicomweb: Client, instance: DataInstance) -> requests.Response:
    """A search of the Patient ID of an instance of the data: in a writing run the run's
    (run_studies' search), in a read-only run the held study's patient's."""
    return search(dicomweb, "studies", ("PatientID", str(instance.dataset.PatientID)))


def by_unique_key(response: requests.Response, tag: str) -> dict[str, dict[str, Any]]:
    """The results of a search by their unique key (``tag``), each once (10.6.3.3)."""
    objects = expect.results(response)
    expect.unique_keys(response, tag)
    return {str(first_value(o, tag)): o for o in objects}


def among_results(
    response: requests.Response, found: dict[str, dict[str, Any]], stored: list[str]
) -> None:
    """The run's stored entities are among the results: which ones a search finds is the
    matching checks' business, so without them this check cannot judge its rule."""
    missing = [uid for uid in stored if uid not in found]
    expect.precondition(not missing, f"{request_line(response)} does not find {missing}")


@pytest.mark.requirement("QIDO-RETURN-STUDY-COUNTS")
def test_study_counts_its_series_and_instances(
    dicomweb: Client, stored_study: SampleStudy, stored_synthetic: CatalogStudy
) -> None:
    """Two studies in one answer, each held to its own counts: the article's (2 series, 3
    instances) and the synthetic one, so that one study's counts cannot stand for another's.
    The run's other studies in the answer are not judged: what they hold is not this check's to
    know."""
    response = run_studies(dicomweb, stored_study)
    found = by_unique_key(response, STUDY_UID)
    studies: list[SampleStudy | CatalogStudy] = [stored_study, stored_synthetic]
    among_results(response, found, [study.study_uid for study in studies])
    wrong = []
    for study in studies:
        obj = found[study.study_uid]
        counts = {
            "NumberOfStudyRelatedSeries": ("00201206", len(study.series_uids), "series"),
            "NumberOfStudyRelatedInstances": ("00201208", len(study), "instances"),
        }
        for keyword, (tag, wanted, what) in counts.items():
            got = first_value(obj, tag)
            if got is None or as_number(got) != wanted:
                wrong.append(f"{keyword} of {study.study_uid} is {got!r}, it has {wanted} {what}")
    assert not wrong, f"{request_line(response)}: {'; '.join(wrong)}"


def names_resource(url: Any, path: str) -> bool:
    """Whether a Retrieve URL names the resource ``path`` (studies/{study}[/series/...]): its
    path ends with it, whatever the base it is under (percent-decoded, in case a key holds a
    character a URL must encode)."""
    return f"/{unquote(str(url)).rstrip('/')}".endswith(f"/{path}")


@pytest.mark.requirement("QIDO-RETURN-RETRIEVE-URL")
@pytest.mark.parametrize("level", ["study", "series", "instance"])
def test_result_has_retrieve_url(
    dicomweb: Client, study_data: StudyData, request: pytest.FixtureRequest, level: str
) -> None:
    """Searches answering several results (the run's studies, the article study's two series,
    the two instances of its red series): each result's Retrieve URL names that result's own
    resource, made of its own unique key, not another result's. The article's and synthetic
    studies' results must carry one (their instances are retrievable); another result (the
    run's other checks' studies) is held to the URL it carries. In a read-only run: the held
    study's patient's studies, its sampled series and the sampled instances of one."""
    red = first_instance(study_data)
    if level == "study":
        resource, tag = "studies", STUDY_UID
        stored = [red.study_uid]
        if isinstance(study_data, SampleStudy):  # stored before the search that must find it
            stored.append(request.getfixturevalue("stored_synthetic").study_uid)
        response = patient_studies(dicomweb, red)
    elif level == "series":
        resource, tag = f"studies/{red.study_uid}/series", SERIES_UID
        response = search(dicomweb, resource)
        stored = study_data.series_uids
    else:
        resource, tag = f"studies/{red.study_uid}/series/{red.series_uid}/instances", SOP_UID
        response = search(dicomweb, resource)
        stored = [i.sop_uid for i in study_data.in_series(red.series_uid)]
    found = by_unique_key(response, tag)
    among_results(response, found, stored)
    absent = [uid for uid in stored if first_value(found[uid], RETRIEVE_URL) is None]
    assert not absent, (
        f"{request_line(response)}: no RetrieveURL (0008,1190) in the {level} result of {absent}"
    )
    wrong = [
        f"{uid}: {url!r}"
        for uid, obj in found.items()
        if (url := first_value(obj, RETRIEVE_URL)) is not None
        and not names_resource(url, f"{resource}/{uid}")
    ]
    assert not wrong, (
        f"{request_line(response)}: {len(wrong)} of {len(found)} {level} results carry a "
        f"RetrieveURL that does not name their own resource ({resource}/{{uid}}): "
        + "; ".join(wrong[:3])
    )


@pytest.mark.requirement("QIDO-RETURN-SERIES-ATTRIBUTES")
def test_series_result_has_required_attributes(dicomweb: Client, study_data: StudyData) -> None:
    response = search(dicomweb, f"studies/{study_data.study_uid}/series")
    by_uid = by_unique_key(response, SERIES_UID)
    for instance in study_data:
        obj = by_uid.get(instance.series_uid)
        assert obj is not None, f"{request_line(response)} misses series {instance.series_uid}"
        missing = missing_tags(obj, SERIES_RETURN)
        assert not missing, (
            f"{request_line(response)}: series {instance.series_uid} lacks {missing}"
        )
        ds = instance.dataset
        assert first_value(obj, "00080060") == ds.Modality, f"Modality differs: {obj['00080060']}"
        number = first_value(obj, "00200011")
        if text_of(ds, "SeriesNumber") is None:
            continue  # the held study's metadata gives none (Type 2): nothing to compare
        assert number is not None and as_number(number) == int(ds.SeriesNumber), (
            f"{request_line(response)}: SeriesNumber is {number!r}, stored {ds.SeriesNumber}"
        )


@pytest.mark.requirement("QIDO-RETURN-SERIES-COUNT")
def test_series_counts_its_instances(dicomweb: Client, study_data: StudyData) -> None:
    """A held study's series are counted only where the sample holds all their instances: a
    partial sample cannot say how many a series has."""
    response = search(dicomweb, f"studies/{study_data.study_uid}/series")
    by_uid = by_unique_key(response, SERIES_UID)
    series = {i.series_uid for i in study_data}
    for uid in series:
        if not is_whole(study_data, uid):
            continue  # sampled: reported below
        expected = len(study_data.in_series(uid))
        count = first_value(by_uid.get(uid, {}), "00201209")
        assert count is not None and as_number(count) == expected, (
            f"{request_line(response)}: NumberOfSeriesRelatedInstances of {uid} is {count!r}, "
            f"the series has {expected}"
        )
    sampled = sorted(s for s in series if not is_whole(study_data, s))
    if sampled:
        expect.info(
            f"{len(series) - len(sampled)} series counted; {len(sampled)} sampled, not "
            f"counted (more instances than the sample holds): {', '.join(sampled)}"
        )


@pytest.mark.requirement("QIDO-RETURN-SERIES-IF-KNOWN")
@pytest.mark.parametrize("attribute", ["SeriesDescription", "RequestAttributesSequence"])
def test_series_result_has_known_conditional_attributes(
    dicomweb: Client, stored_synthetic: CatalogStudy, attribute: str
) -> None:
    response = search(dicomweb, f"studies/{stored_synthetic.study_uid}/series")
    by_uid = by_unique_key(response, SERIES_UID)
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
def test_instance_result_has_required_attributes(dicomweb: Client, study_data: StudyData) -> None:
    red = first_instance(study_data)
    response = search(dicomweb, f"studies/{red.study_uid}/series/{red.series_uid}/instances")
    by_uid = by_unique_key(response, SOP_UID)
    for instance in study_data.in_series(red.series_uid):
        obj = by_uid.get(instance.sop_uid)
        assert obj is not None, f"{request_line(response)} misses instance {instance.sop_uid}"
        missing = missing_tags(obj, INSTANCE_RETURN)
        assert not missing, f"{request_line(response)}: instance {instance.sop_uid} lacks {missing}"
        ds = instance.dataset
        assert first_value(obj, "00080016") == ds.SOPClassUID, "SOPClassUID differs"
        number = first_value(obj, "00200013")
        if text_of(ds, "InstanceNumber") is None:
            continue  # the held study's metadata gives none (Type 2): nothing to compare
        assert number is not None and as_number(number) == int(ds.InstanceNumber), (
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
    obj = only_result(response, SOP_UID, image.sop_uid)
    expected = {"00280010": 16, "00280011": 16, "00280100": 8, "00280008": 4}
    got = {tag: first_value(obj, tag) for tag in expected}
    wrong = {t: v for t, v in got.items() if v is None or as_number(v) != expected[t]}
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
    "resource", [requirement_param(r, req) for r, (req, _) in RELATIONAL_RETURN.items()]
)
def test_relational_result_has_upper_level_attributes(
    dicomweb: Client, study_data: StudyData, resource: str
) -> None:
    red = first_instance(study_data)
    if resource == "series":
        response = search(dicomweb, "series", ("SeriesInstanceUID", red.series_uid))
        tag, uid = SERIES_UID, red.series_uid
    else:
        path = resource.format(study=red.study_uid)
        response = search(dicomweb, path, ("SOPInstanceUID", red.sop_uid))
        tag, uid = SOP_UID, red.sop_uid
    relational_answer(response)
    missing = missing_tags(only_result(response, tag, uid), RELATIONAL_RETURN[resource][1])
    assert not missing, f"{request_line(response)}: the result lacks {missing}"
