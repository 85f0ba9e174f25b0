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

# The catalog's files, one per transaction, and what a reader calls them.
TRANSACTIONS = {
    "stow": "STOW-RS",
    "wado": "WADO-RS",
    "qido": "QIDO-RS",
    "json": "DICOM JSON (Annex F)",
    "http": "HTTP",
    "azure": "Azure extensions",
    "article": "The article's walkthrough",
}

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
    "metadata": "WADO-RS metadata resources (PS3.18 10.4.1)",
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
    "delete": "DELETE of studies, series and instances (Azure and Google extension)",
    "changefeed": "the change feed (Azure extension)",
    "changefeed-time-window": "startTime and endTime on the change feed (Azure API v2)",
    "etag": "ETag and If-None-Match on metadata (Azure)",
    "auth": "the server demands authentication",
}
CAPABILITIES = {**CORE_CAPABILITIES, **OPTIONAL_CAPABILITIES}

_ID = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")
_READING_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_FIELDS = {"id", "title", "level", "binds", "capability", "part", "section", "edition", "text"}
_OPTIONAL_FIELDS = {
    "untested",
    "withdrawn",
    "note",
    "readings",
    "later",
    "request_breaks",
    "explained_by",
    "vendor",
}
# Top-level keys of a catalog file: defaults for its entries, and how a vendor's file takes its
# levels (a vendor's reference describes its API in the indicative, without "shall").
_FILE_KEYS = {"part", "edition", "capability", "binds", "vendor", "levels", "requirement"}

# Whom a rule binds. A rule that binds the user agent is never judged on a server: it shapes
# the requests the checks send, and no check may name it.
BINDS = ("origin server", "user agent")

# The level is the verb's (PS3.18 5: "shall", "should", "may"; RFCs their BCP 14 key words). A
# quote of the standard or of an RFC must carry the verb of its level; descriptive text ("is
# expected to", "will") is not a rule.
_VERBS = {
    "MUST": re.compile(r"\b(shall|must|required)\b", re.IGNORECASE),
    "SHOULD": re.compile(r"\b(should|recommended)\b", re.IGNORECASE),
    "MAY": re.compile(r"\b(may|optional)\b", re.IGNORECASE),
}
_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
# An edition written as an edition: DICOM's year and letter, an RFC's month and year.
_EDITIONS = {
    "PS3.": re.compile(r"^\d{4}[a-e]$"),
    "RFC ": re.compile(rf"^({_MONTHS}) \d{{4}}$"),
}


def normative(part: str) -> bool:
    """A part whose levels come from its verbs: the DICOM standard and the RFCs it cites."""
    return part.startswith(tuple(_EDITIONS))


class CatalogError(ValueError):
    """The catalog files are inconsistent; the message names the file and the entry."""


@dataclass(frozen=True)
class Reading:
    """One acceptable reading of a rule the standard states twice, or that a change proposal
    is rewriting: a check passes every reading and records the one the server chose."""

    id: str  # short and stable, e.g. "406" or "default-media-type"
    text: str  # what the server does under this reading, quoted from its source
    source: str  # where the reading stands: part, section, edition or change proposal


@dataclass(frozen=True)
class Requirement:
    """One rule of the standard (or of a vendor's documented extension)."""

    id: str
    title: str
    level: str
    binds: str  # "origin server" or "user agent"
    capability: str
    part: str  # "PS3.18", "PS3.4", "PS3.10", "Azure DICOM service conformance statement v2", …
    section: str
    edition: str  # the edition (or document version) the section and quote were read in
    text: str  # the rule, quoted verbatim ("[...]" where words are left out)
    transaction: str  # the catalog file it comes from: stow, wado, qido, http, azure, …
    untested: str | None = None  # why no check covers it (then it must say what would)
    withdrawn: str | None = None  # why it is no rule (kept: an ID is never reused)
    note: str | None = None
    readings: tuple[Reading, ...] = ()  # the acceptable readings, where the text allows several
    later: str | None = None  # what newer editions or change proposals say, cited
    # The user agent's "shall" that the check's request deliberately breaks: the answer to it
    # is judged for robustness only, never as a MUST.
    request_breaks: str | None = None
    # Requirements whose failure, observed in the same run, explains this one's: both are
    # counted as one breach in the headline.
    explained_by: tuple[str, ...] = ()
    # A vendor's documented extension binds that vendor's service: judged only on a server
    # whose profile is that vendor's ("azure"), never on another that has a like feature.
    vendor: str | None = None

    @property
    def reference(self) -> str:
        return f"{self.part} {self.section} ({self.edition})"

    @property
    def optional(self) -> bool:
        return self.capability in OPTIONAL_CAPABILITIES

    @property
    def judged(self) -> bool:
        """Whether a check may judge a server by it: a rule for the origin server, in force."""
        return self.binds == "origin server" and not self.withdrawn

    def reading(self, reading_id: str) -> Reading | None:
        return next((r for r in self.readings if r.id == reading_id), None)


class Catalog(Mapping[str, Requirement]):
    """All requirements by ID, in file order."""

    def __init__(self, requirements: Iterable[Requirement]) -> None:
        self._by_id: dict[str, Requirement] = {}
        for r in requirements:
            if r.id in self._by_id:
                raise CatalogError(f"requirement {r.id} is defined twice")
            self._by_id[r.id] = r
        for r in self._by_id.values():
            unknown = [i for i in r.explained_by if i not in self._by_id or i == r.id]
            if unknown:
                raise CatalogError(
                    f"{r.transaction}.toml, requirement {r.id}: explained_by names "
                    f"{', '.join(unknown)}, not another requirement of the catalog"
                )

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

    def readings(self, ids: Iterable[str]) -> dict[str, Reading]:
        """The readings of these requirements, by reading ID."""
        return {g.id: g for i in ids if i in self for g in self[i].readings}


def _readings(where: str, value: object) -> tuple[Reading, ...]:
    if not isinstance(value, list) or len(value) < 2:
        raise CatalogError(f"{where}: readings lists two or more acceptable readings")
    found = []
    for item in value:
        if not isinstance(item, dict) or set(item) != {"id", "text", "source"}:
            raise CatalogError(f"{where}: each reading has exactly an id, a text and a source")
        if not _READING_ID.match(str(item["id"])):
            raise CatalogError(f"{where}: reading id {item['id']!r} is lower-case words and '-'")
        if not str(item["text"]).strip() or not str(item["source"]).strip():
            raise CatalogError(f"{where}: reading {item['id']} needs its quoted text and source")
        found.append(Reading(str(item["id"]), str(item["text"]), str(item["source"])))
    ids = [g.id for g in found]
    if len(set(ids)) != len(ids):
        raise CatalogError(f"{where}: reading ids repeat: {ids}")
    return tuple(found)


def _entry(path: Path, entry: dict[str, object], vendor_levels: str | None) -> Requirement:
    where = f"{path.name}, requirement {entry.get('id', '?')}"
    missing = sorted(f for f in _FIELDS if not str(entry.get(f, "")).strip())
    unknown = sorted(set(entry) - _FIELDS - _OPTIONAL_FIELDS)
    if missing or unknown:
        raise CatalogError(
            f"{where}: "
            + "; ".join(
                ([f"missing {', '.join(missing)}"] if missing else [])
                + ([f"unknown {', '.join(unknown)}"] if unknown else [])
            )
        )
    fields = {k: v for k, v in entry.items() if k not in ("readings", "explained_by")}
    rid, level, part = str(entry["id"]), str(entry["level"]), str(entry["part"])
    if not _ID.match(rid):
        raise CatalogError(f"{where}: an ID is UPPER-CASE words joined by '-'")
    if level not in LEVELS:
        raise CatalogError(f"{where}: level must be one of {', '.join(LEVELS)}")
    if entry["binds"] not in BINDS:
        raise CatalogError(f"{where}: binds is one of {', '.join(repr(b) for b in BINDS)}")
    if entry["capability"] not in CAPABILITIES:
        raise CatalogError(f"{where}: unknown capability {entry['capability']!r}")
    edition = str(entry["edition"])
    pattern = next((p for prefix, p in _EDITIONS.items() if part.startswith(prefix)), None)
    if pattern is not None and not pattern.match(edition):
        raise CatalogError(
            f"{where}: edition {edition!r} is not an edition of {part} "
            "(DICOM: year and letter, e.g. 2024c; an RFC: month and year, e.g. June 2022)"
        )
    if (
        normative(part)
        and not entry.get("withdrawn")
        and not _VERBS[level].search(str(entry["text"]))
    ):
        raise CatalogError(
            f"{where}: level {level}, but its quote has no {_VERBS[level].pattern[3:-3]!r}: "
            "the level is the quoted verb's"
        )
    if not normative(part) and vendor_levels is None:
        raise CatalogError(
            f"{where}: {part} is not the standard or an RFC: its file says how it takes levels "
            '(a top-level levels = "...")'
        )
    if entry.get("request_breaks") and level == "MUST":
        raise CatalogError(
            f"{where}: its check's request breaks a 'shall' ({entry['request_breaks']}), so the "
            "answer cannot be judged as a MUST"
        )
    readings = _readings(where, entry["readings"]) if "readings" in entry else ()
    explained = entry.get("explained_by", [])
    if not isinstance(explained, list):
        raise CatalogError(f"{where}: explained_by is a list of requirement IDs")
    return Requirement(
        transaction=path.stem,
        readings=readings,
        explained_by=tuple(str(i) for i in explained),
        **fields,  # type: ignore[arg-type]
    )


def parse_file(path: Path) -> list[Requirement]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path.name}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - _FILE_KEYS)
    if unknown:
        raise CatalogError(f"{path.name}: unknown top-level keys {', '.join(unknown)}")
    defaults = {
        k: v for k, v in data.items() if k in ("part", "edition", "capability", "binds", "vendor")
    }
    levels = data.get("levels")
    return [_entry(path, {**defaults, **entry}, levels) for entry in data.get("requirement", [])]


def load(directory: Path = CATALOG_DIR) -> Catalog:
    """Read and validate every catalog file in the directory."""
    files = sorted(directory.glob("*.toml"))
    if not files:
        raise CatalogError(f"no catalog files in {directory}")
    return Catalog(r for path in files for r in parse_file(path))


@cache
def default() -> Catalog:
    """The suite's own catalog, read once per process."""
    return load()
