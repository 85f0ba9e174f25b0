"""Properties: for generated queries and datasets, the server answers what a model says.

Fixed examples test what their authors thought of. Here hypothesis generates the queries (date
and time ranges of every form, wildcard patterns, UID lists, names in several cases, pages) over
the run's search archive (``stored_archive``: one-instance studies whose values meet at ties,
boundaries, shared prefixes and case variants; conformance/synthetic.py), and each answer is
held to what PS3.4 C.2.2.2 says a conforming server returns (conformance/model.py). A failure
is shrunk to the smallest query that shows it, and names the request, what came back, what the
model expects and the values stored.

The round-trip properties generate instances instead (names with their component groups in
several character sets, dates, times, numbers of every VR, multi-valued and private attributes),
store each and read it back: its metadata must equal it under Annex F (conformance/annexf.py),
and the instance retrieved must equal it element by element.

Every query is scoped to the archive (the run's Patient ID and the archive's Study ID), so other
data on the server never enters an answer. Each property is one matching rule, so that a server
failing one is still judged on the others. ``--dicomweb-hypothesis=ci`` (the default) runs a
fixed set of examples, reproducible run to run; ``deep`` searches ten times as long, at random.
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal, TypeVar

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st
from pydicom import Dataset

from conformance import expect, model, multipart, synthetic
from conformance.annexf import json_differences
from conformance.client import Client
from conformance.dicomweb import (
    DICOM,
    SERIES_UID,
    SOP_UID,
    STUDY_UID,
    dicom_accept,
    first_value,
    instance_path,
    parts,
    read_dicom,
    retrieve,
    search,
    search_results,
    stow,
)
from conformance.errors import NoAnswer, Throttled
from conformance.run.fixtures import EmptyStudy
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


# Shrinking a failure asks the server again for every smaller example hypothesis tries, up to
# hundreds of times. Past this many seconds after the first failure, shrinking ends: the failure
# reported is the last (so the smallest) one a real answer showed by then.
SHRINK_SECONDS = 1.5


class _ShrinkingOver(BaseException):
    """Ends hypothesis's search from inside the property: hypothesis lets a BaseException
    through, where it would shrink on after an Exception, or try other examples after a
    rejected one (for as long as five minutes of them, each rejected unasked)."""


def explore(name: str, values: st.SearchStrategy[T], holds: Callable[[T], None]) -> None:
    """``holds(value)`` for the values hypothesis generates; it re-raises the failure of the
    smallest value it found.

    Under ``--dicomweb-hypothesis=ci`` (derandomized) the values come from a seed made of
    ``name``, so that every run, from any folder, asks the same questions and a verdict changes
    only when the server does (hypothesis's own derandomizing was seen to differ between
    working directories). Each value is asked once: hypothesis replays the smallest failure,
    and gets the same answer again. Once the server gives no answer at all (a timeout,
    throttling), every later value fails the same way without asking: hypothesis must not
    spend the check's deadline shrinking an outage."""
    answers: dict[str, AssertionError | None] = {}
    failures: list[AssertionError] = []  # in the order found: shrinking finds smaller ones
    first_failure: list[float] = []
    outage: list[NoAnswer | Throttled] = []

    @given(value=values)
    def prop(value: T) -> None:
        key = repr(value)
        if key in answers:
            failure = answers[key]
            if failure is not None:
                raise failure
            return
        if outage:
            raise outage[0]
        if first_failure and time.monotonic() - first_failure[0] > SHRINK_SECONDS:
            raise _ShrinkingOver
        try:
            holds(value)
        except AssertionError as failure:
            answers[key] = failure
            failures.append(failure)
            first_failure[:] = first_failure or [time.monotonic()]
            raise
        except (NoAnswer, Throttled) as error:
            outage.append(error)
            raise
        answers[key] = None

    if settings.default is not None and settings.default.derandomize:
        prop = seed(zlib.crc32(name.encode()))(prop)
    try:
        prop()
    except _ShrinkingOver:
        raise failures[-1] from None


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
        f"{key} {rules}", values, lambda value: searcher.holds_to_the_model([(key, value)], rules)
    )


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

    explore("AccessionNumber in another case", recased, holds)


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
        for uid, entity in searcher.entities.items():
            response = search(dicomweb, f"studies/{uid}/series", *pairs)
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
    explore("sequence items", st.tuples(pairs, spelled), holds)


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

    explore("pages", paging, holds)


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
        for uid in judged:
            path, results = searcher.results(series[uid], pairs)
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
    explore(name, values, holds)


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
    explore("relational searches", queries, holds)


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
    explore("includefield", includes, holds)


# --- round trips: what is stored comes back --------------------------------------------------

# Characters each Specific Character Set can carry in text (no backslash: it separates values),
# and the names' ideographic and phonetic groups where the character set has them.
ASCII = [chr(c) for c in range(0x20, 0x7F) if chr(c) != "\\"]
LATIN = ["ä", "ö", "ü", "ß", "é", "ñ", "ç", "å", "Ø", "Æ"]
WIDE = ["山", "田", "太", "郎", "花", "子", "鈴", "木", "や", "ま", "だ", "た", "ろ", "う"]
CHARSETS: dict[str | None, tuple[list[str], list[str]]] = {
    None: (ASCII, []),
    "ISO_IR 100": (ASCII + LATIN, []),
    # Greek and Cyrillic too, written as code points (ruff flags look-alikes of Latin letters).
    "ISO_IR 192": (
        ASCII + LATIN + WIDE + [chr(c) for c in (0x391, 0x3BB, 0x3C6, 0x41A, 0x438)],
        WIDE,
    ),
    "\\ISO 2022 IR 87": (ASCII, WIDE),
}
LETTERS = [c for c in ASCII if c.isalpha()]


@st.composite
def person_names(draw: st.DrawFn, charset: str | None) -> str:
    """Up to five components (PS3.5 6.2.1.1), and the other groups the character set allows."""

    def group(alphabet: list[str]) -> str:
        parts = draw(st.lists(st.text(alphabet, min_size=1, max_size=8), min_size=1, max_size=5))
        return "^".join(parts)

    wide = CHARSETS[charset][1]
    groups = [group(LETTERS)]
    if wide:
        groups += draw(st.lists(st.just(None), max_size=2).map(lambda g: [group(wide) for _ in g]))
    return "=".join(groups)


def texts(charset: str | None, max_size: int) -> st.SearchStrategy[str]:
    return st.text(CHARSETS[charset][0], max_size=max_size).map(str.strip)


def decimal_strings() -> st.SearchStrategy[str]:
    """DS values of at most 16 characters (PS3.5 Table 6.2-1)."""
    return st.builds(
        lambda n, places: f"{n / 10**places:.{places}f}",
        st.integers(-(10**8), 10**8),
        st.integers(0, 5),
    )


def times() -> st.SearchStrategy[str]:
    """TM to the hour, minute, second or fraction (PS3.5 Table 6.2-1)."""
    return st.builds(
        lambda t, precision: t.strftime("%H%M%S.%f")[: (2, 4, 6, 8, 13)[precision]],
        st.times(),
        st.integers(0, 4),
    )


def datetimes() -> st.SearchStrategy[str]:
    """DT to the day, minute or second, maybe with a fraction, maybe with an offset from UTC
    (PS3.5 Table 6.2-1: YYYYMMDDHHMMSS.FFFFFF&ZZXX)."""

    def written(t: datetime, precision: int, offset: str) -> str:
        text = f"{t.year:04}{t.month:02}{t.day:02}{t.hour:02}{t.minute:02}{t.second:02}"
        text += f".{t.microsecond:06}"
        return text[: (8, 12, 14, 17, 21)[precision]] + offset

    offsets = st.sampled_from(["", "+0000", "-0500", "+0530", "+1400", "-1200"])
    return st.builds(written, st.datetimes(), st.integers(0, 4), offsets)


def codes(charset: str | None) -> st.SearchStrategy[Dataset]:
    """A code item (PS3.3 Table 8.8-1): value, scheme and meaning, the meaning in ``charset``."""

    def code(value: str, scheme: str, meaning: str) -> Dataset:
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
        return item

    return st.builds(
        code,
        st.text("ABCXYZ0123456789-.", min_size=1, max_size=16),
        st.sampled_from(["SCT", "DCM", "99DWC"]),
        texts(charset, 64).filter(bool),
    )


def requested_protocols(charset: str | None) -> st.SearchStrategy[list[Dataset]]:
    """Request Attributes Sequence items, each with a Requested Procedure ID and a Scheduled
    Protocol Code Sequence of codes inside it: a sequence two deep."""

    def item(procedure: str, protocols: list[Dataset]) -> Dataset:
        ds = Dataset()
        ds.RequestedProcedureID = procedure
        ds.ScheduledProtocolCodeSequence = protocols
        return ds

    return st.lists(
        st.builds(
            item,
            st.text("ABC0123456789", min_size=1, max_size=16),
            st.lists(codes(charset), min_size=1, max_size=2),
        ),
        min_size=1,
        max_size=2,
    )


def everyday_floats(width: Literal[32, 64]) -> st.SearchStrategy[float]:
    """0, or a float of either sign between 2**-20 and 2**31 (in ``width`` bits)."""
    magnitudes = st.floats(2.0**-20, 2.0**31, width=width)
    signed = st.builds(lambda m, sign: sign * m, magnitudes, st.sampled_from([1.0, -1.0]))
    return st.one_of(st.just(0.0), signed)


def element_values(charset: str | None) -> dict[tuple[int, str], st.SearchStrategy[Any]]:
    """Each attribute a generated instance may carry, by (tag, VR): its values."""
    private = synthetic.GENERATED_GROUP << 16
    return {
        (0x0008002A, "DT"): datetimes(),  # Acquisition DateTime
        (0x00082218, "SQ"): st.lists(codes(charset), min_size=1, max_size=3),  # Anatomic Region
        (0x00400275, "SQ"): requested_protocols(charset),  # Request Attributes
        (0x00700084, "PN"): person_names(charset),  # Content Creator's Name
        (0x00204000, "LT"): st.text(CHARSETS[charset][0], max_size=200).map(str.rstrip),
        (0x00082111, "ST"): texts(charset, 100),  # Derivation Description
        (0x00080023, "DA"): st.dates().map(lambda d: f"{d.year:04}{d.month:02}{d.day:02}"),
        (0x00080033, "TM"): times(),  # Content Time
        (0x00200013, "IS"): st.integers(-(2**31) + 1, 2**31 - 1).map(str),  # Instance Number
        (0x00281050, "DS"): st.lists(decimal_strings(), min_size=1, max_size=3),  # Window Center
        (0x00080008, "CS"): st.lists(
            st.text("ABCDEFXYZ_0123456789", min_size=1, max_size=16), min_size=2, max_size=4
        ),  # Image Type
        (private | 0x1001, "US"): st.lists(st.integers(0, 2**16 - 1), min_size=1, max_size=12),
        # Floats of every size are the next property's: Orthanc wraps an integral one of 2**31
        # or more, and writes one below about 1e-15 as 0, and those bugs must not hide the
        # others a round trip can show.
        (private | 0x1002, "FL"): everyday_floats(32),
        (private | 0x1003, "FD"): everyday_floats(64),
        (private | 0x1004, "SL"): st.integers(-(2**31), 2**31 - 1),
        (private | 0x1005, "SS"): st.lists(st.integers(-(2**15), 2**15 - 1), max_size=3),
        (private | 0x1006, "LO"): texts(charset, 64),
    }


Drawn = tuple[str | None, list[tuple[int, str, Any]]]  # a character set, (tag, VR, value)s


@st.composite
def generated(draw: st.DrawFn) -> Drawn:
    """A character set and the attributes, with their values, of one instance."""
    charset = draw(st.sampled_from(list(CHARSETS)))
    strategies = element_values(charset)
    chosen = draw(st.lists(st.sampled_from(sorted(strategies)), min_size=1, unique=True))
    return charset, [(tag, vr, draw(strategies[(tag, vr)])) for tag, vr in sorted(chosen)]


class RoundTrip:
    """Stores generated instances into one study of the run's, each with a fresh SOP UID."""

    def __init__(self, client: Client, study: EmptyStudy) -> None:
        self.client = client
        self.study = study
        self.count = 0

    def store(self, charset: str | None, elements: list[tuple[int, str, Any]]) -> Any:
        self.count += 1
        instance = synthetic.generated_instance(
            self.study.patient_id,
            self.study.study_uid,
            f"{self.study.study_uid}.1.{self.count}",
            charset,
            elements,
        )
        response = stow(self.client, [instance], self.study.study_uid)
        expect.precondition(
            response.status_code == 200,
            f"the generated instance could be stored (answered {response.status_code})",
        )
        return instance


def _shown(charset: str | None, elements: list[tuple[int, str, Any]]) -> str:
    return f"charset {charset!r}, " + ", ".join(f"({t:08X} {vr}) {v!r}" for t, vr, v in elements)


SPECIFIC_CHARACTER_SET = "00080005"


@pytest.mark.requirement("JSON-METADATA-EQUALS-STORED")
def test_metadata_of_a_generated_instance_is_what_was_stored(
    dicomweb: Client, empty_study: EmptyStudy
) -> None:
    """Every attribute stored comes back in the metadata, with its VR and values (Annex F).
    The Specific Character Set, which tells how the stored bytes were encoded (JSON is always
    UTF-8), is held to its stored value by the next property, on its own."""
    trip = RoundTrip(dicomweb, empty_study)

    def holds(drawn: Drawn) -> None:
        instance = trip.store(*drawn)
        response, obj = expect.instance_metadata(dicomweb, instance)
        wrong = [
            what
            for tag, what in json_differences(obj, instance.dataset)
            if tag != SPECIFIC_CHARACTER_SET
        ]
        if wrong:
            raise AssertionError(
                f"{expect.request_line(response)}: {'; '.join(wrong[:5])} (stored: "
                f"{_shown(*drawn)})"
            )

    explore("metadata round trip", generated(), holds)


NUMBERS = {
    "FL": st.floats(width=32, allow_nan=False, allow_infinity=False),
    "FD": st.floats(allow_nan=False, allow_infinity=False),
    "SL": st.integers(-(2**31), 2**31 - 1),
    "UL": st.integers(0, 2**32 - 1),
    "SS": st.integers(-(2**15), 2**15 - 1),
    "US": st.integers(0, 2**16 - 1),
}


@st.composite
def numbers(draw: st.DrawFn) -> Drawn:
    """One private element of a binary number VR, one to three values of any size."""
    vr = draw(st.sampled_from(sorted(NUMBERS)))
    values = draw(st.lists(NUMBERS[vr], min_size=1, max_size=3))
    return None, [((synthetic.GENERATED_GROUP << 16) | 0x1010, vr, values)]


@pytest.mark.requirement("JSON-METADATA-EQUALS-STORED")
def test_metadata_keeps_numbers_of_every_size(dicomweb: Client, empty_study: EmptyStudy) -> None:
    """Binary numbers (FL, FD, SL, UL, SS, US) come back with their value, whatever its size:
    Annex F writes them as JSON numbers, which hold every one of them."""
    trip = RoundTrip(dicomweb, empty_study)

    def holds(drawn: Drawn) -> None:
        instance = trip.store(*drawn)
        response, obj = expect.instance_metadata(dicomweb, instance)
        wrong = [what for tag, what in json_differences(obj, instance.dataset) if tag[:4] == "0099"]
        if wrong:
            raise AssertionError(
                f"{expect.request_line(response)}: {'; '.join(wrong)} (stored: {_shown(*drawn)})"
            )

    explore("numbers", numbers(), holds)


@pytest.mark.requirement("JSON-METADATA-EQUALS-STORED")
def test_metadata_keeps_the_stored_character_set(dicomweb: Client, empty_study: EmptyStudy) -> None:
    """Specific Character Set (0008,0005) comes back with the values stored, the empty first
    value of a code-extension set ('\\ISO 2022 IR 87') included."""
    trip = RoundTrip(dicomweb, empty_study)

    def holds(charset: str) -> None:
        instance = trip.store(charset, [(0x00700084, "PN", "Yamada^Tarou")])
        response, obj = expect.instance_metadata(dicomweb, instance)
        wrong = [
            w for t, w in json_differences(obj, instance.dataset) if t == SPECIFIC_CHARACTER_SET
        ]
        if wrong:
            raise AssertionError(f"{expect.request_line(response)}: {wrong[0]}")

    explore("character sets", st.sampled_from([c for c in CHARSETS if c is not None]), holds)


@pytest.mark.requirement("WADO-INSTANCE-EXACTLY-ONE")
def test_a_generated_instance_is_retrieved_as_it_was_stored(
    dicomweb: Client, empty_study: EmptyStudy
) -> None:
    """The instance retrieved equals the one stored, element for element."""
    trip = RoundTrip(dicomweb, empty_study)

    def holds(drawn: Drawn) -> None:
        instance = trip.store(*drawn)
        try:
            expect.stored_and_retrievable(dicomweb, [instance])
        except AssertionError as error:
            raise AssertionError(f"{error} (stored: {_shown(*drawn)})") from None

    explore("retrieve round trip", generated(), holds)


# --- bad input: a client error, never a server error ------------------------------------------


@dataclass(frozen=True)
class BadRequest:
    """One malformed request, and what is wrong with it."""

    what: str
    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None

    def __repr__(self) -> str:  # what hypothesis shows as the smallest example
        shown = self.body if self.body is None or len(self.body) <= 64 else self.body[:64] + b"..."
        return f"BadRequest({self.what!r}, {self.method} {self.path} {list(self.query)}, {shown!r})"


BAD_UIDS = ["1..2", "abc", "1.2.", "01.2", "1.2.3 4", "9" * 65, "1.2.-3"]
# Invalid values of Query Parameters a search has (8.3.4): required matching keys (10.6.1.2.3),
# paging, includefield and fuzzymatching, each against its syntax (PS3.5 6.2, 8.3.4).
BAD_VALUES = {
    "StudyDate": ["2020-13-45", "abc", "20201301", "-", "20200101--20200102"],
    "StudyTime": ["25", "12:00:00:00", "abc"],
    "limit": ["-1", "abc", "1e3", ""],
    "offset": ["-1", "abc"],
    "StudyInstanceUID": BAD_UIDS,
    "includefield": ["no-such-keyword", "ZZZZZZZZ"],
    "fuzzymatching": ["maybe", "1"],
}
BAD_CONTENT_TYPES = [
    "application/json",
    "text/plain",
    "multipart/related",
    'multipart/related; type="application/dicom"',
    "multipart/related; boundary=",
]


def _related(parts: list[bytes], part_type: str = DICOM, boundary: str = "b0und4ry") -> bytes:
    return b"".join(
        b"--" + boundary.encode() + b"\r\nContent-Type: " + part_type.encode() + b"\r\n\r\n" + p
        + b"\r\n" for p in parts
    ) + b"--" + boundary.encode() + b"--\r\n"  # fmt: skip


@st.composite
def bad_requests(draw: st.DrawFn, study_uid: str, stored: bytes) -> BadRequest:
    """A malformed store, retrieve or search: the kind, then its details. (Invalid values of
    Query Parameters are the next property's: 8.3 prescribes their answer.)"""
    related = 'multipart/related; type="application/dicom"; boundary=b0und4ry'

    def posted(what: str, body: bytes, content_type: str = related) -> BadRequest:
        return BadRequest(
            what, "POST", f"studies/{study_uid}", headers=(("Content-Type", content_type),),
            body=body,
        )  # fmt: skip

    kind = draw(st.integers(0, 7))
    if kind == 0:
        cut = draw(st.integers(0, len(stored) - 1))
        # Never inside the Study Instance UID: a file cut there names another study (say "2"),
        # which this run did not create and so may not store (the guard refuses it).
        element = stored.find(b"\x20\x00\x0d\x00UI")  # (0020,000D), Explicit VR Little Endian
        if element <= cut <= element + 8 + len(study_uid) + 1:
            cut = element
        return posted(f"a file cut at byte {cut}", _related([stored[:cut]]))
    if kind == 1:
        return posted("a part that is not DICOM", _related([draw(st.binary(max_size=300))]))
    if kind == 2:
        return posted("no DICM prefix", _related([stored[:128] + b"DICN" + stored[132:]]))
    if kind == 3:
        unclosed = _related([stored]).removesuffix(b"--b0und4ry--\r\n")
        return posted("multipart without its closing delimiter", unclosed)
    if kind == 4:
        other = related.replace("b0und4ry", "other")
        return posted("a boundary the body does not use", _related([stored]), other)
    if kind == 5:
        content_type = draw(st.sampled_from(BAD_CONTENT_TYPES))
        return posted(f"Content-Type {content_type}", _related([stored]), content_type)
    if kind == 6:
        uid = draw(st.sampled_from(BAD_UIDS))
        level = draw(st.sampled_from(["", "/metadata", "/series"]))
        return BadRequest("an invalid UID in the path", "GET", f"studies/{uid}{level}")
    size = draw(st.sampled_from([4096, 8192, 16384]))
    long_value = (("PatientID", "A" * size),)
    return BadRequest(f"a {size}-character value", "GET", "studies", query=long_value)


@pytest.mark.requirement("HTTP-MALFORMED-REQUEST-4XX")
def test_malformed_requests_get_client_errors_and_harm_nothing(
    dicomweb: Client, empty_study: EmptyStudy, stored_archive: SearchArchive
) -> None:
    """Broken multipart, parts that are not DICOM, cut files, wrong Content-Types, invalid UIDs
    in the path, oversized values: never a 5xx, never no answer; the archive stored before is
    all there afterwards. No rule prescribes the answer to these (they break the user agent's
    "shall"s, 10.5.1.3-4): a 5xx is a robustness fault (SHOULD), any 4xx or an acceptance
    passes."""
    stored = synthetic.generated_instance(
        empty_study.patient_id, empty_study.study_uid, f"{empty_study.study_uid}.1.1", None, []
    ).data
    scope = Searcher(dicomweb, stored_archive)

    def answers_when_well_formed(bad: BadRequest) -> bool:
        """Whether the server answers the request's well-formed counterpart: the same path with
        an archive study's UID for an invalid one, else a search of the archive. If it does
        not, no answer is an outage (ERROR), not this request's fault."""
        try:
            if bad.method == "GET" and bad.path.startswith("studies/"):
                below = bad.path.removeprefix("studies/").partition("/")[1:]  # ("/", "metadata")
                path = f"studies/{stored_archive.study_uids[0]}{''.join(below)}"
                dicomweb.request("GET", path, headers=dict(bad.headers))
            else:
                scope.ask([])
        except NoAnswer:
            return False
        return True

    def holds(bad: BadRequest) -> None:
        try:
            response = dicomweb.request(
                bad.method, bad.path, query=bad.query, headers=dict(bad.headers), body=bad.body
            )
        except NoAnswer as error:
            if not answers_when_well_formed(bad):
                raise
            raise AssertionError(
                f"{bad.what}: {bad.method} {bad.path}: no answer ({error}), where the same "
                f"request well formed is answered"
            ) from None
        if response.status_code >= 500:
            raise AssertionError(
                f"{bad.what}: {bad.method} {response.request.path_url[:200]} answered "
                f"{response.status_code} {response.reason}, a server error for a client's mistake"
            )

    explore("bad input", bad_requests(empty_study.study_uid, stored), holds)
    left = [uid for uid in scope.ask([]) if uid in scope.entities]
    missing = sorted(set(scope.entities) - set(left))
    assert not missing, f"after the malformed requests, the archive misses {len(missing)} studies"
    expect.stored_and_retrievable(dicomweb, stored_archive.instances[:1])


@pytest.mark.requirement("HTTP-INVALID-QUERY-VALUE-400")
def test_invalid_query_values_get_400_or_are_ignored(
    dicomweb: Client, stored_archive: SearchArchive
) -> None:
    """Each invalid value of a search's Query Parameters (BAD_VALUES), asked of the archive: 400
    (reading 400: "If a supported Query Parameter has an invalid value, the origin server shall
    return a 400"), or the answer without the parameter (reading ignored: "as if the
    unsupported parameters were not present"), PS3.18 8.3. A 5xx, no answer, another 4xx, or
    another answer fits neither. Every value is asked: there are few, and each is one GET."""
    searcher = Searcher(dicomweb, stored_archive)
    without = sorted(uid for uid in searcher.ask([]) if uid in searcher.entities)
    expect.precondition(bool(without), "a search scoped to the run's search archive finds it")
    problems: list[tuple[int, str]] = []  # (0: no answer or a 5xx, 1: another 4xx, 2: 2xx)
    for key, values in BAD_VALUES.items():
        for value in values:
            asked = f"{key}={value[:20]!r}"
            try:
                response = search(dicomweb, "studies", *searcher.scope, (key, value))
            except NoAnswer as error:
                searcher.ask([])  # no answer to it either: an outage (ERROR), not this value's
                problems.append((0, f"{asked}: no answer ({error})"))
                continue
            if response.status_code == 400:
                expect.chose("400")
                continue
            if response.status_code not in (200, 204):
                answered = f"{asked}: {response.status_code} {response.reason}"
                problems.append((0 if response.status_code >= 500 else 1, answered))
                continue
            results = search_results(response)
            found = sorted(
                uid for obj in results if (uid := str(first_value(obj, STUDY_UID))) in without
            )
            if found != without:
                problems.append(
                    (2, f"{asked}: {response.status_code} with {len(found)} of the archive's "
                        f"{len(without)} studies")
                )  # fmt: skip
                continue
            expect.chose("ignored")
    worst = [what for _, what in sorted(problems, key=lambda problem: problem[0])]
    assert not worst, (
        f"GET studies (scoped to the run's search archive) with {'; '.join(worst[:4])}"
        + (f" ({len(worst)} such answers)" if len(worst) > 4 else "")
        + ": an invalid value of a Query Parameter must be answered 400, or the parameter "
        "ignored if unsupported, the answer then the one without it (PS3.18 8.3)"
    )


# --- stateful: stores, retrieves and searches against a model of the archive -----------------

Action = tuple[str, int]  # ("store", series) / ("store again", k) / ("retrieve", k) / ...
ACTIONS = st.one_of(
    st.tuples(st.just("store"), st.integers(1, 2)),
    st.tuples(st.just("store again"), st.integers(0, 5)),
    st.tuples(st.just("retrieve"), st.integers(0, 5)),
    st.tuples(st.just("search series"), st.integers(1, 2)),
    st.tuples(st.just("list instances"), st.integers(1, 2)),
    st.tuples(st.just("search study"), st.just(0)),
)
DELETES = st.one_of(
    st.tuples(st.just("delete instance"), st.integers(0, 5)),
    st.tuples(st.just("delete series"), st.integers(1, 2)),
)


# What a retrieve or a search of what was deleted may answer: 404 (Not Found), or 410 (Gone)
# from a server that knows it was deleted (PS3.18 Table 8.5-1).
GONE = (404, 410)


class Archive:
    """One example's two series in the check's study, and the model of what they must hold:
    the instances stored so far. Storing one again changes nothing the model can see. (Fresh
    series rather than fresh studies: a run then has one study to clean up, not one per
    example.)"""

    def __init__(self, client: Client, study: EmptyStudy, example: int, remains: bool) -> None:
        self.client = client
        self.study = study
        self.example = example
        self.remains = remains  # whether instances of an earlier example are in the study
        self.stored: list[Any] = []  # this example's instances there now, in the order stored
        self.deleted: list[Any] = []  # this example's instances deleted
        self.minted = 0  # instances made: a new one never takes a deleted one's UID
        self.done: list[str] = []  # the actions so far, for the failure message

    def series_number(self, n: int) -> int:
        return self.example * 10 + n

    def series_uid(self, n: int) -> str:
        return f"{self.study.study_uid}.{self.series_number(n)}"

    def expected(self, n: int) -> set[str]:
        uid = self.series_uid(n)
        return {i.sop_uid for i in self.stored if str(i.dataset.SeriesInstanceUID) == uid}

    def diverged(self, what: str) -> AssertionError:
        return AssertionError(f"after {'; '.join(self.done)}: {what}")

    def do(self, action: Action) -> None:
        kind, n = action
        self.done.append(f"{kind} {n}" if kind != "search study" else kind)
        if kind == "store":
            self.minted += 1
            uid = f"{self.series_uid(n)}.{self.minted}"
            instance = synthetic.generated_instance(
                self.study.patient_id, self.study.study_uid, uid, None, [], self.series_number(n)
            )
            self.store(instance, n, first=True)
        elif kind in ("store again", "retrieve") and self.stored:
            instance = self.stored[n % len(self.stored)]
            if kind == "store again":
                self.store(instance, self.series_of(instance), first=False)
            else:
                expect.stored_and_retrievable(self.client, [instance])
        elif kind == "search series":
            wanted = {self.series_uid(n)} if self.expected(n) else set()
            pair = ("SeriesInstanceUID", self.series_uid(n))
            self.listed("studies/{study}/series", SERIES_UID, wanted, pair)
        elif kind == "list instances":
            path = f"studies/{{study}}/series/{self.series_uid(n)}/instances"
            self.listed(path, SOP_UID, self.expected(n))
        elif kind == "search study":
            wanted = {self.study.study_uid} if self.stored or self.remains else set()
            self.listed("studies", STUDY_UID, wanted, ("StudyInstanceUID", self.study.study_uid))
        elif kind == "delete instance" and self.stored:
            instance = self.stored[n % len(self.stored)]
            self.delete(instance_path(instance), [instance])
        elif kind == "delete series" and self.expected(n):
            uid = self.series_uid(n)
            gone = [i for i in self.stored if str(i.dataset.SeriesInstanceUID) == uid]
            self.delete(f"studies/{self.study.study_uid}/series/{uid}", gone)

    def delete(self, path: str, gone: list[Any]) -> None:
        """Delete, then read back: its series no longer lists them, and a retrieve of each is
        answered 404 (Azure's documents) or 410 (PS3.18 Table 8.5-1: "If the origin server knows
        that the resource has been deleted, the 410 (Gone) status code shall be returned rather
        than 404")."""
        response = self.client.delete(path)
        if response.status_code != 204:
            raise self.diverged(f"DELETE {path} answered {response.status_code}, not 204")
        self.stored = [i for i in self.stored if i not in gone]
        self.deleted += gone
        for series in sorted({self.series_of(i) for i in gone}):
            path = f"studies/{{study}}/series/{self.series_uid(series)}/instances"
            self.listed(path, SOP_UID, self.expected(series))
        for instance in gone:
            answer = self.client.get(instance_path(instance))
            if answer.status_code not in GONE:
                raise self.diverged(
                    f"GET {instance_path(instance)} of a deleted instance answers "
                    f"{answer.status_code}, not 404 or 410"
                )

    def series_of(self, instance: Any) -> int:
        return 1 if str(instance.dataset.SeriesInstanceUID) == self.series_uid(1) else 2

    def store(self, instance: Any, n: int, first: bool) -> None:
        """Store, then read back: its series lists what the model holds."""
        response = stow(self.client, [instance], self.study.study_uid)
        if first:
            if response.status_code != 200:
                raise self.diverged(f"storing a new instance answered {response.status_code}")
            self.stored.append(instance)
        elif response.status_code >= 500:
            raise self.diverged(f"storing an instance again answered {response.status_code}")
        path = f"studies/{{study}}/series/{self.series_uid(n)}/instances"
        self.listed(path, SOP_UID, self.expected(n))

    def listed(self, path: str, tag: str, wanted: set[str], *pairs: tuple[str, str]) -> None:
        response = search(self.client, path.format(study=self.study.study_uid), *pairs)
        if response.status_code in GONE and not wanted:
            return  # nothing stored there yet, or all of it deleted: a fair answer
        results = expect.results(response)
        found = [str(first_value(obj, tag)) for obj in results]
        if sorted(found) != sorted(wanted):  # a repeated result differs too
            raise self.diverged(
                f"{expect.request_line(response)} lists {len(found)} ({sorted(found)}), "
                f"the archive holds {len(wanted)} ({sorted(wanted)})"
            )


@pytest.mark.requirement("STOW-SEARCH-FINDS-STORED")
def test_stores_retrieves_and_searches_agree_with_the_model(
    dicomweb: Client, empty_study: EmptyStudy
) -> None:
    """Sequences of stores (new instances, instances stored again), retrieves and searches at
    study, series and instance level, each example in two fresh series: every answer agrees
    with a model of what they must hold. A divergence is shrunk to the shortest sequence."""
    run_sequences(dicomweb, empty_study, "stateful", ACTIONS)


def run_sequences(client: Client, study: EmptyStudy, name: str, actions: Any) -> None:
    """Each generated sequence of ``actions``, in two fresh series of ``study``."""
    examples = iter(range(1, 1_000_000))
    remains: list[bool] = [False]  # whether instances of an earlier example are still there

    def holds(sequence: list[Action]) -> None:
        archive = Archive(client, study, next(examples), remains[0])
        try:
            for action in sequence:
                archive.do(action)
        finally:
            remains[0] = remains[0] or bool(archive.stored)

    explore(name, st.lists(actions, min_size=1, max_size=12), holds)


@pytest.mark.requirement("AZ-DELETE-INSTANCE", "AZ-DELETE-SERIES")
def test_deletes_stores_and_searches_agree_with_the_model(
    dicomweb: Client, empty_study: EmptyStudy
) -> None:
    """The sequences of the property above with deletes of instances and series among them:
    what was deleted is listed and retrieved no more, what was not is still all there, in
    whatever order the deletes, stores and searches come (a search cached past a delete shows
    only after a search before it)."""
    probe = synthetic.generated_instance(
        empty_study.patient_id, empty_study.study_uid, f"{empty_study.study_uid}.9.1", None, [], 9
    )
    expect.answered(stow(dicomweb, [probe], empty_study.study_uid), 200)
    response = dicomweb.delete(instance_path(probe))
    if response.status_code in (404, 405, 501):
        expect.not_implemented(f"no DELETE of an instance: it answered {response.status_code}")
    expect.status(response, 204)
    run_sequences(dicomweb, empty_study, "deletes", st.one_of(ACTIONS, DELETES))


# --- transfer syntaxes: what is asked for, with the same pixels ---------------------------------

# The syntaxes a retrieve may ask for; the lossless ones must give back the stored pixels.
# Not JPEG-LS: asked for JPEG-LS of small images a few dozen times, Orthanc 1.10 and 1.12 die
# (the process is gone; 1.13 survives). A run must not take down the server it judges, all the
# more one in production: every later verdict would be an outage, not a finding.
LOSSLESS = {
    "1.2.840.10008.1.2": "Implicit VR Little Endian",
    "1.2.840.10008.1.2.1": "Explicit VR Little Endian",
    "1.2.840.10008.1.2.1.99": "Deflated Explicit VR Little Endian",
    "1.2.840.10008.1.2.5": "RLE Lossless",
    "1.2.840.10008.1.2.4.70": "JPEG Lossless, First-Order Prediction",
    "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless",
}
LOSSY = {"1.2.840.10008.1.2.4.50": "JPEG Baseline (8 bit)"}
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"


@st.composite
def images(draw: st.DrawFn) -> tuple[int, int, int, bytes]:
    """Rows, columns, bits allocated (8 or 16) and the pixel bytes of a grayscale image."""
    rows, columns = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    bits = draw(st.sampled_from([8, 16]))
    size = rows * columns * bits // 8
    pixels = draw(st.binary(min_size=size, max_size=size))
    return rows, columns, bits, pixels


def pixels_of(ds: Any) -> bytes | None:
    """The decoded pixel bytes, or None when no decoder for its syntax is installed."""
    try:
        return bytes(ds.pixel_array.tobytes())
    except Exception:  # pydicom has no decoder for every compressed syntax without plugins
        return None


@pytest.mark.requirement(
    "WADO-PART-TRANSFER-SYNTAX-MATCHES", "WADO-UNSUPPORTED-TRANSFER-SYNTAX-406"
)
def test_a_retrieve_gives_the_transfer_syntax_asked_for_with_the_same_pixels(
    dicomweb: Client, empty_study: EmptyStudy
) -> None:
    """A generated image stored, then asked for in one syntax. A 200 is in that syntax, or in
    the default Explicit VR Little Endian from a server that does not support it (reading
    parameter-ignored: 8.7.7 "media type parameters, that are not valid or not supported shall
    be ignored"); the part's transfer-syntax parameter, if any, names the syntax of its file
    meta (8.7.9); and a lossless one decodes to the stored pixels (where pydicom can decode
    it). Any other status is taken as a refusal: how a syntax the server cannot produce must
    be refused is WADO-UNSUPPORTED-TRANSFER-SYNTAX-406's fixed check (Orthanc answers JPEG 2000
    with 500), and must not hide what it does serve."""
    trip = RoundTrip(dicomweb, empty_study)
    syntaxes = st.sampled_from(sorted({**LOSSLESS, **LOSSY}))

    def holds(drawn: tuple[tuple[int, int, int, bytes], str]) -> None:
        (rows, columns, bits, pixels), syntax = drawn
        image = [
            (0x00280010, "US", rows),
            (0x00280011, "US", columns),
            (0x00280100, "US", bits),
            (0x00280101, "US", bits),
            (0x00280102, "US", bits - 1),
            (0x7FE00010, "OB" if bits == 8 else "OW", pixels),
        ]
        instance = trip.store(None, image)
        response = retrieve(dicomweb, instance_path(instance), dicom_accept(syntax))
        name = {**LOSSLESS, **LOSSY}[syntax]
        asked = f"asked for {name} ({syntax}) of a {rows}x{columns} {bits}-bit image"
        if response.status_code != 200:
            response.close()
            return  # not served: refused
        found = parts(dicomweb, response)
        if len(found) != 1:
            raise AssertionError(f"{asked}: {len(found)} parts for one instance")
        declared = multipart.parse_media_type(found[0].content_type or DICOM)[1]
        ds = read_dicom(found[0].body)
        served = str(ds.file_meta.get("TransferSyntaxUID", "(none)"))
        labelled = declared.get("transfer-syntax", served)
        if labelled != served:
            raise AssertionError(
                f"{asked}: the part's transfer-syntax parameter is {labelled}, its file meta "
                f"says {served} (PS3.18 8.7.9: the parameter specifies the part's encoding)"
            )
        if served != syntax:
            if served != EXPLICIT_VR_LITTLE_ENDIAN:
                raise AssertionError(
                    f"{asked}: got {served}, neither the syntax asked for nor the default "
                    f"Explicit VR Little Endian of a server that ignores a transfer-syntax it "
                    f"does not support (PS3.18 8.7.7, 8.7.3.4)"
                )
            expect.chose("parameter-ignored")
        got = pixels_of(ds) if served in LOSSLESS else None
        if got is not None and got != pixels_of(instance.dataset):
            raise AssertionError(f"{asked}: the pixels decode differently from those stored")

    explore("transfer syntaxes", st.tuples(images(), syntaxes), holds)
