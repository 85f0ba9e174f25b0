"""Stored DICOM against its DICOM JSON (PS3.18 Annex F): what a metadata answer must reproduce.

``json_differences`` compares a DICOM JSON object a server answered with the dataset stored, the
way Annex F maps each VR: numbers as numbers (DS and IS may be strings too), person names by
component group, padding dropped, sequences item by item; bulk data is left to the retrieve
checks. Shared by the checks of metadata (checks/test_json.py) and the round-trip property
(checks/test_properties.py).
"""

from __future__ import annotations

import math
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

NUMBER_VRS = frozenset({"FL", "FD", "SL", "SS", "UL", "US"})
BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})  # InlineBinary (F.2.7)
BULKDATA_VRS = BINARY_VRS | NUMBER_VRS | {"DS", "IS", "LT", "ST", "SV", "UC", "UT", "UV"}  # F.2.2
TEXT_VRS = frozenset({"LT", "ST", "UT", "UC"})  # leading spaces are significant
ORIGINAL_ATTRIBUTES = "04000561"
MODIFIED_ATTRIBUTES = "04000550"


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def normalized(vr: str, value: Any) -> Any:
    """A value as the comparison sees it: padding dropped, numbers as numbers."""
    if value is None or value == "":
        return None
    if vr in ("DS", "IS", *NUMBER_VRS):
        try:
            number = float(value) if isinstance(value, str) or is_number(value) else None
        except ValueError:
            return ("not a number", value)
        return ("number", number) if number is not None else ("bad", value)
    if vr == "PN":
        if not isinstance(value, dict):
            return ("bad", value)
        return {k: v.rstrip(" ") for k, v in value.items() if isinstance(v, str) and v.strip()}
    if isinstance(value, str):
        text = value.rstrip(" \x00")
        return text if vr in TEXT_VRS else text.lstrip(" ")
    return ("bad", value)


def same_value(vr: str, got: Any, stored: Any) -> bool:
    a, b = normalized(vr, got), normalized(vr, stored)
    if isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0] == "number":
        return math.isclose(a[1], b[1], rel_tol=1e-6, abs_tol=1e-9)
    return bool(a == b)


def json_differences(
    got: dict[str, Any], stored: Dataset, where: str = ""
) -> list[tuple[str, str]]:
    """(tag, what differs) for every stored attribute the metadata does not reproduce.

    Bulk data (OB, OW, ... and any BulkDataURI F.2.2 allows) is left to the retrieve checks.
    """
    found: list[tuple[str, str]] = []
    for element in stored:
        if element.tag.group == 2 or element.tag.element == 0 or element.VR in BINARY_VRS:
            continue
        tag = f"{element.tag:08X}"
        name = f"{where}{element.keyword or tag}"
        attribute = got.get(tag)
        if not isinstance(attribute, dict):
            found.append((tag, f"{name} is missing"))
            continue
        if attribute.get("vr") != element.VR:
            found.append((tag, f"{name} has vr {attribute.get('vr')!r}, stored {element.VR}"))
            continue
        if "BulkDataURI" in attribute and element.VR in BULKDATA_VRS:
            continue
        value = attribute.get("Value", [])
        if element.VR == "SQ":
            items = list(element.value)
            if not isinstance(value, list) or len(value) != len(items):
                found.append((tag, f"{name} has {value!r}, stored {len(items)} item(s)"))
                continue
            for number, (item, stored_item) in enumerate(zip(value, items, strict=True), 1):
                if not isinstance(item, dict):
                    found.append((tag, f"{name}[{number}] is {item!r}"))
                else:
                    inner = json_differences(item, stored_item, f"{name}[{number}] > ")
                    found += [(tag, what) for _, what in inner]
            continue
        expected = stored_values(element)
        if (
            not isinstance(value, list)
            or len(value) != len(expected)
            or not all(same_value(element.VR, a, b) for a, b in zip(value, expected, strict=True))
        ):
            found.append((tag, f"{name} is {value!r}, stored {expected!r}"))
    return found


def stored_values(element: DataElement) -> list[Any]:
    """The JSON Value pydicom makes of a stored (non-bulk) element."""
    values = element.to_json_dict(None, 0).get("Value", [])
    return list(values)


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
