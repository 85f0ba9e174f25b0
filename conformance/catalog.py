"""The requirements catalog: every rule the suite checks, with a stable ID and its source.

The catalog is data (``conformance/requirements/*.toml``, one file per transaction), so that a
vendor, an auditor or a report can read it without reading the checks. Each check names the IDs
it covers with ``@pytest.mark.requirement("ID", ...)``; the project's own tests keep the two in
step (unknown IDs, IDs without a check, duplicate IDs).

An ID is never renumbered or reused: a rule that goes away is marked ``withdrawn``, not deleted.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

CATALOG_DIR = Path(__file__).parent / "requirements"

# MUST: the standard (or the vendor, for its extension) requires it: broken is a FAIL.
# SHOULD: recommended: broken is NON-STRICT (a FAIL under --dicomweb-strict).
# MAY: an optional capability: absent is NOT-IMPLEMENTED; present but broken is still a FAIL.
LEVELS = ("MUST", "SHOULD", "MAY")

# The capabilities a server has or lacks. The core ones every DICOMweb origin server has; the
# optional ones may be declared present or absent by a profile, or detected from an answer the
# standard sanctions for "not supported" (404/405/406/501, or a 299 "not supported" warning).
CORE_CAPABILITIES = {
    "store": "STOW-RS: store instances (PS3.18 10.5)",
    "retrieve": "WADO-RS: retrieve instances (PS3.18 10.4)",
    "search": "QIDO-RS: search for studies, series and instances (PS3.18 10.6)",
    "http": "HTTP and media-type rules common to every transaction (PS3.18 8)",
}
OPTIONAL_CAPABILITIES = {
    "store-single-part": "STOW of one application/dicom body, not multipart (Azure)",
    "store-metadata": "STOW of DICOM JSON metadata with bulkdata parts (PS3.18 10.5.1)",
    "metadata": "WADO-RS metadata resources (PS3.18 10.4.1)",
    "metadata-xml": "metadata as multipart/related; type=application/dicom+xml",
    "frames": "WADO-RS frames resource (PS3.18 10.4.1.1.6)",
    "bulkdata": "WADO-RS bulkdata resources behind BulkDataURI (PS3.18 10.4.1.1.5)",
    "rendered": "WADO-RS rendered resources (PS3.18 10.4.1.1.4)",
    "thumbnail": "WADO-RS thumbnail resources (PS3.18 10.4.1.1.7)",
    "single-part-retrieve": "an instance retrieved as a single-part application/dicom body",
    "transcoding": "WADO-RS returning another transfer syntax than the stored one",
    "relational-search": "QIDO-RS relational resources: /series, /instances, "
    "/studies/{study}/instances",
    "fuzzy-matching": "QIDO-RS fuzzymatching=true on person names (PS3.18 8.3.4.2)",
    "empty-value-matching": "QIDO-RS emptyvaluematching=true (PS3.18 8.3.4.5)",
    "multiple-value-matching": "QIDO-RS multiplevaluematching=true (PS3.18 8.3.4.6)",
    "accept-query-parameter": "the accept query parameter (PS3.18 8.3.3.1)",
    "delete": "DELETE of studies, series and instances (Azure and Google extension)",
    "changefeed": "the change feed (Azure extension)",
    "changefeed-time-window": "startTime and endTime on the change feed (Azure API v2)",
    "etag": "ETag and If-None-Match on metadata (Azure)",
    "auth": "the server demands authentication",
}
CAPABILITIES = {**CORE_CAPABILITIES, **OPTIONAL_CAPABILITIES}

_ID = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")
_FIELDS = {"id", "title", "level", "capability", "part", "section", "edition", "text"}
_OPTIONAL_FIELDS = {"untested", "withdrawn", "note"}


class CatalogError(ValueError):
    """The catalog files are inconsistent; the message names the file and the entry."""


@dataclass(frozen=True)
class Requirement:
    """One rule of the standard (or of a vendor's documented extension)."""

    id: str
    title: str
    level: str
    capability: str
    part: str  # "PS3.18", "PS3.4", "PS3.10", "Azure DICOM service conformance statement v2", …
    section: str
    edition: str  # the edition (or document version) the section and quote were read in
    text: str  # the rule, quoted
    transaction: str  # the catalog file it comes from: stow, wado, qido, http, azure, …
    untested: str | None = None  # why no check covers it (then it must say what would)
    withdrawn: str | None = None
    note: str | None = None

    @property
    def reference(self) -> str:
        return f"{self.part} {self.section} ({self.edition})"

    @property
    def optional(self) -> bool:
        return self.capability in OPTIONAL_CAPABILITIES


class Catalog(Mapping[str, Requirement]):
    """All requirements by ID, in file order."""

    def __init__(self, requirements: Iterable[Requirement]) -> None:
        self._by_id: dict[str, Requirement] = {}
        for r in requirements:
            if r.id in self._by_id:
                raise CatalogError(f"requirement {r.id} is defined twice")
            self._by_id[r.id] = r

    def __getitem__(self, key: str) -> Requirement:
        return self._by_id[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_id)

    def __len__(self) -> int:
        return len(self._by_id)

    def levels(self, ids: Iterable[str]) -> set[str]:
        return {self[i].level for i in ids if i in self}

    def capabilities(self, ids: Iterable[str]) -> set[str]:
        return {self[i].capability for i in ids if i in self}


def _parse_file(path: Path) -> list[Requirement]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path.name}: not valid TOML: {exc}") from None
    defaults = {k: v for k, v in data.items() if k in ("part", "edition", "capability")}
    found = []
    for number, entry in enumerate(data.get("requirement", []), 1):
        where = f"{path.name}, requirement {entry.get('id', f'#{number}')}"
        merged = {**defaults, **entry}
        missing = sorted(_FIELDS - set(merged))
        unknown = sorted(set(merged) - _FIELDS - _OPTIONAL_FIELDS)
        if missing or unknown:
            raise CatalogError(f"{where}: missing {missing}, unknown {unknown}")
        if not _ID.match(merged["id"]):
            raise CatalogError(f"{where}: an ID is UPPER-CASE words joined by '-'")
        if merged["level"] not in LEVELS:
            raise CatalogError(f"{where}: level must be one of {', '.join(LEVELS)}")
        if merged["capability"] not in CAPABILITIES:
            raise CatalogError(f"{where}: unknown capability {merged['capability']!r}")
        found.append(Requirement(transaction=path.stem, **merged))
    return found


def load(directory: Path = CATALOG_DIR) -> Catalog:
    """Read and validate every catalog file in the directory."""
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise CatalogError(f"no catalog files in {directory}")
    return Catalog(r for path in files for r in _parse_file(path))


@cache
def default() -> Catalog:
    """The suite's own catalog, read once per process."""
    return load()
