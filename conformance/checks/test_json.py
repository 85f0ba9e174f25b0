"""The DICOM JSON Model (PS3.18 Annex F), checked on real answers.

The documents are what a user agent parses every day: the metadata of the article's study and of
the synthetic study, search results, and a store response. The shape rules (tags, order, vr,
JSON types) run on each of them; the content rules, which read the metadata back against the
stored datasets, are test_json_values.py's.

The shape rules judge a document's form, never its values against stored bytes, so they run in
a read-only run too, on the data the server already holds: the first study the run reads gives
the study's metadata, a search for it and the instances of one of its series; the second study
it reads, if it is given one, stands for the synthetic study (its metadata). The documents only
the run's own synthetic study or a store can give are DISABLED there.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from itertools import pairwise
from typing import Any

import pytest
import requests
from pydicom.datadict import dictionary_VR

from conformance import expect
from conformance.annexf import (
    BINARY_VRS,
    BULKDATA_VRS,
    NUMBER_VRS,
    VALUE_FORMS,
    is_number,
)
from conformance.client import Client
from conformance.dicomweb import (
    SERIES_UID,
    ProtocolError,
    first_value,
    json_body,
    search,
    search_results,
    stow,
)
from conformance.run.fixtures import NewSynthetic
from conformance.samples import SampleStudy
from conformance.synthetic import CatalogStudy
from conformance.verdicts import disabled

VRS = frozenset(
    {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF", "OL"}
    | {"OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN", "UR"}
    | {"US", "UT", "UV"}
)
STRING_VRS = frozenset(
    {"AE", "AS", "AT", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)
PN_GROUPS = frozenset({"Alphabetic", "Ideographic", "Phonetic"})
HEX_TAG = re.compile(r"[0-9A-F]{8}")
SHOWN = 5  # offending attributes named in a failure message
IS_RANGE = range(-(2**31), 2**31)  # PS3.5 6.2: an IS is a signed 32-bit integer
UTF8 = ("ISO_IR 192", "ISO_IR 6", "")  # stored in UTF-8 (ASCII is UTF-8): nothing to transcode

PATIENT_NAME = "00100010"
SOP_UID = "00080018"


# --- the documents ----------------------------------------------------------------------------

DOCUMENTS = {
    "study-metadata": "GET studies/{samples}/metadata",
    "synthetic-metadata": "GET studies/{synthetic}/metadata",
    "studies-search": "GET studies?StudyInstanceUID={synthetic}",
    "instances-search": "GET studies/{synthetic}/series/{charset series}/instances",
    "store-response": "POST studies (a new synthetic instance)",
}
# The same documents of the data a read-only run holds (the first study it reads; the second,
# where it reads two, in place of the synthetic study); the others need the run's own synthetic
# study or a store, and are DISABLED there.
HELD_DOCUMENTS = {
    "study-metadata": "GET studies/{held study}/metadata",
    "synthetic-metadata": "GET studies/{second held study}/metadata",
    "studies-search": "GET studies?StudyInstanceUID={held study}",
    "instances-search": "GET studies/{held study}/series/{its first series}/instances",
}
METADATA_DOCUMENTS = ("study-metadata", "synthetic-metadata")


@dataclass
class Document:
    """One DICOM JSON answer: what was asked, the response and its parsed body."""

    kind: str
    response: requests.Response
    body: Any
    asked: str = ""  # how messages name the request (DOCUMENTS' line unless given)
    size: tuple[str, int] | None = None  # how many objects an array should hold, and why

    def __post_init__(self) -> None:
        self.asked = self.asked or DOCUMENTS.get(self.kind, self.kind)

    @property
    def objects(self) -> list[dict[str, Any]]:
        """The top-level DICOM JSON objects (one for an object, each item of an array)."""
        items = self.body if isinstance(self.body, list) else [self.body]
        for number, item in enumerate(items, 1):
            if not isinstance(item, dict):
                raise ProtocolError(f"item {number} of the body is {type(item).__name__}")
        return items


def parse(response: requests.Response) -> Any:
    """The body, read as every reader of the suite reads it (dicomweb.json_body)."""
    return json_body(response)


Fetch = Callable[[str], Document]


@pytest.fixture
def fetch(dicomweb: Client, held_study: str | None, request: pytest.FixtureRequest) -> Fetch:
    """Ask the server for one of the DOCUMENTS, in the check itself (so a broken answer is the
    check's FAIL, with its exchange as evidence), of the data: what the run stored, or in a
    read-only run the first study it reads (HELD_DOCUMENTS; the others are DISABLED there)."""
    get = request.getfixturevalue
    if held_study is None:
        for name in ("stored_study", "stored_synthetic", "new_synthetic"):
            get(name)  # stored before the check begins: a store that fails leaves it ERROR

    def load(kind: str) -> Document:
        if held_study is not None and kind in HELD_DOCUMENTS:
            study = held_study
            if kind == "synthetic-metadata":
                study = second_held(get("readable_studies"))
            response = held_document(dicomweb, study, kind)
            asked, size = HELD_DOCUMENTS[kind], HELD_SIZES.get(kind)
        else:  # asks for only the fixtures the kind needs: DISABLED in a read-only run
            response = stored_document(dicomweb, get, kind)
            asked, size = DOCUMENTS[kind], ARRAYS.get(kind)
        document = Document(kind, response, parse(response), asked, size)
        expect.precondition(bool(document.objects), f"{asked} gave no DICOM JSON object")
        return document

    return load


def stored_document(dicomweb: Client, get: Callable[[str], Any], kind: str) -> requests.Response:
    """The answer holding one of the DOCUMENTS of what the run stored (``get``: a fixture)."""
    if kind == "study-metadata":
        study: SampleStudy = get("stored_study")
        response = expect.get_metadata(dicomweb, f"studies/{study.study_uid}")
    elif kind == "synthetic-metadata":
        synthetic: CatalogStudy = get("stored_synthetic")
        # Text stored in ISO_IR 126: a 406 is 8.8.5's (INFO; JSON-UTF8's check records it).
        response = expect.get_metadata(dicomweb, f"studies/{synthetic.study_uid}", transcoded=True)
    elif kind == "studies-search":
        synthetic = get("stored_synthetic")
        response = search(dicomweb, "studies", StudyInstanceUID=synthetic.study_uid)
        expect.status(response, 200)
    elif kind == "instances-search":
        synthetic = get("stored_synthetic")
        series = synthetic.charset_latin.series_uid
        response = search(dicomweb, f"studies/{synthetic.study_uid}/series/{series}/instances")
        expect.status(response, 200)
    elif kind == "store-response":
        new_synthetic: NewSynthetic = get("new_synthetic")
        response = stow(dicomweb, [new_synthetic().sequence])
        expect.answered(response, 200)
    else:
        raise ValueError(kind)
    return response


def second_held(studies: list[str]) -> str:
    """The second study a read-only run reads; with only one, the document is unjudged."""
    if len(studies) < 2:
        disabled(
            "the held data lacks it: one study is read, and the synthetic study's document "
            "needs a second (--dicomweb-studies=UID,UID)"
        )
    return studies[1]


def held_document(dicomweb: Client, study_uid: str, kind: str) -> requests.Response:
    """The answer holding one of the HELD_DOCUMENTS of a study the server holds: asked as
    stored_document asks, with the series the first a series search lists. Its text stored in
    any character set: a 406 is 8.8.5's (INFO), as of the synthetic study."""
    if kind in METADATA_DOCUMENTS:
        response = expect.get_metadata(dicomweb, f"studies/{study_uid}", transcoded=True)
    elif kind == "studies-search":
        response = search(dicomweb, "studies", StudyInstanceUID=study_uid)
        expect.status(response, 200)
    elif kind == "instances-search":
        series = first_series(dicomweb, study_uid)
        response = search(dicomweb, f"studies/{study_uid}/series/{series}/instances")
        expect.status(response, 200)
    else:
        raise ValueError(kind)
    return response


def first_series(dicomweb: Client, study_uid: str) -> str:
    """The first series a search of the study's series lists: the way to a search of instances
    (a series search that fails leaves the check unjudged; the search checks judge it)."""
    response = search(dicomweb, f"studies/{study_uid}/series")
    expect.answered(response, 200)
    try:
        series = first_value(next(iter(search_results(response)), {}), SERIES_UID)
    except ProtocolError as exc:
        raise expect.PreconditionFailed(f"{expect.request_line(response)}: {exc}") from None
    expect.precondition(
        isinstance(series, str), f"{expect.request_line(response)} lists no series with its UID"
    )
    return str(series)


# --- walking a document -----------------------------------------------------------------------


@dataclass(frozen=True)
class Attribute:
    where: str  # "object 2: 00400275[1] > 00400009"
    tag: str
    value: Any  # the attribute object (a dict when the server is right)

    @property
    def vr(self) -> Any:
        return self.value.get("vr") if isinstance(self.value, dict) else None

    @property
    def values(self) -> Any:
        return self.value.get("Value") if isinstance(self.value, dict) else None

    def __str__(self) -> str:
        return f"{self.where} = {json.dumps(self.value, ensure_ascii=False)[:120]}"


def attributes_of(obj: dict[str, Any], where: str) -> Iterator[Attribute]:
    """Every attribute of a DICOM JSON object, sequence items included, depth first."""
    for tag, attribute in obj.items():
        path = f"{where}{tag}"
        found = Attribute(path, tag, attribute)
        yield found
        if found.vr == "SQ" and isinstance(found.values, list):
            for number, item in enumerate(found.values, 1):
                if isinstance(item, dict):
                    yield from attributes_of(item, f"{path}[{number}] > ")


def attributes(document: Document) -> Iterator[Attribute]:
    for number, obj in enumerate(document.objects, 1):
        yield from attributes_of(obj, f"object {number}: ")


def assert_none(bad: list[Any], rule: str, document: Document) -> None:
    """No offending attribute, or a message naming the first few."""
    shown = "; ".join(str(b) for b in bad[:SHOWN])
    more = f" (and {len(bad) - SHOWN} more)" if len(bad) > SHOWN else ""
    assert not bad, f"{document.asked}: {len(bad)} attribute(s) {rule}: {shown}{more}"


def of_vrs(document: Document, vrs: frozenset[str]) -> list[Attribute]:
    """The attributes of these VRs that have a Value array (the ones a type rule applies to)."""
    found = [a for a in attributes(document) if a.vr in vrs and isinstance(a.values, list)]
    if not found:
        expect.info(f"{document.asked} has no value of VR {', '.join(sorted(vrs))}")
    return found


# --- the shape of every document: names, order, vr, Value -------------------------------------

KINDS = pytest.mark.parametrize("kind", list(DOCUMENTS))
# The documents that hold values of the VRs a type rule is about (the others would be vacuous).
SEARCHES = ("studies-search", "instances-search")
WITH_NUMBERS = pytest.mark.parametrize("kind", [*METADATA_DOCUMENTS, "instances-search"])
WITH_NAMES_AND_DECIMALS = pytest.mark.parametrize("kind", [*METADATA_DOCUMENTS, *SEARCHES])
WITH_SEQUENCES = pytest.mark.parametrize("kind", ["synthetic-metadata", "store-response"])
WITH_BULKDATA = pytest.mark.parametrize("kind", list(METADATA_DOCUMENTS))


@pytest.mark.requirement("JSON-KEY-UPPERCASE-HEX")
@KINDS
def test_attribute_names_are_eight_uppercase_hex_digits(fetch: Fetch, kind: str) -> None:
    document = fetch(kind)
    bad = [a for a in attributes(document) if not HEX_TAG.fullmatch(a.tag)]
    assert_none(bad, "not named by 8 uppercase hex digits", document)


class Pairs(list[tuple[str, Any]]):
    """A JSON object as the list of its members, in the order they were sent."""


def ordered_objects(node: Any, where: str) -> Iterator[tuple[str, list[str]]]:
    """The member names of each DICOM JSON object (sequence items included), as sent."""
    if not isinstance(node, Pairs):  # an array (Pairs is a list too: test it first)
        for number, item in enumerate(node if isinstance(node, list) else [], 1):
            yield from ordered_objects(item, f"{where}object {number}")
        return
    yield where, [name for name, _ in node]
    for tag, attribute in node:
        if not isinstance(attribute, Pairs):
            continue
        members = dict(attribute)
        if members.get("vr") == "SQ" and isinstance(members.get("Value"), list):
            for number, item in enumerate(members["Value"], 1):
                if isinstance(item, Pairs):
                    yield from ordered_objects(item, f"{where} > {tag}[{number}]")


@pytest.mark.requirement("JSON-KEY-ORDER")
@KINDS
def test_attributes_are_in_ascending_tag_order(fetch: Fetch, kind: str) -> None:
    document = fetch(kind)
    tree = json.loads(document.response.content, object_pairs_hook=Pairs)
    bad = []
    objects = list(ordered_objects(tree, ""))
    expect.precondition(bool(objects), f"{document.asked} holds no JSON object")
    for where, names in objects:
        for before, after in pairwise(names):
            if not before < after:
                bad.append(f"{where or 'the object'}: {before} before {after}")
                break
    assert_none(bad, "out of ascending order (or repeated)", document)


@pytest.mark.requirement("JSON-NO-GROUP-LENGTH")
@KINDS
def test_no_group_length_attributes(fetch: Fetch, kind: str) -> None:
    document = fetch(kind)
    bad = [a for a in attributes(document) if len(a.tag) == 8 and a.tag[4:] == "0000"]
    assert_none(bad, "are Group Length (gggg,0000) elements", document)


@pytest.mark.requirement("JSON-VR-PRESENT")
@KINDS
def test_every_attribute_has_a_vr(fetch: Fetch, kind: str) -> None:
    document = fetch(kind)
    bad = [a for a in attributes(document) if a.vr not in VRS]
    assert_none(bad, "without a vr naming a DICOM VR", document)


def dictionary_vrs(tag: str) -> set[str] | None:
    """The VRs PS3.6 registers for a standard tag (None for private or unknown tags)."""
    if not HEX_TAG.fullmatch(tag) or int(tag[:4], 16) % 2:
        return None
    try:
        return set(dictionary_VR(int(tag, 16)).split(" or "))
    except KeyError:
        return None


@pytest.mark.requirement("JSON-VR-MATCHES-DICTIONARY")
@KINDS
def test_vr_is_the_data_dictionary_vr(fetch: Fetch, kind: str) -> None:
    document = fetch(kind)
    checked, bad = 0, []
    for attribute in attributes(document):
        allowed = dictionary_vrs(attribute.tag)
        if allowed is None or attribute.vr not in VRS:
            continue  # private or unknown tag; a missing vr is JSON-VR-PRESENT's
        checked += 1
        if attribute.vr not in allowed:
            bad.append(f"{attribute} (PS3.6: {' or '.join(sorted(allowed))})")
    expect.precondition(checked > 0, f"{document.asked} has no standard attribute with a vr")
    assert_none(bad, "with a vr other than the data dictionary's", document)


@pytest.mark.requirement("JSON-ONE-VALUE-FORM")
@KINDS
def test_at_most_one_of_value_bulkdatauri_inlinebinary(fetch: Fetch, kind: str) -> None:
    document = fetch(kind)
    bad = [
        a
        for a in attributes(document)
        if isinstance(a.value, dict) and sum(form in a.value for form in VALUE_FORMS) > 1
    ]
    assert_none(bad, "with more than one of Value, BulkDataURI, InlineBinary", document)


@pytest.mark.requirement("JSON-VALUE-ARRAY")
@KINDS
def test_value_is_an_array(fetch: Fetch, kind: str) -> None:
    document = fetch(kind)
    bad = [
        a
        for a in attributes(document)
        if isinstance(a.value, dict) and "Value" in a.value and not isinstance(a.values, list)
    ]
    assert_none(bad, "whose Value is not an array", document)


# --- JSON types per VR (Table F.2.3-1) --------------------------------------------------------


@pytest.mark.requirement("JSON-STRING-VRS")
@KINDS
def test_string_vrs_are_json_strings(fetch: Fetch, kind: str) -> None:
    document = fetch(kind)
    found = of_vrs(document, STRING_VRS)
    bad = [a for a in found if not all(v is None or isinstance(v, str) for v in a.values)]
    assert_none(bad, "of a string VR with a value that is not a JSON string", document)


@pytest.mark.requirement("JSON-NUMBER-VRS")
@WITH_NUMBERS
def test_binary_number_vrs_are_json_numbers(fetch: Fetch, kind: str) -> None:
    document = fetch(kind)
    found = of_vrs(document, NUMBER_VRS)
    bad = [a for a in found if not all(v is None or is_number(v) for v in a.values)]
    assert_none(bad, "of VR FL/FD/SL/SS/UL/US with a value that is not a JSON number", document)


def is_decimal_string(vr: str, value: Any) -> bool:
    """A DS or IS value: a JSON number (an integer of 32 bits for IS), or a string holding a
    valid DS (at most 16 bytes) or IS (at most 12 bytes, 32 bits) of PS3.5 6.2."""
    if value is None:
        return True
    if is_number(value):
        return vr == "DS" or (float(value).is_integer() and int(value) in IS_RANGE)
    if not isinstance(value, str):
        return False
    text = value.strip(" ")
    if vr == "IS":
        return (
            re.fullmatch(r"[+-]?\d+", text) is not None
            and len(text) <= 12
            and (int(text) in IS_RANGE)
        )
    try:
        return re.fullmatch(r"[0-9eE+.-]{1,16}", text) is not None and Decimal(text).is_finite()
    except InvalidOperation:
        return False


@pytest.mark.requirement("JSON-DS-IS-NUMBER-OR-STRING")
@WITH_NAMES_AND_DECIMALS
def test_ds_and_is_values_are_numbers_or_numeric_strings(fetch: Fetch, kind: str) -> None:
    document = fetch(kind)
    found = of_vrs(document, frozenset({"DS", "IS"}))
    bad = [a for a in found if not all(is_decimal_string(a.vr, v) for v in a.values)]
    assert_none(
        bad, "of VR DS/IS with a value that is neither a number nor a numeric string", document
    )


def is_person_name(value: Any) -> bool:
    if value is None:
        return True  # an empty value among several (F.2.5)
    return (
        isinstance(value, dict)
        and set(value) <= PN_GROUPS
        and all(isinstance(v, str) for v in value.values())
    )


@pytest.mark.requirement("JSON-PN-OBJECT")
@WITH_NAMES_AND_DECIMALS
def test_person_names_are_component_group_objects(fetch: Fetch, kind: str) -> None:
    document = fetch(kind)
    found = of_vrs(document, frozenset({"PN"}))
    bad = [a for a in found if not all(is_person_name(v) for v in a.values)]
    assert_none(
        bad, "of VR PN not encoded as {Alphabetic, Ideographic, Phonetic} objects", document
    )


@pytest.mark.requirement("JSON-SQ-ITEMS")
@WITH_SEQUENCES
def test_sequence_values_are_arrays_of_objects(fetch: Fetch, kind: str) -> None:
    document = fetch(kind)
    found = of_vrs(document, frozenset({"SQ"}))
    bad = [a for a in found if not all(isinstance(item, dict) for item in a.values)]
    assert_none(bad, "of VR SQ whose items are not JSON objects", document)


def binary_form_problem(attribute: Attribute) -> str | None:
    """Why an InlineBinary or BulkDataURI breaks F.2.2/F.2.6/F.2.7 (None when it does not)."""
    value, vr = attribute.value, attribute.vr
    if not isinstance(value, dict):
        return None
    if "InlineBinary" in value:
        if vr not in BINARY_VRS | {"US"}:
            return f"InlineBinary on VR {vr}"
        data = value["InlineBinary"]
        if not isinstance(data, str):
            return "InlineBinary is not a string"
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            return "InlineBinary is not base64"
    if "BulkDataURI" in value:
        if vr not in BULKDATA_VRS:
            return f"BulkDataURI on VR {vr}"
        uri = value["BulkDataURI"]
        if not isinstance(uri, str) or not re.fullmatch(r"[^\s\"<>\\^`{|}]+", uri):
            return "BulkDataURI is not a URI"
    return None


@pytest.mark.requirement("JSON-BINARY-FORMS")
@WITH_BULKDATA
def test_inline_binary_and_bulkdata_uri_are_well_formed(fetch: Fetch, kind: str) -> None:
    document = fetch(kind)
    found = [
        a
        for a in attributes(document)
        if isinstance(a.value, dict) and ("InlineBinary" in a.value or "BulkDataURI" in a.value)
    ]
    if not found:
        expect.info(f"{document.asked} has no InlineBinary and no BulkDataURI")
    bad = [f"{a}: {why}" for a in found if (why := binary_form_problem(a))]
    assert_none(bad, "with a malformed InlineBinary or BulkDataURI", document)
    if any(a.vr == "US" and "InlineBinary" in a.value for a in found):
        # F.2.2 lists InlineBinary for OB ... UN only; F.2.7's example puts it on a US.
        expect.chose("f27-us")


# --- the top level (F.2.1, Annex I) -----------------------------------------------------------

ARRAYS = {  # document -> how many objects the array should hold (other rules' business)
    "study-metadata": ("the article's study has 3 instances", 3),
    "synthetic-metadata": ("the synthetic study has 7 instances", 7),
    "studies-search": ("one study matches", 1),
    "instances-search": ("the character-set series has 3 instances", 3),
}
# Of a study the server holds, only the search by its UID says how many: the run never saw the
# instances it has.
HELD_SIZES = {"studies-search": ("one study matches", 1)}


@pytest.mark.requirement("JSON-MULTIPLE-RESULTS-ARRAY")
@pytest.mark.parametrize("kind", list(ARRAYS))
def test_results_are_one_top_level_array(fetch: Fetch, kind: str) -> None:
    document = fetch(kind)
    assert isinstance(document.body, list), (
        f"{document.asked}: the body is a JSON {type(document.body).__name__}, not an array"
    )
    objects = document.objects  # each item a JSON object
    if document.size is not None and len(objects) != document.size[1]:
        # A missing instance is JSON-METADATA-EQUALS-STORED's, a wrong match the search's.
        why = document.size[0]
        expect.info(f"{document.asked}: the array holds {len(objects)} objects; {why}")


@pytest.mark.requirement("JSON-STORE-RESPONSE-OBJECT")
def test_store_response_is_one_object(fetch: Fetch) -> None:
    document = fetch("store-response")
    assert isinstance(document.body, dict), (
        f"the store response is a JSON {type(document.body).__name__}, not one object"
    )
    assert "00081199" in document.body, "the store response has no ReferencedSOPSequence"
