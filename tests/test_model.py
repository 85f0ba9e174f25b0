"""The reference model of search (conformance/model.py) against the standard's own rules.

Each case cites the rule of PS3.4 C.2.2.2 (matching) or PS3.18 8.3.4 (query parameters) it
encodes, with the standard's wording or example where it gives one.
"""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from conformance import model
from conformance.model import Rules, match


def entity(**attributes: tuple[str, list[object]]) -> model.Entity:
    return {model.tag_of(k): {"vr": vr, "Value": v} for k, (vr, v) in attributes.items()}


@pytest.mark.parametrize(
    ("vr", "query", "stored", "expected"),
    [
        # C.2.2.2.1: "only entities with values that match exactly the value specified"
        ("SH", "ACC1", ["ACC1"], "yes"),
        ("SH", "ACC1", ["ACC12"], "no"),
        # C.2.2.2.1: "This matching is case-sensitive" (except PN)
        ("SH", "acc1", ["ACC1"], "no"),
        ("CS", "ot", ["OT"], "no"),
        # C.2.2.2.1.1: PN "may perform literal matching that is either case-sensitive, or
        # that is insensitive to some or all aspects of case"
        ("PN", "Doe^John", ["Doe^John"], "yes"),
        ("PN", "doe^john", ["Doe^John"], "may"),
        ("PN", "Doe^Jane", ["Doe^John"], "no"),
        # C.2.2.2.3: "If the value specified for a Key Attribute in a request is zero length,
        # then all entities shall match this Attribute" (also those without a value)
        ("SH", "", [], "yes"),
        ("DA", "", ["19991231"], "yes"),
        # A multi-valued attribute matches when one of its values does (ModalitiesInStudy).
        ("CS", "SR", ["OT", "SC", "SR"], "yes"),
        ("CS", "MR", ["OT", "SC", "SR"], "no"),
    ],
)
def test_single_value_and_universal_matching(
    vr: str, query: str, stored: list[str], expected: str
) -> None:
    assert match(vr, query, stored) == expected


@pytest.mark.parametrize(
    ("query", "stored", "expected"),
    [
        # C.2.2.2.2: "Each UID in the list ... may generate a match"; PS3.18 8.3.4.1 item 3:
        # "the value is a comma-separated list of UIDs" (backslash is C-FIND's separator)
        ("1.2.3,1.2.4", ["1.2.4"], "yes"),
        ("1.2.3\\1.2.4", ["1.2.3"], "yes"),
        ("1.2.3,1.2.4", ["1.2.5"], "no"),
        # A UID is never matched by wildcards or as a prefix.
        ("1.2.*", ["1.2.3"], "no"),
        ("1.2", ["1.2.3"], "no"),
    ],
)
def test_uid_list_matching(query: str, stored: list[str], expected: str) -> None:
    assert match("UI", query, stored) == expected


@pytest.mark.parametrize(
    ("vr", "query", "stored", "expected"),
    [
        # C.2.2.2.4: '"*" shall match any sequence of characters (including a zero length
        # value) and "?" shall match any single character'
        ("SH", "AC*", ["ACC1"], "yes"),
        ("SH", "*1", ["ACC1"], "yes"),
        ("SH", "ACC1*", ["ACC1"], "yes"),  # zero length
        ("SH", "A?C1", ["ACC1"], "yes"),
        ("SH", "A?1", ["ACC1"], "no"),  # exactly one character
        ("SH", "ACC1?", ["ACC1"], "no"),
        ("SH", "a*", ["ACC1"], "no"),  # still case-sensitive
        ("CS", "S*", ["OT", "SR"], "yes"),
        ("PN", "doe*", ["Doe^John"], "may"),
        # C.2.2.2.4 Note 1: 'Wild card matching on a value of "*" is equivalent to Universal
        # Matching', so it matches an empty attribute too.
        ("SH", "*", ["ACC1"], "yes"),
        # Wildcards apply to AE, CS, LO, LT, PN, SH, ST, UC, UR, UT only: a date is not one.
        ("DA", "1999*", ["19991231"], "no"),
        # Regular expression characters are literal.
        ("LO", "A.C*", ["ABC1"], "no"),
    ],
)
def test_wildcard_matching(vr: str, query: str, stored: list[str], expected: str) -> None:
    assert match(vr, query, stored) == expected


def test_a_property_may_leave_case_to_another() -> None:
    """With any_case, a case-only difference may match (the case rule is checked on its own)."""
    assert match("SH", "ab*", ["AB1"], Rules(any_case=True)) == "may"
    assert match("SH", "ab1", ["AB1"], Rules(any_case=True)) == "may"
    assert match("SH", "ab1", ["AB1"]) == "no"


@pytest.mark.parametrize(
    ("query", "stored", "expected"),
    [
        # C.2.2.2.5.1 a: '"<date1> - <date2>" ... between <date1> and <date2> inclusive'
        ("19930822-19930826", "19930822", "yes"),
        ("19930822-19930826", "19930826", "yes"),
        ("19930822-19930826", "19930824", "yes"),
        ("19930822-19930826", "19930827", "no"),
        ("19930822-19930826", "19930821", "no"),
        ("19930822-19930822", "19930822", "yes"),
        # b: '"- <date1>" ... prior to and including <date1>'
        ("-19930822", "19930822", "yes"),
        ("-19930822", "19930823", "no"),
        # c: '"<date1> -" ... <date1> and subsequent dates'
        ("19930822-", "19930822", "yes"),
        ("19930822-", "19930821", "no"),
    ],
)
def test_date_range_matching(query: str, stored: str, expected: str) -> None:
    assert match("DA", query, [stored]) == expected


@pytest.mark.parametrize(
    ("query", "stored", "expected"),
    [
        # C.2.2.2.5.2: the same three forms for times, both ends inclusive
        ("110000-130000", "120000", "yes"),
        ("110000-130000", "130000", "yes"),
        ("110000-130000", "130000.5", "yes"),  # "13" to the second: its whole second
        ("110000-1300", "130059", "yes"),  # an end given to the minute stands for the minute
        ("110000-130000", "130001", "no"),
        ("-1100", "110000", "yes"),
        ("1101-", "110059", "no"),
    ],
)
def test_time_range_matching(query: str, stored: str, expected: str) -> None:
    assert match("TM", query, [stored]) == expected


@pytest.mark.parametrize(
    ("query", "stored", "expected"),
    [
        # C.2.2.2.5.3: the offset from UTC "shall be taken into account": 12:00 at +0100 is 11:00
        # UTC, inside 05:00-06:30 at -0500 (10:00-11:30 UTC), whatever the digits say.
        ("20200101050000-0500-20200101063000-0500", "20200101120000+0100", "yes"),
        ("20200101113001+0000-", "20200101123000+0100", "no"),  # 11:30:00 UTC, a second early
        ("-20200101103000-0100", "20200101120000+0100", "yes"),  # 11:30 UTC; 11:00 UTC
        ("20200101000000-0000-20200101235959-0000", "20191231230000-0100", "yes"),  # year end
        # No offset on one side: a local time the query cannot know; either answer conforms.
        ("20200101050000-0500-20200101063000-0500", "20200101113000", "may"),
        ("20200101110000-20200101115959", "20200101120000+0100", "may"),
        # Neither side has one: as the digits say, reduced precision standing for its span.
        ("20200101-20200101", "20200101235959.999999", "yes"),
        ("202002-202002", "20200229120000", "yes"),
        ("-2019", "20200101000000", "no"),
        # A single value with an offset is no range (its hyphen is the offset's).
        ("20200101120000-0500", "20200101120000-0500", "yes"),
    ],
)
def test_datetime_range_matching(query: str, stored: str, expected: str) -> None:
    assert match("DT", query, [stored]) == expected


def test_a_property_may_leave_the_offsets_to_another() -> None:
    """Rules(one_offset=True): only a bound and a value at the same offset are judged."""
    one = model.Rules(one_offset=True)
    query = "20200101050000-0500-20200101063000-0500"  # 10:00-11:30 UTC
    assert match("DT", query, ["20200101120000+0100"], one) == "may"  # 11:00 UTC, other offset
    assert match("DT", query, ["20200101060000-0500"], one) == "yes"
    assert match("DT", query, ["20200101063001-0500"], one) == "no"
    assert match("DT", "20200101-20200101", ["20200101235959"], one) == "yes"


def test_an_entity_without_a_value_may_match_anything() -> None:
    """PS3.4 C.2.2.1.2, as our catalog reads it (qido.toml, QIDO-MATCH-ACCESSION-NUMBER): a
    zero-length Required Key is not held against the entity; universal matching must match."""
    assert match("DA", "19900101-", [""]) == "may"
    assert match("SH", "ACC1", []) == "may"
    assert match("SH", "", []) == "yes"


def test_a_query_is_the_and_of_its_keys() -> None:
    """PS3.4 C.2.2.1.1: each key attribute narrows the match (all must match)."""

    def study(day: str, accession: str, name: str) -> model.Entity:
        return entity(
            StudyDate=("DA", [day]),
            AccessionNumber=("SH", [accession]),
            PatientName=("PN", [{"Alphabetic": name}]),
        )

    studies = {
        "1.1": study("19940101", "A1", "Roe^Jane"),
        "1.2": study("19940101", "B1", "Roe^Jane"),
        "1.3": study("19950101", "A2", "Roe^Jane"),
        "1.4": study("19950101", "C1", "Doe^John"),
    }

    answer = model.search(studies, [("StudyDate", "-19941231"), ("AccessionNumber", "A*")])
    assert answer.must == answer.may == {"1.1"}
    names = model.search(studies, [("00100010", "doe^john")])
    assert not names.must
    assert names.may == {"1.4"}


def test_an_answer_is_judged_by_what_must_and_may_match() -> None:
    answer = model.Answer(must=frozenset({"1.1"}), may=frozenset({"1.1", "1.2"}))

    assert answer.problem(["1.1"]) is None
    assert answer.problem(["1.2", "1.1"]) is None
    assert answer.problem(["1.2"]) == "misses ['1.1']"
    assert answer.problem(["1.1", "1.3"]) == "returns ['1.3'], which do not match"
    assert answer.problem(["1.1", "1.1"]) == "returns ['1.1'] more than once"


def test_paging_selects_the_slice_of_the_full_answer() -> None:
    """PS3.18 8.3.4.4: limit is the maximum returned, offset the matches skipped."""
    ordered = ["a", "b", "c", "d"]
    assert model.page(ordered, 2, 0) == ["a", "b"]
    assert model.page(ordered, 2, 3) == ["d"]
    assert model.page(ordered, None, 1) == ["b", "c", "d"]
    assert model.page(ordered, 3, 9) == []


@pytest.mark.parametrize("query", ["-", "1993-08-22", "199308-19930826"])
def test_a_malformed_range_is_refused_by_the_model(query: str) -> None:
    with pytest.raises(model.QueryError):
        match("DA", query, ["19930822"])


@pytest.mark.parametrize(
    ("name", "examples", "derandomized"), [("ci", 30, True), ("deep", 300, False)]
)
def test_the_hypothesis_setting_picks_how_hard_properties_look(
    name: str, examples: int, derandomized: bool
) -> None:
    """--dicomweb-hypothesis: ci is the same examples every run (a verdict changes only when the
    server does); neither has a deadline or writes an example database into the user's folder."""
    from hypothesis import settings

    from conformance.run import session

    before = settings.get_current_profile_name()
    try:
        session._load_hypothesis_profile(name)
        current = settings.default
        assert current is not None
        assert (current.max_examples, current.derandomize) == (examples, derandomized)
        assert current.database is None
        assert current.deadline is None
    finally:
        settings.load_profile(before)


@pytest.mark.parametrize(
    ("level", "must", "must_not"),
    [
        # 10.6.3.3.1: "All other Study level Attributes passed as match or includefield
        # parameters in the request that are supported"; "Series or Instance Level Attributes
        # contained in includefield parameters shall not be returned". Patient attributes are
        # the study's in the Study Root model.
        ("study", {"StudyDescription", "PatientName"}, {"SeriesDescription", "InstanceNumber"}),
        # 10.6.3.3.2: "Series or Study Level Attributes passed as includefield parameters in the
        # request that are supported by the origin server"; "Instance Level Attributes
        # contained in includefield parameters shall not be returned".
        ("series", {"StudyDescription", "PatientName", "SeriesDescription"}, {"InstanceNumber"}),
        # 10.6.3.3.3: "Study, Series, or Instance Level Attributes passed as includefield
        # parameters that are supported by the origin server".
        ("instance", {"StudyDescription", "PatientName", "SeriesDescription", "InstanceNumber"},
         set()),
    ],
)  # fmt: skip
def test_a_result_carries_what_includefield_names_of_its_level_and_above(
    level: model.Level, must: set[str], must_not: set[str]
) -> None:
    named = ["StudyDescription", "PatientName", "SeriesDescription", "InstanceNumber"]
    carried = model.carried(level, named)
    assert carried.must == {model.tag_of(k) for k in must}
    assert carried.must_not == {model.tag_of(k) for k in must_not}


def test_sequence_keys_match_together_in_one_item() -> None:
    """PS3.4 C.2.2.2.6: "If all the Item Key Attributes match, for at least one of the Items
    of the Attribute against which the match is performed, a successful match is generated."
    PS3.18 8.3.4.1: the key is a dotted path of keywords or tags."""

    def item(rp: str, sps: str) -> dict[str, dict[str, object]]:
        return {
            "00401001": {"vr": "SH", "Value": [rp]},
            "00400009": {"vr": "SH", "Value": [sps]},
        }

    series = {"1.1": {"00400275": {"vr": "SQ", "Value": [item("RP1", "S2"), item("RP2", "S1")]}}}
    both = [
        ("RequestAttributesSequence.RequestedProcedureID", "RP1"),
        ("00400275.00400009", "S2"),
    ]
    crossed = [
        ("RequestAttributesSequence.RequestedProcedureID", "RP1"),
        ("RequestAttributesSequence.ScheduledProcedureStepID", "S1"),
    ]

    assert model.search(series, both).must == {"1.1"}
    assert model.search(series, crossed).may == set()  # RP1 and S1 are in different items
    assert model.search(series, [("00400275.00401001", "RP2")]).must == {"1.1"}


def test_a_sample_judges_its_own_entities_and_leaves_the_rest_open() -> None:
    """Search on a sample of what the server holds (heldstudy): the sampled entities that
    match must be answered and the sampled ones that do not must not be; an entity the sample
    does not hold may be answered (its values are unknown). A whole universe leaves none open."""
    series = {
        "1": entity(Modality=("CS", ["OT"])),
        "2": entity(Modality=("CS", ["SR"])),
    }
    sampled = model.search_sample(series, [("Modality", "OT")], whole=False)
    assert sampled.must == {"1"} and sampled.known == frozenset({"1", "2"})
    assert sampled.problem(["1", "3"]) is None  # "3": not sampled, may be an OT series
    assert sampled.problem(["1", "2"]) == "returns ['2'], which do not match"
    assert sampled.problem(["3"]) == "misses ['1']"
    whole = model.search_sample(series, [("Modality", "OT")], whole=True)
    assert whole.known is None
    assert whole.problem(["1", "3"]) == "returns ['3'], which do not match"


def test_an_upper_level_entity_holds_what_its_instances_agree_on() -> None:
    """A series (or study) built from its instances: an attribute they disagree on is left
    out, so that it may match any query (the server keeps one of the values, C.2.2.1.2)."""
    instances = [
        entity(Modality=("CS", ["OT"]), PatientName=("PN", [{"Alphabetic": "Doe^John"}])),
        entity(Modality=("CS", ["OT"]), PatientName=("PN", [{"Alphabetic": "Roe^Jane"}])),
    ]
    tags = [model.tag_of("Modality"), model.tag_of("PatientName"), model.tag_of("StudyID")]
    series = model.common(instances, tags)
    assert series == {"00080060": {"vr": "CS", "Value": ["OT"]}}
    assert model.matches(series, [("PatientName", "Doe^John")]) == "may"
    assert model.matches(series, [("Modality", "SR")]) == "no"
    assert model.common([], tags) == {}


def test_an_instance_is_the_model_entity_of_its_dataset() -> None:
    """The attributes asked for, as DICOM JSON (PS3.18 F.2): a PN as its Alphabetic group, an
    IS as a number, a sequence as its items; an attribute the dataset lacks is left out."""
    ds = Dataset()
    ds.PatientName = "Doe^John"
    ds.InstanceNumber = "7"
    item = Dataset()
    item.ScheduledProcedureStepID = "S1"
    ds.RequestAttributesSequence = [item]
    got = model.entity_of(
        ds, ["PatientName", "InstanceNumber", "RequestAttributesSequence", "StudyID"]
    )
    assert got["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Doe^John"}]}
    assert model.values_of(got, "00200013") == ["7"]
    assert "00200010" not in got
    assert (
        model.matches(got, [("RequestAttributesSequence.ScheduledProcedureStepID", "S1")]) == "yes"
    )
    assert model.matches(got, [("InstanceNumber", "7"), ("PatientName", "Doe^John")]) == "yes"
