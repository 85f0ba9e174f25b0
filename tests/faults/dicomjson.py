"""Faults of the json checks (see tests/faults/__init__.py): bugs of DICOM JSON writers.

Each one is a bug seen in DICOMweb servers or their JSON writers: a serializer that loses the tag
order, a VR table off by one type, names flattened to strings, numbers quoted, a metadata cache
that normalizes names. They rewrite every DICOM JSON answer (metadata, search results, store
responses) unless they say otherwise; test_catalog_faults.py proves them. The media type of those
answers is tests/faults/http.py's.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

from . import (
    Answer,
    Exchange,
    Forward,
    JsonObject,
    each_attribute,
    each_object,
    fault,
    is_dicom_json,
    is_metadata,
    of_vr,
    rewrite_json,
)
from .http import with_header

# --- names and order --------------------------------------------------------------------------


@fault(
    "json-keys-out-of-order",
    catches=[
        f"test_json.py::test_attributes_are_in_ascending_tag_order[{kind}]"
        for kind in (
            "study-metadata",
            "synthetic-metadata",
            "studies-search",
            "instances-search",
            "store-response",
        )
    ],
)
def json_keys_out_of_order(request: Exchange, forward: Forward) -> Answer:
    """A serializer that writes a hash map: attributes in reverse (any non-sorted) order."""
    return rewrite_json(request, forward, lambda body: each_object(body, reversed_object))


def reversed_object(obj: JsonObject) -> JsonObject:
    return dict(reversed(list(obj.items())))


FOUR_KINDS = ("study-metadata", "synthetic-metadata", "studies-search", "instances-search")


@fault(
    "json-lowercase-tags",
    catches=[
        f"test_json.py::test_attribute_names_are_eight_uppercase_hex_digits[{kind}]"
        for kind in FOUR_KINDS  # the store response's tags have no letter to lower
    ],
)
def json_lowercase_tags(request: Exchange, forward: Forward) -> Answer:
    """Tags written with '%08x' instead of '%08X'."""
    return rewrite_json(
        request,
        forward,
        lambda body: each_object(body, lambda o: {k.lower(): v for k, v in o.items()}),
    )


@fault(
    "json-tags-with-comma",
    catches=[
        f"test_json.py::test_attribute_names_are_eight_uppercase_hex_digits[{kind}]"
        for kind in (*FOUR_KINDS, "store-response")
    ],
)
def json_tags_with_comma(request: Exchange, forward: Forward) -> Answer:
    """Tags in the 'gggg,eeee' form of a server's native JSON API, leaked into DICOMweb."""
    return rewrite_json(
        request,
        forward,
        lambda body: each_object(body, lambda o: {f"{k[:4]},{k[4:]}": v for k, v in o.items()}),
    )


@fault(
    "json-group-length",
    catches=[
        f"test_json.py::test_no_group_length_attributes[{kind}]"
        for kind in (
            "study-metadata",
            "synthetic-metadata",
            "studies-search",
            "instances-search",
            "store-response",
        )
    ],
)
def json_group_length(request: Exchange, forward: Forward) -> Answer:
    """A converter that keeps the (0008,0000) Group Length of the stored file."""

    def add(obj: JsonObject) -> JsonObject:
        return {"00080000": {"vr": "UL", "Value": [len(obj)]}, **obj}

    return rewrite_json(request, forward, lambda body: each_object(body, add))


# --- vr ---------------------------------------------------------------------------------------


@fault(
    "json-vr-missing-when-empty",
    catches=[
        "test_json.py::test_every_attribute_has_a_vr[study-metadata]",
        "test_json.py::test_every_attribute_has_a_vr[synthetic-metadata]",
        "test_json.py::test_every_attribute_has_a_vr[store-response]",
        "test_json.py::test_empty_attributes_are_kept_without_value",
        "test_json.py::test_metadata_values_equal_the_stored_values[samples]",
        "test_json.py::test_metadata_values_equal_the_stored_values[synthetic]",
    ],
)
def json_vr_missing_when_empty(request: Exchange, forward: Forward) -> Answer:
    """A writer that only emits vr next to a Value: empty attributes come out as {}."""

    def drop(tag: str, attribute: JsonObject) -> None:
        if not any(form in attribute for form in ("Value", "BulkDataURI", "InlineBinary")):
            attribute.pop("vr", None)

    return rewrite_json(request, forward, lambda body: each_attribute(body, drop))


@fault(
    "json-us-written-as-ss",
    catches=[
        "test_json.py::test_vr_is_the_data_dictionary_vr[study-metadata]",
        "test_json.py::test_vr_is_the_data_dictionary_vr[synthetic-metadata]",
        *(
            f"test_json_values.py::test_metadata_values_equal_the_stored_values[{of}]"
            for of in (
                "samples",
                "synthetic",
                "samples-series",
                "synthetic-series",
                "samples-instance",
                "synthetic-instance",
            )
        ),
    ],
)
def json_us_written_as_ss(request: Exchange, forward: Forward) -> Answer:
    """A VR table that maps unsigned shorts to SS (Rows, Columns, BitsAllocated, ...)."""

    def signed(tag: str, attribute: JsonObject) -> None:
        if attribute.get("vr") == "US":
            attribute["vr"] = "SS"

    return rewrite_json(request, forward, lambda body: each_attribute(body, signed))


@fault(
    "json-vr-key-uppercase",
    catches=[
        f"test_json.py::test_every_attribute_has_a_vr[{kind}]"
        for kind in (*FOUR_KINDS, "store-response")
    ],
)
def json_vr_key_uppercase(request: Exchange, forward: Forward) -> Answer:
    """A serializer with its own naming policy: "VR" where DICOM JSON says "vr"."""

    def rename(tag: str, attribute: JsonObject) -> None:
        if "vr" in attribute:
            attribute["VR"] = attribute.pop("vr")

    return rewrite_json(request, forward, lambda body: each_attribute(body, rename))


@fault(
    "json-retrieve-url-vr-ut",
    catches=[
        f"test_json.py::test_vr_is_the_data_dictionary_vr[{kind}]"
        for kind in ("studies-search", "instances-search", "store-response")
    ],
)
def json_retrieve_url_vr_ut(request: Exchange, forward: Forward) -> Answer:
    """Retrieve URL (0008,1190) with its VR of before 2016, UT (PS3.18 Annex I: now UR)."""

    def old_vr(tag: str, attribute: JsonObject) -> None:
        if tag == "00081190" and attribute.get("vr") == "UR":
            attribute["vr"] = "UT"

    return rewrite_json(request, forward, lambda body: each_attribute(body, old_vr))


@fault(
    "json-null-members",
    catches=[
        *(
            f"test_json.py::test_at_most_one_of_value_bulkdatauri_inlinebinary[{kind}]"
            for kind in (*FOUR_KINDS, "store-response")
        ),
        "test_json.py::test_empty_attributes_are_kept_without_value",
    ],
)
def json_null_members(request: Exchange, forward: Forward) -> Answer:
    """An attribute class serialized with all its fields, the unset ones as null:
    {"vr": "UI", "Value": [...], "BulkDataURI": null, "InlineBinary": null}."""

    def all_fields(tag: str, attribute: JsonObject) -> None:
        for form in ("Value", "BulkDataURI", "InlineBinary"):
            attribute.setdefault(form, None)

    return rewrite_json(request, forward, lambda body: each_attribute(body, all_fields))


# --- JSON types -------------------------------------------------------------------------------


@fault(
    "json-value-not-array",
    catches=[
        f"test_json.py::test_value_is_an_array[{kind}]"
        for kind in (
            "study-metadata",
            "synthetic-metadata",
            "studies-search",
            "instances-search",
            "store-response",
        )
    ],
)
def json_value_not_array(request: Exchange, forward: Forward) -> Answer:
    """Single values written bare: "Value": "OT" instead of "Value": ["OT"]."""

    def unwrap(tag: str, attribute: JsonObject) -> None:
        value = attribute.get("Value")
        if attribute.get("vr") != "SQ" and isinstance(value, list) and len(value) == 1:
            attribute["Value"] = value[0]

    return rewrite_json(request, forward, lambda body: each_attribute(body, unwrap))


@fault(
    "json-numbers-as-strings",
    catches=[
        f"test_json.py::test_binary_number_vrs_are_json_numbers[{kind}]"
        for kind in ("study-metadata", "synthetic-metadata", "instances-search")
    ],
)
def json_numbers_as_strings(request: Exchange, forward: Forward) -> Answer:
    """US/UL/SS/SL/FL/FD values quoted, as if every value were a DICOM string."""

    def quote(attribute: JsonObject) -> None:
        attribute["Value"] = [v if v is None else str(v) for v in attribute["Value"]]

    change = of_vr({"US", "UL", "SS", "SL", "FL", "FD"}, quote)
    return rewrite_json(request, forward, lambda body: each_attribute(body, change))


@fault(
    "json-nan-for-unread-numbers",
    catches=[
        *(
            f"test_json.py::test_binary_number_vrs_are_json_numbers[{kind}]"
            for kind in ("study-metadata", "synthetic-metadata", "instances-search")
        ),
        "test_json.py::test_metadata_values_equal_the_stored_values[samples]",
        "test_json.py::test_metadata_values_equal_the_stored_values[synthetic]",
    ],
)
def json_nan_for_unread_numbers(request: Exchange, forward: Forward) -> Answer:
    """Binary numbers held as doubles, one the server failed to read kept as NaN, and written
    by a JSON library that allows it (Python's json.dumps, Jackson's ALLOW_NON_NUMERIC_NUMBERS):
    the literal NaN, which is no JSON number (RFC 8259 6). Here the first value of each
    attribute of VR US, SS, UL, SL, FL or FD. (The samples hold no empty FL/FD, where a writer
    would most likely do it.)"""

    def unread(attribute: JsonObject) -> None:
        attribute["Value"] = [math.nan, *attribute["Value"][1:]]

    change = of_vr({"US", "UL", "SS", "SL", "FL", "FD"}, unread)
    return rewrite_json(request, forward, lambda body: each_attribute(body, change))


@fault(
    "json-ds-decimal-comma",
    catches=[
        "test_json.py::test_ds_and_is_values_are_numbers_or_numeric_strings[study-metadata]",
        "test_json.py::test_ds_and_is_values_are_numbers_or_numeric_strings[synthetic-metadata]",
        "test_json.py::test_multiple_values_are_separate_array_entries",
        "test_json.py::test_metadata_values_equal_the_stored_values[samples]",
        "test_json.py::test_metadata_values_equal_the_stored_values[synthetic]",
    ],
)
def json_ds_decimal_comma(request: Exchange, forward: Forward) -> Answer:
    """Decimal strings formatted in a locale with a decimal comma: "1,0"."""

    def localize(attribute: JsonObject) -> None:
        attribute["Value"] = [
            v if v is None else f"{float(v):.1f}".replace(".", ",") for v in attribute["Value"]
        ]

    change = of_vr({"DS"}, localize)
    return rewrite_json(request, forward, lambda body: each_attribute(body, change))


@fault(
    "json-values-nested-arrays",
    catches=[
        f"test_json.py::test_string_vrs_are_json_strings[{kind}]"
        for kind in (*FOUR_KINDS, "store-response")
    ],
)
def json_values_nested_arrays(request: Exchange, forward: Forward) -> Answer:
    """Each string value wrapped in an array of its own (a value-multiplicity bug):
    "Value": [["OT"]]."""

    def nest(tag: str, attribute: JsonObject) -> None:
        value = attribute.get("Value")
        if isinstance(value, list):
            attribute["Value"] = [[v] if isinstance(v, str) else v for v in value]

    return rewrite_json(request, forward, lambda body: each_attribute(body, nest))


@fault(
    "json-is-as-decimal-string",
    catches=[
        f"test_json.py::test_ds_and_is_values_are_numbers_or_numeric_strings[{kind}]"
        for kind in FOUR_KINDS
    ],
)
def json_is_as_decimal_string(request: Exchange, forward: Forward) -> Answer:
    """Integer strings kept as doubles and printed as such: "1.0" for IS 1."""

    def as_double(attribute: JsonObject) -> None:
        attribute["Value"] = [v if v is None else f"{float(v):.1f}" for v in attribute["Value"]]

    change = of_vr({"IS"}, as_double)
    return rewrite_json(request, forward, lambda body: each_attribute(body, change))


def flat_name(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    groups = [value.get(g, "") for g in ("Alphabetic", "Ideographic", "Phonetic")]
    return "=".join(groups).rstrip("=")


@fault(
    "json-pn-as-string",
    catches=[
        *(
            f"test_json.py::test_person_names_are_component_group_objects[{kind}]"
            for kind in FOUR_KINDS
        ),
        "test_json.py::test_ideographic_and_phonetic_name_groups_come_back",
        *(
            f"test_json.py::test_names_in_other_character_sets_come_back_as_utf8[{name}]"
            for name in ("charset_latin", "charset_greek", "charset_ideographic")
        ),
        "test_json.py::test_metadata_values_equal_the_stored_values[samples]",
        "test_json.py::test_metadata_values_equal_the_stored_values[synthetic]",
    ],
)
def json_pn_as_string(request: Exchange, forward: Forward) -> Answer:
    """Person names in their DICOM string form ("Yamada^Tarou=山田^太郎=..."), not objects."""

    def flatten(attribute: JsonObject) -> None:
        attribute["Value"] = [flat_name(v) for v in attribute["Value"]]

    change = of_vr({"PN"}, flatten)
    return rewrite_json(request, forward, lambda body: each_attribute(body, change))


@fault(
    "json-sequence-items-as-strings",
    catches=[
        "test_json.py::test_sequence_values_are_arrays_of_objects[synthetic-metadata]",
        "test_json.py::test_sequence_values_are_arrays_of_objects[store-response]",
        "test_json.py::test_sequence_item_holds_the_stored_item_values",
        "test_json.py::test_metadata_values_equal_the_stored_values[synthetic]",
    ],
)
def json_sequence_items_as_strings(request: Exchange, forward: Forward) -> Answer:
    """Sequence items encoded twice: each item a JSON string holding the item object."""

    def stringify(attribute: JsonObject) -> None:
        attribute["Value"] = [
            json.dumps(i) if isinstance(i, dict) else i for i in attribute["Value"]
        ]

    change = of_vr({"SQ"}, stringify)

    # Outermost objects only: the items are turned into strings, so there is nothing inside.
    def apply(body: Any) -> Any:
        objects = body if isinstance(body, list) else [body]
        for obj in objects:
            if isinstance(obj, dict):
                for tag, attribute in obj.items():
                    if isinstance(attribute, dict):
                        change(tag, attribute)
        return body

    return rewrite_json(request, forward, apply)


@fault(
    "json-at-as-tag-tuple",
    catches=[
        "test_json.py::test_attribute_tag_value_is_eight_uppercase_hex_digits",
        "test_json.py::test_metadata_values_equal_the_stored_values[synthetic]",
    ],
)
def json_at_as_tag_tuple(request: Exchange, forward: Forward) -> Answer:
    """Attribute Tag values written as "(0018,2001)"."""

    def tuple_form(attribute: JsonObject) -> None:
        attribute["Value"] = [
            f"({v[:4]},{v[4:]})" if isinstance(v, str) and len(v) == 8 else v
            for v in attribute["Value"]
        ]

    change = of_vr({"AT"}, tuple_form)
    return rewrite_json(request, forward, lambda body: each_attribute(body, change))


@fault(
    "metadata-inline-binary-base64url",
    catches=[
        "test_json.py::test_inline_binary_and_bulkdata_uri_are_well_formed[study-metadata]",
        "test_json.py::test_inline_binary_and_bulkdata_uri_are_well_formed[synthetic-metadata]",
    ],
)
def metadata_inline_binary_base64url(request: Exchange, forward: Forward) -> Answer:
    """Pixel data inlined with the URL-safe base64 alphabet ('-' and '_'), not RFC 4648 base64."""
    inline = base64.urlsafe_b64encode(b"\xfb\xef\xff" * 8).decode()

    def inline_pixels(tag: str, attribute: JsonObject) -> None:
        if tag == "7FE00010" and "BulkDataURI" in attribute:
            del attribute["BulkDataURI"]
            attribute["InlineBinary"] = inline

    return rewrite_json(
        request, forward, lambda body: each_attribute(body, inline_pixels), only=is_metadata
    )


# --- empty and multiple values ----------------------------------------------------------------


@fault(
    "json-empty-value-as-empty-string",
    catches=[
        "test_json.py::test_empty_attributes_are_kept_without_value",
        "test_json.py::test_metadata_values_equal_the_stored_values[samples]",
        "test_json.py::test_metadata_values_equal_the_stored_values[synthetic]",
    ],
)
def json_empty_value_as_empty_string(request: Exchange, forward: Forward) -> Answer:
    """Empty attributes written as "Value": [""]."""

    def fill(tag: str, attribute: JsonObject) -> None:
        if attribute.get("vr") not in (None, "SQ") and not any(
            form in attribute for form in ("Value", "BulkDataURI", "InlineBinary")
        ):
            attribute["Value"] = [""]

    return rewrite_json(request, forward, lambda body: each_attribute(body, fill))


@fault(
    "json-empty-value-as-empty-array",
    catches=[
        "test_json.py::test_empty_attributes_are_kept_without_value",
        "test_json.py::test_metadata_values_equal_the_stored_values[samples]",
        "test_json.py::test_metadata_values_equal_the_stored_values[synthetic]",
    ],
)
def json_empty_value_as_empty_array(request: Exchange, forward: Forward) -> Answer:
    """Empty attributes written as "Value": [] (a model whose value list is always serialized),
    where F.2.5 wants no "Value" at all."""

    def empty(tag: str, attribute: JsonObject) -> None:
        if attribute.get("vr") not in (None, "SQ") and not any(
            form in attribute for form in ("Value", "BulkDataURI", "InlineBinary")
        ):
            attribute["Value"] = []

    return rewrite_json(request, forward, lambda body: each_attribute(body, empty))


@fault(
    "json-multiple-values-joined",
    catches=[
        "test_json.py::test_multiple_values_are_separate_array_entries",
        "test_json.py::test_metadata_values_equal_the_stored_values[samples]",
        "test_json.py::test_metadata_values_equal_the_stored_values[synthetic]",
    ],
)
def json_multiple_values_joined(request: Exchange, forward: Forward) -> Answer:
    """Multi-valued strings kept as one DICOM string, backslashes and all: ["A\\B"]."""

    def join(attribute: JsonObject) -> None:
        values = attribute["Value"]
        if len(values) > 1 and all(isinstance(v, str) for v in values):
            attribute["Value"] = ["\\".join(values)]

    change = of_vr({"CS", "SH", "LO", "UC", "AE", "UI"}, join)
    return rewrite_json(request, forward, lambda body: each_attribute(body, change))


@fault(
    "metadata-coerces-names",
    catches=[
        "test_json.py::test_metadata_values_equal_the_stored_values[samples]",
        "test_json.py::test_metadata_values_equal_the_stored_values[synthetic]",
        "test_json.py::test_ideographic_and_phonetic_name_groups_come_back",
        *(
            f"test_json.py::test_names_in_other_character_sets_come_back_as_utf8[{name}]"
            for name in ("charset_latin", "charset_greek", "charset_ideographic")
        ),
    ],
)
def metadata_coerces_names(request: Exchange, forward: Forward) -> Answer:
    """A metadata cache that stores person names upper-cased, without Original Attributes
    Sequence: what comes back is not what was stored."""

    def upper(attribute: JsonObject) -> None:
        attribute["Value"] = [
            {k: v.upper() for k, v in name.items()} if isinstance(name, dict) else name
            for name in attribute["Value"]
        ]

    change = of_vr({"PN"}, upper)
    return rewrite_json(
        request, forward, lambda body: each_attribute(body, change), only=is_metadata
    )


# --- the top level and the character set -------------------------------------------------------


@fault(
    "json-single-result-unwrapped",
    catches=["test_json.py::test_results_are_one_top_level_array[studies-search]"],
)
def json_single_result_unwrapped(request: Exchange, forward: Forward) -> Answer:
    """A list of one result sent as that object, not as an array of one."""
    return rewrite_json(
        request,
        forward,
        lambda body: body[0] if isinstance(body, list) and len(body) == 1 else body,
        only=lambda r: r.method == "GET" and not r.path.endswith("/metadata"),
    )


@fault(
    "json-results-in-envelope",
    catches=[f"test_json.py::test_results_are_one_top_level_array[{kind}]" for kind in FOUR_KINDS],
)
def json_results_in_envelope(request: Exchange, forward: Forward) -> Answer:
    """Results in a REST envelope, {"results": [...], "count": n}, not a bare array."""
    return rewrite_json(
        request,
        forward,
        lambda body: (
            {"results": body, "count": len(body)} if isinstance(body, list) and body else body
        ),
        only=lambda r: r.method == "GET",
    )


@fault(
    "store-response-as-array",
    catches=["test_json.py::test_store_response_is_one_object"],
)
def store_response_as_array(request: Exchange, forward: Forward) -> Answer:
    """The Store Instances Response Module wrapped in an array, like a search result."""
    return rewrite_json(
        request,
        forward,
        lambda body: [body] if isinstance(body, dict) else body,
        only=lambda r: r.method == "POST",
    )


@fault(
    "metadata-not-utf8",
    catches=[
        f"test_json.py::test_names_in_other_character_sets_come_back_as_utf8[{name}]"
        for name in ("charset_latin", "charset_greek", "charset_ideographic")
    ],
)
def metadata_not_utf8(request: Exchange, forward: Forward) -> Answer:
    """Metadata sent in ISO 8859-1 (what a Latin-1 default of a web framework does)."""
    answer = forward(request)
    if not is_metadata(request) or not is_dicom_json(answer):
        return answer
    text = json.dumps(json.loads(answer.body), ensure_ascii=False)
    body = text.encode("iso-8859-1", errors="replace")
    answer = Answer(answer.status, answer.headers, body)
    return with_header(answer, "Content-Type", "application/dicom+json; charset=ISO-8859-1")
