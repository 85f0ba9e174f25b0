"""A reference model of search: which stored entities a conforming server returns for a query.

The model holds the run's own entities as DICOM JSON objects (what was stored, PS3.18 Annex F)
and answers a QIDO query (PS3.18 8.3.4, 10.6) with the matching rules of C-FIND (PS3.4
C.2.2.2): single value, UID list, universal, wildcard and range matching, combined by AND over
the query's keys. Where the standard leaves a choice (PN matching "may" be insensitive to case,
C.2.2.2.1.1) an entity *may* match: a conforming answer holds every entity that must match and
none that cannot, so the model answers two sets, ``must`` ⊆ answer ⊆ ``may``.

Where a profile documents a departure (Azure has no wildcards), the profile expects the property
of that rule to fail, by its requirement ID, as for every other check: neither the model nor a
check special-cases a vendor. ``Rules`` only lets one property leave a rule to another (case).

Which attributes a result carries (PS3.18 10.6.3.3): those named in includefield of its level
or a level above it, never one of a lower level; ``level_of`` says an attribute's level.

Not modelled (the properties do not ask for them): fuzzy matching, emptyvaluematching and
multiplevaluematching, includefield=all, the default attributes of Tables 10.6.3-3 to -5
(test_qido.py checks them), and combined date-time matching (C.2.2.2.5.4).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset

Level = Literal["study", "series", "instance"]
Entity = Mapping[str, Mapping[str, Any]]  # a DICOM JSON object: "GGGGEEEE" -> {"vr", "Value"}
Match = Literal["yes", "no", "may"]
WILDCARD_VRS = {"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"}  # C.2.2.2.4


@dataclass(frozen=True)
class Rules:
    """Which of the standard's rules a property leaves to another property."""

    # A match that differs only in case counts as "may" for every VR, not only PN: a property
    # of wildcards leaves case-sensitivity (C.2.2.2.1) to the property that checks it alone.
    any_case: bool = False
    # A date-time bound and value at different offsets from UTC count as "may": a property of
    # DT ranges within one offset (the digits compared as they stand) leaves the offsets
    # (C.2.2.2.5.3) to the property that checks them alone.
    one_offset: bool = False


class QueryError(ValueError):
    """A query the model cannot judge (an unknown key, a malformed range)."""


def tag_of(key: str) -> str:
    """ "00080020" for "StudyDate" or "00080020" (PS3.18 8.3.4.1: a tag or a keyword)."""
    if re.fullmatch(r"[0-9A-Fa-f]{8}", key):
        return key.upper()
    tag = tag_for_keyword(key)
    if tag is None:
        raise QueryError(f"{key!r} is neither a tag nor a keyword")
    return f"{tag:08X}"


def vr_of(tag: str, entity: Entity | None = None) -> str:
    """The VR an entity gives the attribute, else the data dictionary's."""
    if entity is not None and tag in entity and "vr" in entity[tag]:
        return str(entity[tag]["vr"])
    return str(dictionary_VR(int(tag, 16)))


def values_of(entity: Entity, tag: str) -> list[str]:
    """The attribute's values as text; a PN value is its Alphabetic group (F.2.2)."""
    attribute = entity.get(tag) or {}
    values = []
    for value in attribute.get("Value") or []:
        if isinstance(value, Mapping):
            value = value.get("Alphabetic", "")
        values.append("" if value is None else str(value))
    return values


def entity_of(dataset: Dataset, keys: Iterable[str]) -> dict[str, Mapping[str, Any]]:
    """The attributes ``keys`` (keywords or tags) a dataset holds, as DICOM JSON (Annex F):
    the model's view of an instance the run stored or the server holds."""
    found: dict[str, Mapping[str, Any]] = {}
    for tag in (tag_of(key) for key in keys):
        element = dataset.get(int(tag, 16))
        if element is not None:
            found[tag] = element.to_json_dict(lambda _: "", 1 << 30)
    return found


# --- one attribute ----------------------------------------------------------------------------


def match(vr: str, query: str, stored: Sequence[str], rules: Rules = Rules()) -> Match:
    """Whether an attribute holding ``stored`` values matches the query value (PS3.4 C.2.2.2).

    A multi-valued attribute matches when one of its values does. An entity without a value
    for the attribute may match any query (PS3.4 C.2.2.1.2, as conformance/requirements reads
    it: an unknown Required Key is not held against the entity).
    """
    if query == "":
        return "yes"  # C.2.2.2.3: universal matching
    if not any(stored):
        return "may"
    if vr == "UI":
        listed = {uid for uid in re.split(r"[,\\]", query) if uid}  # C.2.2.2.2; PS3.18 8.3.4.1
        return "yes" if listed & set(stored) else "no"
    if vr == "DT" and "-" in query and not re.fullmatch(_DT, query):
        return _best(_datetime_in_range(query, value, rules) for value in stored if value)
    if vr in ("DA", "TM") and "-" in query:
        return "yes" if any(_in_range(vr, query, value) for value in stored if value) else "no"
    if vr in WILDCARD_VRS and ("*" in query or "?" in query):
        if query.strip("*") == "":
            return "yes"  # C.2.2.2.4 Note 1: "*" alone is universal matching
        return _best(_wildcard(vr, query, value, rules) for value in stored)
    return _best(_single(vr, query, value, rules) for value in stored)


def _best(matches: Iterable[Match]) -> Match:
    found = set(matches)
    return "yes" if "yes" in found else "may" if "may" in found else "no"


def _single(vr: str, query: str, value: str, rules: Rules) -> Match:
    """C.2.2.2.1: an exact match, case-sensitive but for PN, where insensitivity is allowed."""
    if _normal(vr, value) == _normal(vr, query):
        return "yes"
    if (vr == "PN" or rules.any_case) and value.casefold() == query.casefold():
        return "may"  # C.2.2.2.1.1
    return "no"


def _wildcard(vr: str, query: str, value: str, rules: Rules) -> Match:
    """C.2.2.2.4: "*" any sequence (also empty), "?" exactly one character."""
    pattern = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in query)
    if re.fullmatch(pattern, value, re.DOTALL):
        return "yes"
    if (vr == "PN" or rules.any_case) and re.fullmatch(pattern, value, re.DOTALL | re.IGNORECASE):
        return "may"  # C.2.2.2.1.1 applies to wildcard matching of names too
    return "no"


def _normal(vr: str, value: str) -> str:
    """Values compare without the padding their VR allows (PS3.5 6.2: trailing spaces)."""
    return value.rstrip(" ") if vr != "UI" else value.rstrip("\0")


def _in_range(vr: str, query: str, value: str) -> bool:
    """C.2.2.2.5.1 (DA) and C.2.2.2.5.2 (TM): both ends inclusive, either end open."""
    low, sep, high = query.partition("-")
    if not sep or (not low and not high):
        raise QueryError(f"{query!r} is not a range")
    key = _date_key if vr == "DA" else _time_key
    stored = key(value)
    return (not low or key(low) <= stored) and (not high or stored <= key(high, upper=True))


def _date_key(value: str, upper: bool = False) -> str:
    if not re.fullmatch(r"\d{8}", value):
        raise QueryError(f"{value!r} is not a date (YYYYMMDD)")
    return value


def _time_key(value: str, upper: bool = False) -> str:
    """HHMMSS.FFFFFF; a time given to fewer places stands for its whole span (C.2.2.2.5.2)."""
    found = re.fullmatch(r"(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?", value.replace(":", ""))
    if not found:
        raise QueryError(f"{value!r} is not a time (HHMMSS.FFFFFF)")
    hours, minutes, seconds, fraction = found.groups()
    fill = "9" if upper else "0"
    minutes = minutes or ("59" if upper else "00")
    seconds = seconds or ("59" if upper else "00")
    return f"{hours}{minutes}{seconds}.{(fraction or '').ljust(6, fill)}"


# A DT value: YYYY[MM[DD[HH[MM[SS[.F{1,6}]]]]]] and an optional offset from UTC, &ZZXX (PS3.5
# Table 6.2-1). A negative offset has a hyphen too, so a range is split where both sides are
# date-times (fo-dicom#682 split "...-0700-..." at the wrong hyphen).
_DT = r"\d{4,14}(?:\.\d{1,6})?(?:[+-]\d{4})?"


def _datetime_in_range(query: str, value: str, rules: Rules = Rules()) -> Match:
    """C.2.2.2.5.3: a DT range, "the offset from Universal Coordinated Time [...] taken into
    account for the purposes of the match": each bound and the value
    compared as instants. A bound or value without an offset is in a local time the query
    cannot know (the server's, or the instance's Timezone Offset From UTC), so where only one
    side of a comparison has an offset, the value *may* match: neither answer is wrong."""
    found = re.fullmatch(f"({_DT})?-({_DT})?", query)
    if not found or not any(found.groups()):
        raise QueryError(f"{query!r} is not a date-time range")
    low, high = found.groups()
    stored = instant(value, upper=False), instant(value, upper=True)
    results: list[Match] = []
    for bound, is_upper in ((low, False), (high, True)):
        if bound is None:
            continue
        edge = instant(bound, upper=is_upper)
        if (edge[1] is None) != (stored[0][1] is None) or (
            rules.one_offset and edge[1] != stored[0][1]
        ):
            results.append("may")
            continue
        # The value's span [start, end] lies at least partly inside the bound.
        inside = stored[0][0] <= edge[0] if is_upper else edge[0] <= stored[1][0]
        results.append("yes" if inside else "no")
    return "no" if "no" in results else "may" if "may" in results else "yes"


def instant(value: str, upper: bool) -> tuple[datetime, int | None]:
    """The first (or, ``upper``, the last) microsecond a DT value stands for, in UTC where it
    has an offset, and that offset in minutes (None: it has none)."""
    found = re.fullmatch(r"(\d{4,14})(?:\.(\d{1,6}))?(?:([+-])(\d{2})(\d{2}))?", value)
    if not found:
        raise QueryError(f"{value!r} is not a date-time (YYYYMMDDHHMMSS.FFFFFF&ZZXX)")
    digits, fraction, sign, hours, minutes = found.groups()
    if len(digits) % 2 or (fraction and len(digits) != 14):
        raise QueryError(f"{value!r} is not a date-time (YYYYMMDDHHMMSS.FFFFFF&ZZXX)")
    lowest, highest = "00000101000000", "99991231235959"
    text = digits + (lowest if not upper else highest)[len(digits) :]
    micro = (fraction or "").ljust(6, "9" if upper else "0")
    if upper and len(digits) in (4, 6):  # the last day of the month or year, not day 31 always
        moment = datetime.strptime(text[:6] + "01" + text[8:], "%Y%m%d%H%M%S")
        moment = (moment.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    else:
        moment = datetime.strptime(text, "%Y%m%d%H%M%S")
    moment = moment.replace(microsecond=int(micro))
    if sign is None:
        return moment, None
    offset = (int(hours) * 60 + int(minutes)) * (1 if sign == "+" else -1)
    return moment - timedelta(minutes=offset), offset


# --- a query ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What a conforming search answers: every ``must`` entity, and only ``may`` ones.

    ``known`` is None where the model holds every entity the search ranges over. Where it
    holds a sample (a study the server holds, read in part), it names the entities sampled:
    one of them outside ``may`` cannot be in the answer, any other entity may be."""

    must: frozenset[str]
    may: frozenset[str]
    known: frozenset[str] | None = None

    def problem(self, answered: Iterable[str], name: Callable[[str], str] = str) -> str | None:
        """What is wrong with an answer naming ``answered`` entities (None: it conforms);
        ``name`` says how the message names an entity."""
        got = list(answered)
        missing = sorted(name(u) for u in self.must - set(got))
        judged = set(got) if self.known is None else set(got) & self.known
        extra = sorted(name(u) for u in judged - self.may)
        repeated = sorted({name(u) for u in got if got.count(u) > 1})
        said = []
        if missing:
            said.append(f"misses {missing}")
        if extra:
            said.append(f"returns {extra}, which do not match")
        if repeated:
            said.append(f"returns {repeated} more than once")
        return "; ".join(said) or None


def matches(entity: Entity, pairs: Sequence[tuple[str, str]], rules: Rules = Rules()) -> Match:
    """Whether ``entity`` matches every pair (AND). A key ``Sequence.Key`` (PS3.18 8.3.4.1)
    matches inside a sequence: "If all the Item Key Attributes match, for at least one of the
    Items [...] a successful match is generated" (PS3.4 C.2.2.2.6): the keys of one sequence
    are matched together, against one item at a time."""
    found: list[Match] = []
    nested: dict[str, list[tuple[str, str]]] = {}
    for key, value in pairs:
        head, dot, rest = key.partition(".")
        if dot:
            nested.setdefault(tag_of(head), []).append((rest, value))
            continue
        tag = tag_of(key)
        found.append(match(vr_of(tag, entity), value, values_of(entity, tag), rules))
    for tag, keys in nested.items():
        items = (entity.get(tag) or {}).get("Value") or []
        found.append(_best(matches(item, keys, rules) for item in items) if items else "may")
    return "no" if "no" in found else "may" if "may" in found else "yes"


def search(
    entities: Mapping[str, Entity],
    pairs: Sequence[tuple[str, str]],
    rules: Rules = Rules(),
) -> Answer:
    """The entities (by their UID, the key of ``entities``) that match every pair (AND)."""
    found = {uid: matches(entity, pairs, rules) for uid, entity in entities.items()}
    must = frozenset(uid for uid, m in found.items() if m == "yes")
    return Answer(must, frozenset(uid for uid, m in found.items() if m != "no"))


def search_sample(
    entities: Mapping[str, Entity],
    pairs: Sequence[tuple[str, str]],
    whole: bool,
    rules: Rules = Rules(),
) -> Answer:
    """``search`` over what the data holds of the entities a search ranges over: all of them
    (``whole``), or a sample, whose matches must be answered and whose other entities must not,
    while an entity the sample does not hold may be answered or not (the model cannot tell)."""
    answer = search(entities, pairs, rules)
    return answer if whole else Answer(answer.must, answer.may, frozenset(entities))


def common(entities: Sequence[Entity], tags: Iterable[str]) -> dict[str, Mapping[str, Any]]:
    """The attributes (of ``tags``) every entity holds with the same value: what an entity of
    an upper level built from its instances holds. One the instances disagree on is left out,
    so that it *may* match any query (which of their values the server keeps is its own)."""
    kept: dict[str, Mapping[str, Any]] = {}
    for tag in tags:
        found = [entity.get(tag) for entity in entities]
        first = found[0] if found else None
        if first is not None and first.get("Value") and all(f == first for f in found):
            kept[tag] = first
    return kept


def page(ordered: Sequence[str], limit: int | None, offset: int) -> list[str]:
    """The page a limit and offset select from the full ordered answer (PS3.18 8.3.4.4)."""
    end = None if limit is None else offset + limit
    return list(ordered[offset:end])


# --- what a result carries --------------------------------------------------------------------

# The study and series attributes of the Study Root model (PS3.4 C.6.2.1.2, Tables C.6-5 and
# C.6-6) and of PS3.18 Tables 10.6.3-3 and -4 that the model's data carries; the patient
# attributes (group 0010) are study attributes there too. Any other attribute is an instance's.
STUDY_KEYWORDS = {
    "StudyDate", "StudyTime", "AccessionNumber", "ModalitiesInStudy", "ReferringPhysicianName",
    "StudyInstanceUID", "StudyID", "StudyDescription", "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
}  # fmt: skip
SERIES_KEYWORDS = {
    "Modality", "SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "BodyPartExamined",
    "RequestAttributesSequence", "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime", "NumberOfSeriesRelatedInstances",
}  # fmt: skip
_LEVEL_TAGS = {
    level: {tag_of(keyword) for keyword in keywords}
    for level, keywords in (("study", STUDY_KEYWORDS), ("series", SERIES_KEYWORDS))
}
LEVELS: tuple[Level, ...] = ("study", "series", "instance")


def level_of(tag: str) -> Level:
    """The level an attribute belongs to (study, series or instance)."""
    if tag.startswith("0010") or tag in _LEVEL_TAGS["study"]:
        return "study"
    return "series" if tag in _LEVEL_TAGS["series"] else "instance"


@dataclass(frozen=True)
class Carried:
    """Of the attributes a query names, those each result must carry and those it must not."""

    must: frozenset[str]
    must_not: frozenset[str]


def carried(level: Level, named: Iterable[str]) -> Carried:
    """A result of ``level`` carries the supported attributes named of its own level and of
    the levels above it, and none of a lower level (PS3.18 10.6.3.3): a study result "All other
    Study level Attributes passed as match or includefield parameters [...] that are supported";
    a series result "Series or Study Level Attributes passed as includefield parameters in the
    request that are supported" (10.6.3.3.2); an instance result "Study, Series, or Instance
    Level Attributes passed as includefield parameters that are supported" (10.6.3.3.3); and
    "[lower] Level Attributes contained in includefield parameters shall not be returned".
    Which attributes are supported is the server's choice: ``must`` is what a result carries
    if the server supports it (the includefield property asks each one alone first)."""
    tags = {tag_of(key) for key in named}
    depth = LEVELS.index(level)
    return Carried(
        must=frozenset(t for t in tags if LEVELS.index(level_of(t)) <= depth),
        must_not=frozenset(t for t in tags if LEVELS.index(level_of(t)) > depth),
    )
