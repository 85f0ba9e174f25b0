"""Properties: for generated queries and datasets, the server answers what a model says.

Fixed examples test what their authors thought of. Here hypothesis generates the queries (date
and time ranges of every form, wildcard patterns, UID lists, names in several cases, pages) over
the run's search archive (``stored_archive``: one-instance studies whose values meet at ties,
boundaries, shared prefixes and case variants; conformance/synthetic.py), and each answer is
held to what PS3.4 C.2.2.2 says a conforming server returns (conformance/model.py). A failure
is shrunk to the smallest query that shows it, and names the request, what came back, what the
model expects and the values stored.

The round-trip properties generate instances instead, store each and read it back
(test_properties_roundtrip.py); malformed requests get a client error
(test_properties_bad_input.py); sequences of stores, deletes and searches hold to a model of the
archive (test_properties_stateful.py). They take their strategies and helpers from here.

Every query is scoped to the archive (the run's Patient ID and the archive's Study ID), so other
data on the server never enters an answer. Each property is one matching rule, so that a server
failing one is still judged on the others. ``--dicomweb-hypothesis=ci`` (the default) runs a
fixed set of examples, reproducible run to run; ``deep`` searches ten times as long, at random.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import pytest
from hypothesis import strategies as st
from pydicom import Dataset

from conformance import expect, model
from conformance.annexf import json_differences
from conformance.client import Client
from conformance.dicomweb import (
    SERIES_UID,
    SOP_UID,
    STUDY_UID,
    first_value,
    search,
)
from conformance.explore import explore
from conformance.synthetic import (
    ARCHIVE_ACCESSIONS,
    ARCHIVE_DATES,
    ARCHIVE_DATETIMES,
    ARCHIVE_NAMES,
    ARCHIVE_PROCEDURES,
    ARCHIVE_SERIES_DESCRIPTIONS,
    ARCHIVE_STEPS,
    ARCHIVE_STUDY_DESCRIPTIONS,
    ARCHIVE_TIMES,
    SearchArchive,
)

Pairs = Sequence[tuple[str, str]]
T = TypeVar("T")
# The wildcard properties leave case to the case property: Orthanc's wildcards ignore case, and
# that one deviation must not hide whether its wildcards match the right characters.
ANY_CASE = model.Rules(any_case=True)
EXACT = model.Rules()


class Searcher:
    """Searches of one check, scoped to the archive (the run's Patient ID and the archive's
    Study ID). Only the archive's studies are judged: a study from outside it in an answer means
    the server ignored the scope's keys, which is the business of the checks of those keys
    (test_qido.py), not of this property's rule. Once the server gives no answer at all (a
    timeout, throttling), every later example fails the same way without asking again, so that
    hypothesis does not spend the check's deadline shrinking an outage."""

    def __init__(self, client: Client, archive: SearchArchive) -> None:
        self.client = client
        self.archive = archive
        self.entities = archive.entities()
        self.names = {uid: f"#{number}" for number, uid in enumerate(archive.study_uids)}
        patient_id = str(archive.instances[0].dataset.PatientID)
        self.scope = [("PatientID", patient_id), ("StudyID", archive.token)]
        self.absent: dict[str, str] = {}  # relational resource -> how the server said so

    def offers(self, resource: str) -> bool:
        """Whether the server has a relational resource (``series``, ``instances``,
        ``studies/{study}/instances``: optional for a proxy, Table 10.6.1-1). Asked once,
        scoped to the archive, which it must then list: an answer that the resource is absent
        (404, 405, 501) is never read as "no results"."""
        if resource not in self.absent:
            path = resource.format(study=self.archive.study_uids[0])
            scope = [] if path.startswith("studies/") else self.scope
            response = search(self.client, path, *scope)
            absent = response.status_code in expect.ROUTE_ABSENT
            self.absent[resource] = f"GET {path} answered {response.status_code}" if absent else ""
        return not self.absent[resource]

    def ask(self, pairs: Pairs, **params: str) -> list[str]:
        """The Study Instance UIDs answered, in order."""
        _, results = self.results("studies", pairs, **params)
        return [str(first_value(obj, STUDY_UID)) for obj in results]

    def results(self, path: str, pairs: Pairs, **params: str) -> tuple[str, list[dict[str, Any]]]:
        """The request's path and query, and the results of a search of ``path`` (scoped to
        the archive unless it is within a study)."""
        scope = [] if path.startswith("studies/") else self.scope
        response = search(self.client, path, *scope, *pairs, **params)
        # A 404 for "nothing matched" is taken as no results: which status an empty answer
        # has is test_qido.py's business, and must not hide how the server matches.
        found = expect.results(response, none_on=(204, 404))
        return response.request.path_url, found

    def holds_to_the_model(self, pairs: Pairs, rules: model.Rules = EXACT) -> None:
        """The answer to ``pairs`` is what the model says a conforming server answers."""
        found = [uid for uid in self.ask(pairs) if uid in self.entities]
        problem = model.search(self.entities, pairs, rules).problem(found, self.names.__getitem__)
        if problem:
            raise AssertionError(
                f"studies?{_query(pairs)} (scoped to the run's search archive): {problem}; "
                f"answered {self.named(found)}; stored {self.stored(pairs)}"
            )

    def named(self, uids: Sequence[str]) -> str:
        return "[" + ", ".join(self.names.get(uid, "(another study)") for uid in uids) + "]"

    def stored(self, pairs: Pairs) -> str:
        """Each archive study's values of the query's keys: "#0 AB1, #1 AB12, ..."."""
        tags = [model.tag_of(key) for key, _ in pairs]
        return ", ".join(
            f"{self.names[uid]} "
            + " ".join("|".join(model.values_of(entity, tag)) or "(empty)" for tag in tags)
            for uid, entity in self.entities.items()
        )


def _query(pairs: Pairs) -> str:
    return "&".join(f"{k}={v}" for k, v in pairs)


def holds_for_every(
    client: Client,
    archive: SearchArchive,
    key: str,
    values: st.SearchStrategy[str],
    rules: model.Rules = EXACT,
) -> None:
    """For every generated value of ``key``, the archive's answer is the model's."""
    searcher = Searcher(client, archive)
    explore(
        f"{key} {rules}",
        values,
        lambda value: searcher.holds_to_the_model([(key, value)], rules),
        ask_first=client,
    )


SPECIFIC_CHARACTER_SET = "00080005"


# --- strategies -------------------------------------------------------------------------------


def _days_around(values: Sequence[str]) -> list[str]:
    """The archive's dates and the day before and after each: where off-by-one errors live."""
    found = set()
    for value in values:
        day = date(int(value[:4]), int(value[4:6]), int(value[6:]))
        for delta in (-1, 0, 1):
            found.add((day + timedelta(days=delta)).strftime("%Y%m%d"))
    return sorted(found)


def _seconds_around(values: Sequence[str]) -> list[str]:
    found = set()
    for value in values:
        seconds = int(value[:2]) * 3600 + int(value[2:4]) * 60 + int(value[4:6])
        for delta in (-1, 0, 1):
            s = min(max(seconds + delta, 0), 86399)
            found.add(f"{s // 3600:02}{s // 60 % 60:02}{s % 60:02}")
    return sorted(found)


def ranges(points: Sequence[str]) -> st.SearchStrategy[str]:
    """C.2.2.2.5's three forms (closed, open start, open end) and a single value."""
    point = st.sampled_from(points)
    closed = st.tuples(point, point).map(lambda p: "-".join(sorted(p)))
    return st.one_of(closed, point.map(lambda p: f"-{p}"), point.map(lambda p: f"{p}-"), point)


def patterns(values: Sequence[str], wildcard: str) -> st.SearchStrategy[str]:
    """Patterns with ``wildcard`` made from the stored values (a part replaced) and at random
    from their characters: each has at least one ``wildcard``."""
    alphabet = sorted({c for v in values for c in v})

    @st.composite
    def from_a_value(draw: st.DrawFn) -> str:
        value = draw(st.sampled_from(values))
        start = draw(st.integers(0, len(value)))
        end = draw(st.integers(start, len(value)))
        if wildcard == "?":
            end = start + min(1, len(value) - start) if end == start else end
            replaced = "?" * (end - start) or "?"
        else:
            replaced = "*"
        return value[:start] + replaced + value[end:]

    text = st.text(alphabet=[*alphabet, wildcard], min_size=1, max_size=5)
    return st.one_of(from_a_value(), text.filter(lambda p: wildcard in p))


def name_queries(names: Sequence[str]) -> st.SearchStrategy[str]:
    """Names as stored, in other cases, and with wildcards (PN: case may or may not count)."""
    name = st.sampled_from(names)
    return st.one_of(
        name,
        name.map(str.lower),
        name.map(str.upper),
        name.map(lambda n: n.split("^")[0] + "*"),
        patterns(names, "?"),
    )


# --- the properties ---------------------------------------------------------------------------


@pytest.mark.requirement("QIDO-MATCH-DATE-RANGE")
def test_date_ranges_find_what_the_model_finds(
    dicomweb: Client, stored_archive: SearchArchive
) -> None:
    holds_for_every(dicomweb, stored_archive, "StudyDate", ranges(_days_around(ARCHIVE_DATES)))


@pytest.mark.requirement("QIDO-MATCH-TIME-RANGE")
def test_time_ranges_find_what_the_model_finds(
    dicomweb: Client, stored_archive: SearchArchive
) -> None:
    holds_for_every(dicomweb, stored_archive, "StudyTime", ranges(_seconds_around(ARCHIVE_TIMES)))


@pytest.mark.requirement("QIDO-MATCH-WILDCARD-ANY")
def test_star_patterns_find_what_the_model_finds(
    dicomweb: Client, stored_archive: SearchArchive
) -> None:
    holds_for_every(
        dicomweb, stored_archive, "AccessionNumber", patterns(ARCHIVE_ACCESSIONS, "*"), ANY_CASE
    )


@pytest.mark.requirement("QIDO-MATCH-WILDCARD-ONE")
def test_question_mark_patterns_find_what_the_model_finds(
    dicomweb: Client, stored_archive: SearchArchive
) -> None:
    holds_for_every(
        dicomweb, stored_archive, "AccessionNumber", patterns(ARCHIVE_ACCESSIONS, "?"), ANY_CASE
    )


@pytest.mark.requirement("QIDO-MATCH-CASE-SENSITIVE")
def test_text_matches_only_in_its_own_case(dicomweb: Client, stored_archive: SearchArchive) -> None:
    """Values and patterns in another case than stored (C.2.2.2.1; C.2.2.2.4 for patterns):
    no result may match them only in another case. Only such results count: a study missed
    (the key or its wildcards not matched at all) is the single value and wildcard properties'
    fault, not a case-insensitive match."""
    searcher = Searcher(dicomweb, stored_archive)
    value = st.one_of(st.sampled_from(ARCHIVE_ACCESSIONS), patterns(ARCHIVE_ACCESSIONS, "*"))
    recase = st.sampled_from([str.lower, str.upper, str.swapcase])
    # Only values that recasing changes: "*" or "1" in another case is the value itself.
    recased = (
        st.tuples(value, recase)
        .map(lambda drawn: (drawn[0], drawn[1](drawn[0])))
        .filter(lambda pair: pair[0] != pair[1])
        .map(lambda pair: pair[1])
    )

    def holds(query: str) -> None:
        pairs = [("AccessionNumber", query)]
        found = [uid for uid in searcher.ask(pairs) if uid in searcher.entities]
        exact = model.search(searcher.entities, pairs, EXACT).may
        by_case = model.search(searcher.entities, pairs, ANY_CASE).may - exact
        wrong = [uid for uid in found if uid in by_case]
        if wrong:
            raise AssertionError(
                f"studies?{_query(pairs)} (scoped to the run's search archive): returns "
                f"{searcher.named(wrong)}, which match it only in another case; answered "
                f"{searcher.named(found)}; stored {searcher.stored(pairs)}"
            )

    explore("AccessionNumber in another case", recased, holds, ask_first=dicomweb)


@pytest.mark.requirement("QIDO-MATCH-UID-LIST")
def test_uid_lists_find_what_the_model_finds(
    dicomweb: Client, stored_archive: SearchArchive
) -> None:
    # UIDs of this run that name no study, among the archive's own.
    absent = [uid[:-1] + ("1" if uid[-1] != "1" else "2") for uid in stored_archive.study_uids]
    uids = st.sampled_from([*stored_archive.study_uids, *absent[:2]])
    lists = st.lists(uids, min_size=1, max_size=4, unique=True).map(",".join)
    holds_for_every(dicomweb, stored_archive, "StudyInstanceUID", lists)


@pytest.mark.requirement("QIDO-MATCH-PATIENT-NAME")
def test_names_find_what_the_model_finds(dicomweb: Client, stored_archive: SearchArchive) -> None:
    holds_for_every(dicomweb, stored_archive, "PatientName", name_queries(ARCHIVE_NAMES))


@pytest.mark.requirement("QIDO-MATCH-PATIENT-NAME")
def test_names_without_a_caret_find_what_the_model_finds(
    dicomweb: Client, stored_archive: SearchArchive
) -> None:
    """The property above with the names that go on the wire as they are (Roe, Doe): a '^' is
    sent percent-encoded, and a server that does not decode fails the one above for
    QIDO-MATCH-PERCENT-ENCODED's fault, which must not hide how it matches names."""
    holds_for_every(dicomweb, stored_archive, "PatientName", name_queries(plain(ARCHIVE_NAMES)))


REQUEST_KEYS = {
    "RequestAttributesSequence.RequestedProcedureID": ARCHIVE_PROCEDURES,
    "RequestAttributesSequence.ScheduledProcedureStepID": ARCHIVE_STEPS,
}


@pytest.mark.requirement("QIDO-MATCH-SEQUENCE-TAG-PATH")
def test_sequence_keys_match_within_one_item(
    dicomweb: Client, stored_archive: SearchArchive
) -> None:
    """Keys inside the Request Attributes Sequence (a series key), one or both, as keywords or
    tags: a series matches when one item matches them all (PS3.4 C.2.2.2.6). Each archive
    series has two items with the keys' values crossed, so keys taken from different items
    find series that no item matches. Asked of each archive study's series."""
    searcher = Searcher(dicomweb, stored_archive)
    tags = {"RequestAttributesSequence": "00400275", "RequestedProcedureID": "00401001",
            "ScheduledProcedureStepID": "00400009"}  # fmt: skip
    key = st.sampled_from(sorted(REQUEST_KEYS)).flatmap(
        lambda k: st.tuples(st.just(k), st.sampled_from(REQUEST_KEYS[k]))
    )
    spelled = st.booleans()

    def holds(drawn: tuple[list[tuple[str, str]], bool]) -> None:
        pairs, as_tags = drawn
        if as_tags:
            pairs = [(".".join(tags[p] for p in k.split(".")), v) for k, v in pairs]
        asked = [
            partial(search, dicomweb, f"studies/{uid}/series", *pairs) for uid in searcher.entities
        ]
        for (uid, entity), response in zip(
            searcher.entities.items(), dicomweb.each(asked), strict=True
        ):
            found = bool(expect.results(response))
            wanted = model.matches(entity, pairs)
            if wanted != "may" and found != (wanted == "yes"):
                items = [
                    "/".join(model.values_of(item, t)[0] for t in ("00401001", "00400009"))
                    for item in entity["00400275"]["Value"]
                ]
                raise AssertionError(
                    f"{expect.request_line(response)}: {'found' if found else 'did not find'} "
                    f"the series of {searcher.names[uid]}, whose items are {items}"
                )

    pairs = st.lists(key, min_size=1, max_size=2, unique_by=lambda p: p[0])
    explore("sequence items", st.tuples(pairs, spelled), holds, ask_first=dicomweb)


@pytest.mark.requirement("QIDO-PAGING-COMPLETE")
def test_pages_are_slices_of_the_whole_answer(
    dicomweb: Client, stored_archive: SearchArchive
) -> None:
    """Every page is the slice of the whole ordered answer its limit and offset select
    (8.3.4.4.1: the same query gives the same ordered list), whatever the ties in the data."""
    searcher = Searcher(dicomweb, stored_archive)
    size = len(stored_archive.instances)

    paging = st.tuples(
        st.integers(1, size + 1),
        st.integers(0, size + 1),
        st.sampled_from(["", "19940101-19941231", "-19950101"]),
    )

    def holds(drawn: tuple[int, int, str]) -> None:
        limit, offset, dates = drawn
        pairs = [("StudyDate", dates)] if dates else []
        whole = searcher.ask(pairs)
        got = searcher.ask(pairs, limit=str(limit), offset=str(offset))
        wanted = model.page(whole, limit, offset)
        if got != wanted:
            query = _query([*pairs, ("limit", str(limit)), ("offset", str(offset))])
            raise AssertionError(
                f"studies?{query} (scoped to the run's search archive): page "
                f"{searcher.named(got)}, but the whole answer {searcher.named(whole)} puts "
                f"{searcher.named(wanted)} there"
            )

    explore("pages", paging, holds, ask_first=dicomweb)


# Offsets a query's date-times carry (minutes from UTC; None: none): negative ones, and positive
# ones on their own, since a "+" is sent percent-encoded (%2B), and a server that does not decode
# fails those for QIDO-MATCH-PERCENT-ENCODED's fault, not for how it compares moments.
QUERY_OFFSETS = (None, -60, -300, -600)
POSITIVE_OFFSETS = (None, 60, 330, 600)


def datetime_ranges(stored: Sequence[str], offsets: Sequence[int | None]) -> st.SearchStrategy[str]:
    """DT ranges (the three forms) whose bounds are the stored moments, a second either side,
    each written at one of ``offsets`` from UTC (minutes; None: without one)."""
    moments = sorted(
        {
            model.instant(v, upper=False)[0] + timedelta(seconds=d)
            for v in stored
            for d in (-1, 0, 1)
        }
    )

    def written(moment: datetime, offset: int | None) -> str:
        if offset is None:
            return moment.strftime("%Y%m%d%H%M%S")
        local = moment + timedelta(minutes=offset)
        sign = "+" if offset >= 0 else "-"
        return local.strftime("%Y%m%d%H%M%S") + f"{sign}{abs(offset) // 60:02}{abs(offset) % 60:02}"

    bound = st.builds(written, st.sampled_from(moments), st.sampled_from(offsets))
    closed = st.tuples(st.sampled_from(moments), st.sampled_from(moments)).flatmap(
        lambda pair: st.tuples(
            *(st.builds(written, st.just(m), st.sampled_from(offsets)) for m in sorted(pair))
        ).map("-".join)
    )
    return st.one_of(closed, bound.map(lambda b: f"-{b}"), bound.map(lambda b: f"{b}-"))


def datetime_ranges_hold(
    client: Client,
    archive: SearchArchive,
    offsets: Sequence[int | None],
    rules: model.Rules,
    only: Callable[[str], bool] | None = None,
) -> None:
    """Acquisition DateTime ranges (those ``only`` keeps), asked of each series' instances
    whose answer the model judges: the hierarchical resource every server has (GET /instances
    and a study's instances are relational, optional for a proxy, and this is a property of
    matching, not of which resources a server has; a series whose instance "may" match is not
    asked)."""
    searcher = Searcher(client, archive)
    entities = archive.entities("instance")
    names = {uid: f"#{n}" for n, uid in enumerate(entities)}
    series = {
        str(i.dataset.SOPInstanceUID): f"studies/{i.study_uid}/series/{i.series_uid}/instances"
        for i in archive.instances
    }

    def holds(value: str) -> None:
        pairs = [("AcquisitionDateTime", value)]
        wanted = model.search(entities, pairs, rules)
        judged = [uid for uid in entities if uid in wanted.must or uid not in wanted.may]
        found, path = [], ""
        for path, results in client.each(
            [partial(searcher.results, series[u], pairs) for u in judged]
        ):
            found += [str(first_value(obj, SOP_UID)) for obj in results]
            path = re.sub(r"studies/[^/]+/series/[^/]+/", "studies/{study}/series/{series}/", path)
        problem = wanted.problem([u for u in found if u in judged], names.__getitem__)
        if problem:
            stored = ", ".join(
                f"{names[uid]} {'|'.join(model.values_of(e, '0008002A'))}"
                for uid, e in entities.items()
            )
            raise AssertionError(
                f"GET {path} (scoped to the run's search archive): {problem}; stored {stored}"
            )

    values = datetime_ranges(ARCHIVE_DATETIMES, offsets)
    name = f"date-time ranges {rules}"
    if only is not None:
        values, name = values.filter(only), f"{name} {offsets}"
    explore(name, values, holds, ask_first=client)


@pytest.mark.requirement("QIDO-MATCH-DATETIME-RANGE")
def test_datetime_ranges_find_what_the_model_finds(
    dicomweb: Client, stored_archive: SearchArchive
) -> None:
    """Acquisition DateTime ranges without offsets from UTC, judged against the values without
    one (the three forms, boundaries a second either side, a year's end). Offsets, in the query
    and in the values, are the next property's: Orthanc fails that one (a range bound with a
    negative offset is split at its hyphen), and must still be judged on its plain ranges."""
    datetime_ranges_hold(dicomweb, stored_archive, [None], model.Rules(one_offset=True))


@pytest.mark.requirement("QIDO-MATCH-DATETIME-RANGE")
def test_datetime_ranges_take_the_offset_from_utc_into_account(
    dicomweb: Client, stored_archive: SearchArchive
) -> None:
    """The archive's Acquisition DateTimes are at offsets from UTC (+0100, -0500, -0100, +0000,
    +0530; three without), several of them the same moment; asked with bounds at other
    offsets, a value inside the range as a moment must be found, one outside it must not,
    whatever its digits say (PS3.4 C.2.2.2.5.3)."""
    datetime_ranges_hold(dicomweb, stored_archive, QUERY_OFFSETS, EXACT)


@pytest.mark.requirement("QIDO-MATCH-DATETIME-RANGE-POSITIVE-OFFSET")
def test_datetime_ranges_at_positive_offsets_match_as_moments(
    dicomweb: Client, stored_archive: SearchArchive
) -> None:
    """The property above with bounds at positive offsets from UTC (+0100, +0530, +1000), at
    least one in each range: a '+' goes on the wire percent-encoded (%2B), so a server that does
    not decode query values fails here and still is judged on the negative offsets above (PS3.4
    C.2.2.2.5.3)."""
    datetime_ranges_hold(
        dicomweb, stored_archive, POSITIVE_OFFSETS, EXACT, lambda value: "+" in value
    )


# --- every level: relational searches and includefield -----------------------------------------

UID_TAGS = {"study": STUDY_UID, "series": SERIES_UID, "instance": SOP_UID}
RESOURCE_OF = {"study": "studies", "series": "series", "instance": "instances"}


def plain(values: Sequence[str]) -> list[str]:
    """The values that go on the wire as they are (RFC 3986's unreserved characters): a value
    percent-encoded (a space, a caret) is QIDO-MATCH-PERCENT-ENCODED's check, which Orthanc
    before 1.13 fails."""
    return [v for v in values if re.fullmatch(r"[A-Za-z0-9._~-]+", v)]


LEVEL_KEYS: dict[model.Level, dict[str, Callable[[], st.SearchStrategy[str]]]] = {
    "study": {
        "StudyDate": lambda: ranges(_days_around(ARCHIVE_DATES)),
        "AccessionNumber": lambda: st.sampled_from(ARCHIVE_ACCESSIONS),
        "PatientName": lambda: st.sampled_from(plain(ARCHIVE_NAMES)),
        "StudyDescription": lambda: st.sampled_from(plain(ARCHIVE_STUDY_DESCRIPTIONS)),
    },
    "series": {
        "Modality": lambda: st.sampled_from(["OT", "SC", "SR"]),
        "SeriesNumber": lambda: st.sampled_from(["1", "2", "3", "4"]),
        "SeriesDescription": lambda: st.sampled_from(plain(ARCHIVE_SERIES_DESCRIPTIONS)),
    },
    "instance": {"InstanceNumber": lambda: st.sampled_from(["1", "2", "3"])},
}


def keys_down_to(level: model.Level) -> st.SearchStrategy[tuple[str, str]]:
    """A match key of ``level`` or above, with a value."""
    upper = model.LEVELS[: model.LEVELS.index(level) + 1]
    keys = sorted((lvl, key) for lvl in upper for key in LEVEL_KEYS[lvl])
    return st.sampled_from(keys).flatmap(
        lambda k: st.tuples(st.just(k[1]), LEVEL_KEYS[k[0]][k[1]]())
    )


@pytest.mark.requirement("QIDO-RESOURCE-ALL-SERIES", "QIDO-RESOURCE-ALL-INSTANCES")
def test_series_and_instance_searches_find_what_the_model_finds(
    dicomweb: Client, stored_archive: SearchArchive
) -> None:
    """GET /series and /instances with keys of their own level and of the levels above (study
    dates, accession numbers, names, descriptions; modality, series number; instance number),
    one or two at a time: the series or instances answered are the model's. Case is the case
    property's business."""
    searcher = Searcher(dicomweb, stored_archive)
    for resource in ("series", "instances"):
        if not searcher.offers(resource):
            expect.not_implemented(f"no relational search: {searcher.absent[resource]}")
    names = {
        level: {
            uid: f"#{n}" for n, uid in enumerate(stored_archive.datasets(level))
        } for level in ("series", "instance")
    }  # fmt: skip

    def holds(drawn: tuple[model.Level, list[tuple[str, str]]]) -> None:
        level, pairs = drawn
        entities = stored_archive.entities(level)
        path, results = searcher.results(RESOURCE_OF[level], pairs)
        found = [str(first_value(obj, UID_TAGS[level])) for obj in results]
        found = [uid for uid in found if uid in entities]
        problem = model.search(entities, pairs, ANY_CASE).problem(found, names[level].__getitem__)
        if problem:
            raise AssertionError(
                f"GET {path} (scoped to the run's search archive): {problem}; stored "
                + ", ".join(
                    f"{names[level][uid]} "
                    + " ".join("|".join(model.values_of(e, model.tag_of(k))) for k, _ in pairs)
                    for uid, e in entities.items()
                )
            )

    levels: st.SearchStrategy[model.Level] = st.sampled_from(["series", "instance"])
    queries = levels.flatmap(
        lambda level: st.tuples(
            st.just(level), st.lists(keys_down_to(level), min_size=1, max_size=2,
                                     unique_by=lambda p: p[0])
        )
    )  # fmt: skip
    explore("relational searches", queries, holds, ask_first=dicomweb)


# Attributes includefield may name, of every level, from the archive's (PatientSex: none stored).
INCLUDED = (
    "StudyDescription", "AccessionNumber", "PatientName", "PatientSex", "SeriesDescription",
    "BodyPartExamined", "SeriesNumber", "RequestAttributesSequence", "InstanceNumber",
    "ImageComments", "ConversionType", "Rows",
)  # fmt: skip
# The resources searched: the hierarchical ones every server has, and a study's instances, a
# relational resource (optional for a proxy: asked where the server offers it).
SEARCHED: dict[str, model.Level] = {
    "studies": "study",
    "studies/{study}/series": "series",
    "studies/{study}/instances": "instance",
    "studies/{study}/series/{series}/instances": "instance",
}
RELATIONAL = {"studies/{study}/instances"}


@dataclass(frozen=True)
class Include:
    """A search of ``resource`` (in the archive's study ``study``) naming ``fields`` in
    includefield, as keywords or tags, in one comma-separated list or one parameter each."""

    resource: str
    study: int
    fields: tuple[str, ...]
    as_tags: bool
    as_list: bool

    def params(self) -> list[tuple[str, str]]:
        named = [model.tag_of(f) if self.as_tags else f for f in self.fields]
        return [("includefield", ",".join(named))] if self.as_list else [
            ("includefield", n) for n in named
        ]  # fmt: skip


@pytest.mark.requirement("QIDO-INCLUDEFIELD-LIST")
def test_includefield_returns_what_was_stored_at_every_level(
    dicomweb: Client, stored_archive: SearchArchive
) -> None:
    """Searches of the archive's studies, a study's series and instances, and a series'
    instances, naming attributes of every level in includefield: each result carries every
    attribute named of its level or a level above it (10.6.3.3.2: "Series or Study Level
    Attributes passed as includefield parameters"; 10.6.3.3.3: "Study, Series, or Instance
    Level Attributes") that the server returns when it is named alone (support is the server's
    choice), and every value any result carries is the one stored. That attributes of a lower
    level are left out is QIDO-INCLUDEFIELD-LOWER-LEVEL-EXCLUDED's check."""
    searcher = Searcher(dicomweb, stored_archive)
    supported: dict[tuple[str, str], bool] = {}

    def alone(path: str, tag: str) -> bool:
        """Whether a search of ``path`` naming only ``tag`` returns it (asked once)."""
        if (path, tag) not in supported:
            _, results = searcher.results(path, [("includefield", tag)])
            supported[(path, tag)] = any(tag in obj for obj in results)
        return supported[(path, tag)]

    def holds(include: Include) -> None:
        level = SEARCHED[include.resource]
        ds = stored_archive.instances[include.study].dataset
        study = str(ds.StudyInstanceUID)
        path = include.resource.format(study=study, series=ds.SeriesInstanceUID)
        stored = stored_archive.datasets(level)
        if path.startswith("studies/"):
            stored = {u: ds for u, ds in stored.items() if str(ds.StudyInstanceUID) == study}
        where, results = searcher.results(path, include.params())
        answered = {str(first_value(obj, UID_TAGS[level])): obj for obj in results}
        problems = []
        missing = sorted(set(stored) - set(answered))
        if missing:
            problems.append(f"misses {len(missing)} of the {len(stored)} {level} results")
        must = {t for t in model.carried(level, include.fields).must if alone(path, t)}
        for uid, obj in answered.items():
            if uid not in stored:
                continue  # another study's: the scope's keys are other checks' business
            lacks = sorted(must - set(obj))
            if lacks:
                problems.append(f"a result lacks {lacks}, returned when asked for alone")
            carried = Dataset()
            for element in stored[uid]:
                tag = f"{element.tag:08X}"
                # Not the patient's attributes: the archive's studies share the run's Patient
                # ID under different names, which a server keeping one record per patient
                # (the Patient Root model) may merge.
                if tag in obj and tag != SPECIFIC_CHARACTER_SET and element.tag.group != 0x0010:
                    carried.add(element)
            problems += [what for _, what in json_differences(obj, carried)]
        if problems:
            raise AssertionError(f"GET {where}: {'; '.join(sorted(set(problems))[:5])}")

    offered = sorted(r for r in SEARCHED if r not in RELATIONAL or searcher.offers(r))
    includes = st.builds(
        Include,
        resource=st.sampled_from(offered),
        study=st.integers(0, len(stored_archive.instances) - 1),
        fields=st.lists(st.sampled_from(INCLUDED), min_size=1, max_size=4, unique=True).map(tuple),
        as_tags=st.booleans(),
        as_list=st.booleans(),
    )
    explore("includefield", includes, holds, ask_first=dicomweb)
