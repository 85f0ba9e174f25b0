"""Stored DICOM against its DICOM JSON (PS3.18 Annex F): what a metadata answer must reproduce.

``json_differences`` compares a DICOM JSON object a server answered with the dataset stored, the
way Annex F maps each VR, and allows exactly what PS3.18 2024c and PS3.5 2024c leave to the
server, nothing more:

- padding and the spaces PS3.5 6.2 calls insignificant (F.1: "With the exception of padding to
  even byte length"); in a person name also the trailing empty components and their carets
  ("Trailing null components and their delimiters may be omitted");
- DS and IS as JSON numbers or strings (Table F.2.3-1), so they compare by value: an IS, like the
  binary integers (SL, SS, UL, US, SV, UV), exactly; a DS as the double its text denotes (what a
  writer that reads it as a double keeps); FL as the float32 stored, FD as the float64 stored.
  A JSON number is never NaN or Infinity (RFC 8259): such a value is never equal to anything;
- a BulkDataURI for the VRs F.2.2 lists, and InlineBinary on US, F.2.7's own example (compared
  with the stored values);
- the attributes that describe the pixel data, which 10.4.1.1.2's Note says "may depend on the
  Representation, not the Resource" (``representation_differences`` reports them apart).

An empty value among several is null (F.2.5: "these are represented as "null" array elements"),
not an empty string; an empty attribute has no Value, BulkDataURI or InlineBinary (F.2.5). Bulk
data (OB, OW, ...) is left to the retrieve checks. Shared by the checks of metadata
(checks/test_json.py) and the properties (checks/test_properties.py).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import PersonName

NUMBER_VRS = frozenset({"FL", "FD", "SL", "SS", "UL", "US"})
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})  # InlineBinary (F.2.2)
BULKDATA_VRS = BINARY_VRS | NUMBER_VRS | {"DS", "IS", "LT", "ST", "SV", "UC", "UT", "UV"}  # F.2.2
VALUE_FORMS = ("Value", "BulkDataURI", "InlineBinary")
PN_GROUPS = ("Alphabetic", "Ideographic", "Phonetic")
INTEGER_VRS = frozenset({"IS", "SL", "SS", "UL", "US", "SV", "UV"})
TEXT_VRS = frozenset({"LT", "ST", "UT", "UC", "UR"})  # leading spaces are significant
ORIGINAL_ATTRIBUTES = "04000561"
MODIFIED_ATTRIBUTES = "04000550"
# Image Pixel and lossy compression attributes that describe the Pixel Data as one Representation
# encodes it (10.4.1.1.2 Note: "especially those that describe the Pixel Data, so may differ").
REPRESENTATION_DEPENDENT = frozenset(
    {"00280002", "00280004", "00280006", "00280100", "00280101", "00280102", "00280103"}
    | {"00282110", "00282112", "00282114"}
)
DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
INTEGER = re.compile(r"[+-]?\d+")


def is_number(value: Any) -> bool:
    """A JSON number: NaN and Infinity are not (RFC 8259 6), whatever a parser lets through."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return isinstance(value, int) or math.isfinite(value)


def person_name(value: Any) -> dict[str, str] | None:
    """A PN value's component groups as PS3.5 6.2 compares them: spaces around a component and
    trailing empty components (with their carets) dropped, empty groups left out. None when the
    value is not a PN object of strings."""
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        return None
    groups = {}
    for group, text in value.items():
        components = [c.strip(" ") for c in text.split("^")]
        while components and not components[-1]:
            components.pop()
        if components:
            groups[group] = "^".join(components)
    return groups


def _integer(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if is_number(value):
        return int(value) if float(value).is_integer() else None
    if isinstance(value, str) and INTEGER.fullmatch(value.strip(" ")):
        return int(value.strip(" "))
    return None


def _double(value: Any) -> float | None:
    if is_number(value):
        return float(value)
    if isinstance(value, str) and DECIMAL.fullmatch(value.strip(" ")):
        number = float(value.strip(" "))
        return number if math.isfinite(number) else None
    return None


def _float32(value: Any) -> float | None:
    number = _double(value)
    try:
        return None if number is None else float(struct.unpack("<f", struct.pack("<f", number))[0])
    except OverflowError:
        return None


def _text(vr: str, value: str) -> str:
    text = value.rstrip(" \x00")
    return text if vr in TEXT_VRS else text.lstrip(" ")


def same_value(vr: str, got: Any, stored: Any) -> bool:
    """One value of the metadata against the stored one (None: an empty value, F.2.5's null)."""
    if stored is None:
        return got is None
    if got is None:
        return False
    if vr in INTEGER_VRS:
        return _integer(got) is not None and _integer(got) == _integer(stored)
    if vr == "FL":
        return _float32(got) is not None and _float32(got) == _float32(stored)
    if vr in ("FD", "DS"):
        return _double(got) is not None and _double(got) == _double(stored)
    if vr == "PN":
        return person_name(got) is not None and person_name(got) == person_name(stored)
    if isinstance(got, str) and isinstance(stored, str):
        return _text(vr, got) == _text(vr, stored)
    return False


def stored_values(element: DataElement) -> list[Any]:
    """The values of a stored (non-bulk) element as Annex F writes them: an empty value among
    several as None (F.2.5), DS and IS as their text, PN as its component groups."""
    if element.is_empty:
        return []
    values = (
        list(element.value) if isinstance(element.value, MultiValue | list) else [element.value]
    )
    if element.VR == "PN":
        return [_groups(v) if str(v) else None for v in values]
    if element.VR in ("DS", "IS"):
        return [
            None if v is None or v == "" else getattr(v, "original_string", str(v)) for v in values
        ]
    if element.VR == "AT":
        return [f"{int(v):08X}" for v in values]
    return [None if v is None or v == "" else v for v in values]


def _groups(value: Any) -> dict[str, str]:
    """A stored PN value as its DICOM JSON object (F.2.2: the non-empty component groups)."""
    name = value if isinstance(value, PersonName) else PersonName(value)
    return {group: text for group, text in zip(PN_GROUPS, name.components, strict=False) if text}


def _inline_us(attribute: dict[str, Any], stored: list[Any]) -> bool:
    """InlineBinary on US (F.2.7's example) holds the stored values, little endian."""
    try:
        data = base64.b64decode(attribute["InlineBinary"], validate=True)
    except (binascii.Error, ValueError, TypeError):
        return False
    return data == struct.pack(f"<{len(stored)}H", *stored)


def json_differences(
    got: dict[str, Any], stored: Dataset, where: str = ""
) -> list[tuple[str, str]]:
    """(tag, what differs) for every stored attribute the metadata does not reproduce.

    Bulk data (OB, OW, ... and any BulkDataURI F.2.2 allows) is left to the retrieve checks; the
    attributes that describe the pixel data are ``representation_differences``'.
    """
    found: list[tuple[str, str]] = []
    for element in stored:
        if element.tag.group == 2 or element.tag.element == 0 or element.VR in BINARY_VRS:
            continue
        tag = f"{element.tag:08X}"
        if not where and tag in REPRESENTATION_DEPENDENT and isinstance(got.get(tag), dict):
            continue  # present: its value may differ (representation_differences)
        found += [(tag, what) for what in _attribute_differences(got, element, where)]
    return found


def representation_differences(got: dict[str, Any], stored: Dataset) -> list[str]:
    """What differs in the attributes that describe the pixel data (10.4.1.1.2 Note: they may
    differ with the Representation): never a breach, worth recording."""
    return [
        what
        for element in stored
        if f"{element.tag:08X}" in REPRESENTATION_DEPENDENT
        and isinstance(got.get(f"{element.tag:08X}"), dict)
        for what in _attribute_differences(got, element, "")
    ]


def _attribute_differences(got: dict[str, Any], element: DataElement, where: str) -> list[str]:
    tag = f"{element.tag:08X}"
    name = f"{where}{element.keyword or tag}"
    attribute = got.get(tag)
    if not isinstance(attribute, dict):
        return [f"{name} is missing"]
    if attribute.get("vr") != element.VR:
        return [f"{name} has vr {attribute.get('vr')!r}, stored {element.VR}"]
    if element.is_empty and element.VR != "SQ":
        forms = [form for form in VALUE_FORMS if form in attribute]
        return [f"{name} is empty, stored so, but has {', '.join(forms)} (F.2.5)"] if forms else []
    if "BulkDataURI" in attribute and element.VR in BULKDATA_VRS:
        return []
    value = attribute.get("Value", [])
    if element.VR == "SQ":
        items = list(element.value)
        if not isinstance(value, list) or len(value) != len(items):
            return [f"{name} has {value!r}, stored {len(items)} item(s)"]
        found = []
        for number, (item, stored_item) in enumerate(zip(value, items, strict=True), 1):
            if not isinstance(item, dict):
                found.append(f"{name}[{number}] is {item!r}")
            else:
                inner = json_differences(item, stored_item, f"{name}[{number}] > ")
                found += [what for _, what in inner]
        return found
    expected = stored_values(element)
    if "InlineBinary" in attribute and element.VR == "US" and "Value" not in attribute:
        if _inline_us(attribute, expected):
            return []
        return [f"{name} has InlineBinary {attribute['InlineBinary']!r}, stored {expected!r}"]
    if (
        not isinstance(value, list)
        or len(value) != len(expected)
        or not all(same_value(element.VR, a, b) for a, b in zip(value, expected, strict=True))
    ):
        empty = "" in value if isinstance(value, list) and None in expected else False
        why = " (an empty value among several is null, F.2.5)" if empty else ""
        return [f"{name} is {value!r}, stored {expected!r}{why}"]
    return []


def recorded_coercions(obj: dict[str, Any]) -> set[str]:
    """Tags the metadata's Original Attributes Sequence says were changed on store (10.5.3)."""
    recorded: set[str] = set()
    original = obj.get(ORIGINAL_ATTRIBUTES)
    items = original.get("Value", []) if isinstance(original, dict) else []
    for item in items if isinstance(items, list) else []:
        modified = item.get(MODIFIED_ATTRIBUTES) if isinstance(item, dict) else None
        for changed in modified.get("Value", []) if isinstance(modified, dict) else []:
            if isinstance(changed, dict):
                recorded |= set(changed)
    return recorded
