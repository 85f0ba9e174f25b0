"""QIDO-RS on "the data" (fixture study_data), judged by the reference model of search
(conformance/model.py): searches whose values come from the data itself, so that they judge the
run's stored study in a writing run and a study the server holds in a read-only run.

The values are taken from the data, attribute by attribute (the required matching keys of
Table 10.6.1-5 at each level): an exact value (the rarest among the entities searched, so that
the others must not match: a modality of a multi-modality study), a wildcard prefix, a UID list
of two, a date or time range around the study's own. The model says, from the metadata, which
entities must match and which must not (PS3.4 C.2.2.2).

A study's series and instances (studies/{study}/series, studies/{study}/instances,
studies/{study}/series/{series}/instances) are known whole where the sample is the whole study
or series (``heldstudy.is_whole``): then every sampled match must be answered and nothing else.
Where the data is a sample, the sampled entities that match must be answered and those that do
not must not be; any other entity may be (the model cannot tell). At the study level
(studies?...) the study is found by queries built from its own values, with StudyInstanceUID
keeping the answer to it; a query the study must not match must leave it out.

Every query also names its key in includefield: a key named for return is still matched
(DICOMcloud#1 ignored it). A key the data holds no value of leaves its case unjudged
(DISABLED: the article's study has no Accession Number, so those cases are unjudged in a
writing run too).
Requests: one to four per case, none repeated: about 45 searches in all (a read-only run of
this module alone read 55 requests, the sample's reads included).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

import pytest

from conformance import expect, model
from conformance.checks.test_qido import (
    STUDY_KEYS,
    relational_answer,
    requirement_param,
)
from conformance.client import Client
from conformance.dicomweb import SERIES_UID, SOP_UID, STUDY_UID, first_value, search
from conformance.expect import request_line
from conformance.heldstudy import StudyData, is_whole
from conformance.verdicts import disabled

Pairs = list[tuple[str, str]]
STUDY_KEYWORDS = [k for k in STUDY_KEYS if k != "ModalitiesInStudy"]
SERIES_KEYWORDS = ["Modality", "SeriesInstanceUID", "SeriesNumber"]
INSTANCE_KEYWORDS = ["SOPClassUID", "SOPInstanceUID", "InstanceNumber", *SERIES_KEYWORDS]
MODALITIES_IN_STUDY = model.tag_of("ModalitiesInStudy")
# Modalities a "must not" query of Modalities in Study asks for, the first the data lacks.
OTHER_MODALITIES = ("MR", "CT", "US", "SR", "OT", "XA")

# --- the entities a search ranges over, as the data knows them --------------------------------


@dataclass(frozen=True)
class Scope:
    """What a search resource ranges over: its entities by unique key, as the data holds
    them, and whether those are all of them."""

    path: str
    tag: str  # the unique key of its results
    entities: dict[str, model.Entity]
    whole: bool


def _entities(data: StudyData, keywords: Sequence[str]) -> dict[str, model.Entity]:
    return {i.sop_uid: model.entity_of(i.dataset, keywords) for i in data}


def _series_entities(data: StudyData) -> dict[str, model.Entity]:
    """Each series as the attributes its sampled instances agree on."""
    tags = [model.tag_of(k) for k in SERIES_KEYWORDS]
    return {
        uid: model.common(
            [model.entity_of(i.dataset, SERIES_KEYWORDS) for i in data.in_series(uid)], tags
        )
        for uid in data.series_uids
    }


def _busiest_series(data: StudyData) -> str:
    """The series whose instances the data knows best: whole if one is, the most sampled."""
    return max(data.series_uids, key=lambda s: (is_whole(data, s), len(data.in_series(s))))


def scope_of(data: StudyData, name: str) -> Scope:
    s = data.study_uid
    if name == "series":
        return Scope(f"studies/{s}/series", SERIES_UID, _series_entities(data), is_whole(data))
    if name == "study-instances":
        entities = _entities(data, INSTANCE_KEYWORDS)
        return Scope(f"studies/{s}/instances", SOP_UID, entities, is_whole(data))
    series = _busiest_series(data)
    entities = {
        uid: e for uid, e in _entities(data, INSTANCE_KEYWORDS).items()
        if uid in {i.sop_uid for i in data.in_series(series)}
    }  # fmt: skip
    path = f"studies/{s}/series/{series}/instances"
    return Scope(path, SOP_UID, entities, is_whole(data, series))


def study_entity(data: StudyData) -> model.Entity:
    """The study as the data knows it: the study attributes its instances agree on, and the
    modalities of its series (Modalities in Study, C.6.2.1.2) as far as they are sampled."""
    tags = [model.tag_of(k) for k in STUDY_KEYWORDS]
    entity = model.common([model.entity_of(i.dataset, STUDY_KEYWORDS) for i in data], tags)
    modalities = sorted({str(i.dataset.get("Modality", "") or "") for i in data} - {""})
    if modalities:
        entity[MODALITIES_IN_STUDY] = {"vr": "CS", "Value": modalities}
    return entity


def lacking(what: str) -> NoReturn:
    """The data cannot answer this case: unjudged (DISABLED, as test_wado.py's held data
    lacking a feature), never a FAIL nor an INFO that would stand for its requirement."""
    disabled(f"the data lacks {what}: not judged on it")


# --- values from the data ---------------------------------------------------------------------


def _values(entities: dict[str, model.Entity], keyword: str) -> list[str]:
    """The first value of ``keyword`` of each entity that has one, in the data's order."""
    tag = model.tag_of(keyword)
    return [v[0] for e in entities.values() if (v := model.values_of(e, tag)) and v[0]]


def rarest(entities: dict[str, model.Entity], keyword: str) -> str | None:
    """The value fewest entities hold (the first such in the data's order): asking for it
    leaves the most entities that must not match."""
    found = _values(entities, keyword)
    return min(found, key=found.count) if found else None


def _prefix(value: str, mark: str) -> str:
    """A wildcard query the value matches: its first half and '*', or all but its last
    character and '?'."""
    return value[: max(1, len(value) // 2)] + "*" if mark == "*" else value[:-1] + "?"


def _scoped_query(scope: Scope, case: str) -> Pairs | None:
    """The query of a scoped case, from the scope's own values (None: the data has none)."""
    keyword, _, form = case.partition("=")
    if form == "list":
        uids = list(scope.entities)[:2]
        return [(keyword, ",".join(uids))] if len(uids) == 2 else None
    value = rarest(scope.entities, keyword)
    if value is None:
        return None
    return [(keyword, _prefix(value, form) if form in ("*", "?") else value)]


SCOPED = {  # case id -> (scope, the case's key and form, requirement)
    "series?Modality": ("series", "Modality", "QIDO-MATCH-MODALITY"),
    "series?Modality=prefix*": ("series", "Modality=*", "QIDO-MATCH-WILDCARD-ANY"),
    "series?Modality=prefix?": ("series", "Modality=?", "QIDO-MATCH-WILDCARD-ONE"),
    "series?SeriesNumber": ("series", "SeriesNumber", "QIDO-MATCH-SERIES-NUMBER"),
    "series?SeriesInstanceUID=uid,uid": ("series", "SeriesInstanceUID=list", "QIDO-MATCH-UID-LIST"),
    "series-instances?InstanceNumber": (
        "series-instances",
        "InstanceNumber",
        "QIDO-MATCH-INSTANCE-NUMBER",
    ),
    "series-instances?SOPInstanceUID=uid,uid": (
        "series-instances",
        "SOPInstanceUID=list",
        "QIDO-MATCH-UID-LIST",
    ),
    "study-instances?SOPClassUID": ("study-instances", "SOPClassUID", "QIDO-MATCH-SOP-CLASS-UID"),
    "study-instances?Modality": ("study-instances", "Modality", "QIDO-MATCH-MODALITY"),
}


def _found(response: Any, tag: str) -> list[str]:
    return expect.unique_keys(response, tag)


def _judge(response: Any, answer: model.Answer, found: list[str], scope: str, whole: bool) -> None:
    problem = answer.problem(found)
    sampled = "" if whole else " (of the entities the data samples; others are not judged)"
    assert problem is None, (
        f"{request_line(response)}: the search {problem}{sampled}; by the {scope}'s metadata, "
        f"{sorted(answer.must)} match (PS3.4 C.2.2.2)"
    )


@pytest.mark.parametrize(
    "case", [requirement_param(c, requirement) for c, (_, _, requirement) in SCOPED.items()]
)
def test_scoped_search_finds_what_the_model_finds(
    dicomweb: Client, study_data: StudyData, case: str
) -> None:
    """A study's series or instances searched by a value of their own: the sampled entities
    the model matches are answered, the sampled ones it does not match are not."""
    name, key, _ = SCOPED[case]
    scope = scope_of(study_data, name)
    pairs = _scoped_query(scope, key)
    if pairs is None:
        lacking(f"no {key.partition('=')[0]} to search {scope.path} for (two, for a list)")
    keyword = pairs[0][0]
    response = search(dicomweb, scope.path, *pairs, ("includefield", keyword))
    if name == "study-instances":
        relational_answer(response)
    answer = model.search_sample(scope.entities, pairs, scope.whole)
    _judge(response, answer, _found(response, scope.tag), "data", scope.whole)


# --- paging (8.3.4.4) ------------------------------------------------------------------------

PAGES = 3  # a search is read in three pages: a bounded number of requests whatever its size


@pytest.mark.requirement("QIDO-PAGING-COMPLETE")
@pytest.mark.parametrize("name", ["series", "series-instances"])
def test_scoped_pages_add_up_to_the_whole(
    dicomweb: Client, study_data: StudyData, name: str
) -> None:
    """The search without limit finds every sampled entity (and, the data whole, nothing
    else); read again in three pages (limit and offset), the pages hold each of its results
    once, and nothing it does not hold."""
    scope = scope_of(study_data, name)
    response = search(dicomweb, scope.path)
    whole = _found(response, scope.tag)
    _judge(response, model.search_sample(scope.entities, [], scope.whole), whole, "data", True)
    if len(whole) < 2:
        lacking(f"two results to page: {request_line(response)} answers {len(whole)}")
    limit = math.ceil(len(whole) / PAGES)
    pages: list[str] = []
    for offset in range(0, len(whole), limit):
        paged = search(dicomweb, scope.path, ("limit", str(limit)), ("offset", str(offset)))
        page = _found(paged, scope.tag)
        assert len(page) <= limit, f"{request_line(paged)}: {len(page)} results for limit={limit}"
        pages += page
    repeated = sorted({u for u in pages if pages.count(u) > 1})
    missing = sorted(set(whole) - set(pages))
    extra = sorted(set(pages) - set(whole))
    assert not (repeated or missing or extra), (
        f"{request_line(response)} read in pages of limit={limit}: "
        + "; ".join(
            said
            for said, holds in (
                (f"{repeated} in more than one page", repeated),
                (f"{missing} in no page", missing),
                (f"{extra} in a page, not in the whole answer", extra),
            )
            if holds
        )
    )


# --- the study found by its own values -----------------------------------------------------


def _shifted(value: str, days: int) -> str:
    return (datetime.strptime(value[:8], "%Y%m%d") + timedelta(days=days)).strftime("%Y%m%d")


def _second_before(value: str) -> str | None:
    digits = (value.split(".")[0] + "0000")[:6]
    moment = datetime.strptime(digits, "%H%M%S")
    return None if digits == "000000" else (moment - timedelta(seconds=1)).strftime("%H%M%S")


def _study_queries(case: str, value: str, absent: str, modalities: list[str]) -> list[Pairs]:
    """The queries of a case, from the study's value of its key: those the study must match,
    then one it must not (a value beside it)."""
    key, _, form = case.partition("=")
    if form == "range" and key == "StudyDate":  # a date in a range, and a range after it
        after = _shifted(value, 1)
        return [[(key, f"{_shifted(value, -1)}-{after}")], [(key, f"{after}-")]]
    if form == "range":  # a time range from the study's on, and one ending the second before
        before = _second_before(value)
        return [[(key, f"{value}-")]] + ([[(key, f"-{before}")]] if before else [])
    if form == "uid,uid":  # a UID list of two, one the study's, and a list without it
        return [[(key, f"{value},{absent}")], [(key, f"{absent},{absent}.1")]]
    if form == "prefix*":
        return [[(key, _prefix(value, "*"))], [(key, f"{value}X*")]]
    if key == "ModalitiesInStudy":
        other = next((m for m in OTHER_MODALITIES if m not in modalities), "ZZ")
        return [[(key, value)], [(key, other)]]
    if key == "StudyInstanceUID":
        return [[(key, value)], [(key, absent)]]
    if key == "StudyDate":
        return [[(key, value)], [(key, _shifted(value, 1))]]
    if key == "StudyTime":
        before = _second_before(value)
        return [[(key, value)]] + ([[(key, before)]] if before else [])
    return [[(key, value)], [(key, value + "X")]]


# The values dates and times are shifted from (PS3.5 Table 6.2-1: DA, TM without colons).
FORMATS = {"StudyDate": r"\d{8}", "StudyTime": r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?"}

# case -> requirement: each required key of the study level by a value of the study's own
# (Table 10.6.1-5), and the forms of matching on them that have their own rules.
STUDY_CASES = {
    **STUDY_KEYS,
    "StudyDate=range": "QIDO-MATCH-DATE-RANGE",
    "StudyTime=range": "QIDO-MATCH-TIME-RANGE",
    "PatientID=prefix*": "QIDO-MATCH-WILDCARD-ANY",
    "AccessionNumber=prefix*": "QIDO-MATCH-WILDCARD-ANY",
    "StudyInstanceUID=uid,uid": "QIDO-MATCH-UID-LIST",
}


@pytest.mark.parametrize("case", [requirement_param(c, r) for c, r in STUDY_CASES.items()])
def test_study_is_found_by_its_own_values(
    dicomweb: Client, study_data: StudyData, absent_uid: str, case: str
) -> None:
    """studies?StudyInstanceUID={the study}&{key}={a value from the data}: found where the
    model matches the study, not found where it does not. A Patient's Name the server gives
    the study otherwise than its instances (one name kept per Patient ID) is not held to find
    it, only the name beside it not to: which name a patient has is the server's (as
    test_qido.py's PatientName case reads it)."""
    key = case.partition("=")[0]
    s = study_data.study_uid
    entity = study_entity(study_data)
    values = model.values_of(entity, model.tag_of(key)) if key != "StudyInstanceUID" else [s]
    if not values or not values[0]:
        lacking(f"a {key} its instances agree on, to search the study by")
    whole = is_whole(study_data)
    modalities = model.values_of(entity, MODALITIES_IN_STUDY)
    value = values[0]
    if key in FORMATS and not re.fullmatch(FORMATS[key], value):
        lacking(f"a {key} in the form ranges are built from (its value is {value!r})")
    if key == "ModalitiesInStudy":  # a modality of a multi-modality study: the rarest one
        value = rarest(_series_entities(study_data), "Modality") or value
    lenient: str | None = None
    if key == "PatientName":
        given = _name_given(dicomweb, s)
        lenient = given if given != value else None
    for pairs in _study_queries(case, value, absent_uid, modalities):
        expected = model.matches(entity, pairs)
        if key == "ModalitiesInStudy" and expected == "no" and not whole:
            expected = "may"  # an unsampled series may have the modality
        if lenient is not None and expected == "yes":
            expected = "may"
        scope = [] if key == "StudyInstanceUID" else [("StudyInstanceUID", s)]
        response = search(dicomweb, "studies", *scope, *pairs, ("includefield", key))
        found = s in _found(response, STUDY_UID)
        asked = f"{pairs[0][0]}={pairs[0][1]!r}"
        assert expected != "yes" or found, (
            f"{request_line(response)}: {asked} does not find the study, whose {key} is "
            f"{value!r} (PS3.4 C.2.2.2)"
        )
        assert expected != "no" or not found, (
            f"{request_line(response)}: {asked} finds the study, whose {key} is {value!r}: it "
            "does not match (PS3.4 C.2.2.2)"
        )


def _name_given(dicomweb: Client, study_uid: str) -> str | None:
    """The Patient's Name the server gives the study (None: it gives none)."""
    response = search(dicomweb, "studies", ("StudyInstanceUID", study_uid))
    results = [o for o in expect.results(response) if first_value(o, STUDY_UID) == study_uid]
    name = first_value(results[0], "00100010") if results else None
    return name.get("Alphabetic") if isinstance(name, dict) else None
