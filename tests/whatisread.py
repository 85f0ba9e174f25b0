"""docs/what-is-read.md, made from the checks themselves (issue 22, "values nobody reads"): the
catalog is run against the local servers with the read map on (conformance/readmap.py), and the
records say which check read which part of which answer. Set beside what the standard describes
(the inventory below), they show what no check reads: where a server may put anything.

    scripts/what-is-read                          # run the servers, rewrite the document
    .venv/bin/python tests/whatisread.py run OUT   # only the runs, records into OUT/<server>/
    .venv/bin/python tests/whatisread.py write OUT # only the document, from OUT's records
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from paths import REPO

from conformance import readmap

DOC = REPO / "docs" / "what-is-read.md"
PYTHON = sys.executable

# --- what the standard describes (PS3.18 2024c, as the catalog and its reference read it) -----

# Per level of DICOM JSON object: tag -> the table's Type (R, U, C; Annex I's 1, 1C, 2).
STUDY = {  # Table 10.6.3-3: Study's Attributes (R, U; C "if known" / "if retrievable")
    "00080020": "R",
    "00080030": "R",
    "00080050": "R",
    "00080056": "C",
    "00080061": "R",
    "00080090": "R",
    "00080201": "C",
    "00081190": "C",
    "00100010": "R",
    "00100020": "R",
    "00100030": "R",
    "00100040": "R",
    "0020000D": "U",
    "00200010": "R",
    "00201206": "R",
    "00201208": "R",
}
SERIES = {  # Table 10.6.3-4: Series' Attributes
    "00080060": "R",
    "0008103E": "R",
    "0020000E": "U",
    "00200011": "R",
    "00201209": "R",
    "00400244": "R",
    "00400245": "R",
    "00400275": "R",
    "00081190": "C",
    "00080201": "C",
}
INSTANCE = {  # Table 10.6.3-5: Instance's Attributes
    "00080016": "R",
    "00080018": "U",
    "00200013": "R",
    "00081190": "R",
    "00080056": "C",
    "00080201": "C",
    "00280010": "C",
    "00280011": "C",
    "00280100": "C",
    "00280008": "C",
}
COMPUTED = {"00080056", "00080061", "00080201", "00081190", "00201206", "00201208", "00201209"}
METADATA = {
    **{t: "study (10.6.3-3)" for t in STUDY if t not in COMPUTED},
    **{t: "series (10.6.3-4)" for t in SERIES if t not in COMPUTED},
    **{t: "instance (10.6.3-5)" for t in INSTANCE if t not in COMPUTED},
    "7FE00010": "BulkDataURI (10.4.3.3.2)",
}
REQUEST_ATTRIBUTES_ITEM = {"00400009": "R", "00401001": "R"}  # Table 10.6.3-4's sequence
STORE_ANSWER = {  # Store Instances Response Module (10.5.3, Annex I Table I.1-1)
    "00081190": "2",
    "00081198": "1C",
    "00081199": "1C",
    "0008119A": "1C",
}
REFERENCED_SOP_ITEM = {"00081150": "1", "00081155": "1", "00081190": "2", "00081196": "1C"}
FAILED_SOP_ITEM = {"00081150": "1", "00081155": "1", "00081197": "1"}
OTHER_FAILURES_ITEM = {"00081197": "1"}

LEVELS: dict[str, tuple[str, dict[str, str]]] = {
    "study": ("Table 10.6.3-3", STUDY),
    "series": ("Table 10.6.3-4", SERIES),
    "series > 00400275": ("Table 10.6.3-4 (Request Attributes Sequence)", REQUEST_ATTRIBUTES_ITEM),
    "instance": ("Table 10.6.3-5", INSTANCE),
    # Metadata holds every attribute of the instance (10.4.3.3.2); the inventory is the stored
    # attributes of the three search tables (not those a search computes: counts, Modalities in
    # Study, Retrieve URL, Instance Availability), and Pixel Data as a BulkDataURI.
    "metadata": (
        "10.4.3.3.2: every attribute; listed here: the stored ones of Tables 10.6.3-3/-4/-5",
        METADATA,
    ),
    readmap.STORE_MODULE: ("10.5.3, Annex I Table I.1-1", STORE_ANSWER),
    f"{readmap.STORE_MODULE} > 00081199": (
        "Table I.1-1 (Referenced SOP Sequence)",
        REFERENCED_SOP_ITEM,
    ),
    f"{readmap.STORE_MODULE} > 00081198": ("Table I.1-1 (Failed SOP Sequence)", FAILED_SOP_ITEM),
    f"{readmap.STORE_MODULE} > 0008119A": (
        "Table I.1-1 (Other Failures Sequence)",
        OTHER_FAILURES_ITEM,
    ),
}
# Which levels each transaction's answer may carry (relational searches add the higher levels'
# attributes to each result: 10.6.3.3).
ANSWER_LEVELS = {
    "search studies": ["study"],
    "search series": ["series", "series > 00400275"],
    "search instances": ["instance"],
    "study metadata": ["metadata"],
    "series metadata": ["metadata"],
    "instance metadata": ["metadata"],
    "store": [
        readmap.STORE_MODULE,
        f"{readmap.STORE_MODULE} > 00081199",
        f"{readmap.STORE_MODULE} > 00081198",
        f"{readmap.STORE_MODULE} > 0008119A",
    ],
}

GENERAL = {401: "8.5", 403: "8.5", 503: "8.5"}  # Table 8.5-1, for every transaction
RETRIEVE_CODES = {200: "10.4.3", 400: "10.4.3", 404: "10.4.3", 406: "8.7.8.1", 410: "10.4.3"}
STATUS_CODES: dict[str, dict[int, str]] = {
    "search": {200: "10.6.3", 204: "8.3.4.4.1", 400: "10.6.3", 413: "10.6.3", **GENERAL},
    "retrieve": {**RETRIEVE_CODES, **GENERAL},
    "store": {200: "10.5.3", 202: "10.5.3", 400: "10.5.3", 409: "10.5.3", 415: "10.5.3", **GENERAL},
    "delete": {204: "Azure", 404: "Azure", 410: "8.5"},
    "changefeed": {200: "Azure", 400: "Azure"},
}
# Response headers the standard or HTTP gives a meaning to in these answers.
RESPONSE_HEADERS = {
    "content-type": "every answer with a payload (8.7.3; RFC 9110 8.3)",
    "content-length": "RFC 9110 8.6",
    "content-location": "RFC 9110 8.7",
    "warning": "search (8.3.4.4, Table 10.6.3-1), store (10.5.3): 299 warnings",
    "www-authenticate": "401 (Table 8.5-1; RFC 9110 11.6.1)",
    "allow": "405 (RFC 9110 10.2.1)",
    "retry-after": "503 / 429 (RFC 9110 10.2.3)",
    "etag": "Azure metadata (RFC 9110 8.8.3)",
}
PART_HEADERS = {
    "content-type": "every part (8.7.3.5, 8.7.9; RFC 2387)",
    "content-location": "bulk data and frames parts (8.7.4 / RFC 2557)",
    "content-id": "RFC 2387",
    "content-length": "RFC 2046 (optional)",
}

# What the suite leaves unread on purpose, and why: shown under the gaps, so that a gap with no
# reason here is one to close. Keyed by the attribute's tag or the header's name.
UNREAD_WHY = {
    "00080056": "Instance Availability (Type C, 'shall be present if known'): the server's own "
    "state of its storage (ONLINE, NEARLINE...), nothing the run stored to compare it with",
    "00080201": "Timezone Offset From UTC (Type C, 'if known'): the run's instances carry none, "
    "so a value would be the server's own, not a stored one to compare",
    "00400244": "Performed Procedure Step Start Date: the run's instances carry none (nothing "
    "stored to compare); a value a server invents is compared by the includefield property, "
    "which holds every value a result carries to the stored instance",
    "00400245": "Performed Procedure Step Start Time: as its Start Date",
    "7FE00010": "Pixel Data in metadata is a BulkDataURI (or InlineBinary): its form is judged "
    "on every metadata object (test_json.py), the URI of instance metadata is followed and its "
    "bytes compared with the stored ones (test_wado_frames.py); series metadata's is not asked "
    "again",
    "0008119A": "Other Failures Sequence (1C: failures not tied to one instance): no request of "
    "the catalog provokes one on the four servers; the STOW checks judge the sequences a "
    "failure of an instance is reported in",
    "content-location": "no rule of PS3.18 makes a response's Content-Location a SHALL; bulk data "
    "parts' Content-Location is read (test_wado_frames.py)",
    "retry-after": "a server MAY send it (RFC 9110 10.2.3); the client honours it (retries), no "
    "rule to judge",
    "content-id": "optional in a multipart/related part (RFC 2387); PS3.18 prescribes none",
    "content-length": "of a part: optional (RFC 2046), a part ends at its boundary, which the "
    "multipart checks judge; a response's Content-Length is read",
}

# The transactions, in the document's order: (title, PS3.18 section, its status codes' family).
TRANSACTIONS = {
    "search studies": ("Search for studies", "10.6", "search"),
    "search series": ("Search for series", "10.6", "search"),
    "search instances": ("Search for instances", "10.6", "search"),
    "study metadata": ("Retrieve study metadata", "10.4.1.1.2", "retrieve"),
    "series metadata": ("Retrieve series metadata", "10.4.1.1.2", "retrieve"),
    "instance metadata": ("Retrieve instance metadata", "10.4.1.1.2", "retrieve"),
    "retrieve study": ("Retrieve a study", "10.4", "retrieve"),
    "retrieve series": ("Retrieve a series", "10.4", "retrieve"),
    "retrieve instance": ("Retrieve an instance", "10.4", "retrieve"),
    "frames": ("Retrieve frames", "10.4.1.1.6", "retrieve"),
    "bulkdata": ("Retrieve bulk data", "10.4.1.1.5", "retrieve"),
    "rendered": ("Retrieve rendered", "10.4.1.1.3", "retrieve"),
    "thumbnail": ("Retrieve a thumbnail", "10.4.1.1.4", "retrieve"),
    "store": ("Store (STOW-RS)", "10.5", "store"),
    "delete": ("Delete (Azure)", "Azure", "delete"),
    "changefeed": ("Change feed (Azure)", "Azure", "changefeed"),
    "other": ("Other requests", "", ""),
}

# --- the runs ------------------------------------------------------------------------------------

CHECKS = ["--pyargs", "conformance.checks"]
AZURE_CHECKS = [  # what the stand-in imitates (as tests/test_azure_standin_suite.py runs it)
    "conformance/checks/test_azure.py",
    "conformance/checks/test_walkthrough.py",
    "conformance/checks/test_properties_stateful.py"
    "::test_deletes_stores_and_searches_agree_with_the_model",
]


@dataclass(frozen=True)
class Server:
    name: str
    title: str
    launcher: list[str]  # runs COMMAND after "--" with PYTEST_BASE_URL set
    pytest_args: list[str]


SERVERS = [
    Server(
        "orthanc-1.10",
        "Orthanc 1.10.1 (DICOMweb plugin 1.7)",
        ["-m", "conformance.local.orthanc"],
        [
            *CHECKS,
            "--dicomweb-profile=orthanc",
            "--dicomweb-expectations=expectations/orthanc.toml",
        ],
    ),
    Server(
        "orthanc-1.13",
        "Orthanc 1.13.0 (DICOMweb plugin 1.24)",
        ["-m", "conformance.local.orthanc", "--orthanc", "1.13"],
        [
            *CHECKS,
            "--dicomweb-profile=orthanc-1.13",
            "--dicomweb-expectations=expectations/orthanc-1.13.toml",
        ],
    ),
    Server(
        "tiny-pacs",
        "tiny-pacs 0.4.1 (tiny-pacs-dicomweb 0.1.0)",
        ["-m", "conformance.local.tinypacs"],
        [
            *CHECKS,
            "--dicomweb-profile=tiny-pacs",
            "--dicomweb-expectations=expectations/tiny-pacs.toml",
            "--dicomweb-cleanup=none",
        ],
    ),
    Server(
        "azure-standin",
        "the Azure stand-in (tests/azurestandin.py, v2) over Orthanc 1.10: its checks only",
        [str(Path(__file__)), "standin"],
        [*AZURE_CHECKS, "--dicomweb-profile=azure-v2"],
    ),
    Server(
        "orthanc-auth",
        "Orthanc 1.10.1 demanding basic auth: the authentication checks only",
        [str(Path(__file__)), "auth"],
        ["conformance/checks/test_http_auth.py", "--dicomweb-profile=orthanc"],
    ),
]
# The credentials of the Orthanc with users (as tests/conftest.py's orthanc_with_auth).
AUTH_USER, AUTH_PASSWORD = "alice", "s3cret-pw"


def run(out: Path, names: Sequence[str] = ()) -> None:
    """Run the catalog on each server (or the ``names`` given), the map on, into OUT/<server>."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DICOMWEB_")}
    for server in SERVERS:
        if names and server.name not in names:
            continue
        where = out / server.name
        where.mkdir(parents=True, exist_ok=True)
        command = [
            PYTHON,
            *server.launcher,
            "--",
            PYTHON,
            "-m",
            "pytest",
            *server.pytest_args,
            "-q",
            "-p",
            "no:cacheprovider",
            f"--dicomweb-results={where / 'results.json'}",
        ]
        with open(where / "run.log", "w", encoding="utf-8") as log:
            done = subprocess.run(
                command,
                cwd=REPO,
                env={**env, readmap.ENV: str(where / "map")},
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
            )
        (where / "server.txt").write_text(server.title, encoding="utf-8")
        print(f"what-is-read: {server.name}: pytest exit {done.returncode}", flush=True)


def standin(command: Sequence[str]) -> int:
    """Run ``command`` against the Azure stand-in over a throwaway Orthanc."""
    from azurestandin import AzureStandIn

    from conformance.local.orthanc import LocalOrthanc

    with LocalOrthanc() as orthanc, AzureStandIn(orthanc) as server:
        env = {**os.environ, "PYTEST_BASE_URL": server.base_url("v2")}
        return subprocess.run(list(command), env=env, check=False).returncode


def with_auth(command: Sequence[str]) -> int:
    """Run ``command`` against an Orthanc that demands basic auth, with its credentials: the
    only runs where the refusals (and their WWW-Authenticate) are read."""
    from conformance.local.orthanc import LocalOrthanc

    with LocalOrthanc(users={AUTH_USER: AUTH_PASSWORD}) as orthanc:
        env = {
            **os.environ,
            "PYTEST_BASE_URL": orthanc.dicomweb_url,
            "DICOMWEB_AUTH": "basic",
            "DICOMWEB_USERNAME": AUTH_USER,
            "DICOMWEB_PASSWORD": AUTH_PASSWORD,
        }
        return subprocess.run(list(command), env=env, check=False).returncode


# --- the records --------------------------------------------------------------------------------


def load(out: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every record of OUT's runs (each with its "server"), and the servers' titles."""
    found: list[dict[str, Any]] = []
    titles = []
    for where in sorted(p for p in out.iterdir() if p.is_dir()):
        title = where / "server.txt"
        files = sorted((where / "map").glob("*.jsonl"))
        if not files:
            continue
        titles.append(title.read_text(encoding="utf-8") if title.exists() else where.name)
        for path in files:
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    found.append({**json.loads(line), "server": where.name})
    return found, titles


def short(nodeid: str) -> str:
    """test_qido.py::test_x, parametrizations collapsed."""
    base = re.sub(r"\[.*\]$", "", nodeid)
    path, _, name = base.partition("::")
    return f"{Path(path).name}::{name}"


def keyword(tag: str) -> str:
    from pydicom.datadict import keyword_for_tag

    try:
        return keyword_for_tag(int(tag, 16)) or "(private or unknown)"
    except ValueError:
        return ""


def names(checks: Iterable[str], most: int = 4) -> str:
    shown = sorted(set(checks))
    if not shown:
        return ""
    cut = [f"`{c}`" for c in shown[:most]]
    more = f" +{len(shown) - most} more" if len(shown) > most else ""
    return ", ".join(cut) + more + f" ({len(shown)})"


@dataclass
class Reads:
    """Per (kind, part, item): how -> the checks (short names) that read it so."""

    by: dict[tuple[str, str, str], dict[str, set[str]]]
    against: dict[tuple[str, str, tuple[int, ...]], set[str]]  # (kind, how, codes) -> checks
    direct: dict[str, dict[str, set[str]]]  # kind -> code seen -> checks comparing it themselves

    @classmethod
    def of(cls, records: Iterable[dict[str, Any]]) -> Reads:
        by: dict[tuple[str, str, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        against: dict[tuple[str, str, tuple[int, ...]], set[str]] = defaultdict(set)
        direct: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for r in records:
            check = short(r["check"])
            if r["part"] == readmap.STATUS:
                if r["how"] == readmap.DIRECT:
                    direct[r["kind"]][r["item"]].add(check)
                else:
                    against[(r["kind"], r["how"], tuple(r.get("against") or ()))].add(check)
                continue
            by[(r["kind"], r["part"], r["item"])][r["how"]].add(check)
        return cls(by, against, direct)

    def kinds(self) -> list[str]:
        seen = {k for k, _, _ in self.by} | {k for k, _, _ in self.against} | set(self.direct)
        base = {k.split(" (")[0] for k in seen}
        return [k for k in TRANSACTIONS if k in base]

    def variants(self, kind: str) -> list[str]:
        """``kind`` and its other-method variants (``retrieve study (HEAD)``) seen."""
        seen = {k for k, _, _ in self.by} | {k for k, _, _ in self.against} | set(self.direct)
        return sorted(k for k in seen if k == kind or k.startswith(f"{kind} ("))

    def parts(self, kinds: list[str]) -> list[str]:
        return sorted({p for k, p, _ in self.by if k in kinds})

    def items(self, kinds: list[str], part: str) -> dict[str, dict[str, set[str]]]:
        merged: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        for (k, p, item), hows in self.by.items():
            if k in kinds and p == part:
                for how, checks in hows.items():
                    merged[item][how] |= checks
        return merged


# --- the document -------------------------------------------------------------------------------

HEADER = """# What the checks read

<!-- generated by scripts/what-is-read (tests/whatisread.py); do not edit: run
     scripts/what-is-read to regenerate it (about two minutes: it runs the catalog on the servers
     below with the read map of conformance/readmap.py on, then writes this file) -->

For every answer the standard describes, which check reads which of its parts, and what no check
reads (issue 22, "values nobody reads": where no check reads a value, a server may put anything
there). Made by running the catalog with `DICOMWEB_CONFORMANCE_READ_MAP` set: the suite's readers
(`conformance/dicomweb.py`, `conformance/expect.py`, the client's multipart decoder) then hand the
checks answers that note each read: the status code, each response header, each part's headers
and each attribute of each DICOM JSON object (search results, metadata, the STOW answer and the
items of their sequences). A read is the check's whose set-up, call or teardown made it; the
guard's reads before a change, the pre-flight's and cleanup's are no check's and are left out.
"""

BLIND = """## What the map cannot see

- **Status codes a check compares itself** (`response.status_code == 404` in a check module) are
  noted with the code the check saw, not what it compared it against; `expect`'s helpers
  (`status`, `results`, `answered`, `get_metadata`, `chose_406`) are noted with the codes they
  take. A status read inside another helper (`response.ok`, a fixture) is not noted.
- **Bodies a check parses itself**: `test_json.py` reads two answers with `json.loads` (to see
  duplicate keys and number forms): what it reads there is not noted. Multipart bodies of
  `application/dicom` are compared element by element (`expect.same_instances`), which the map
  does not itemise; XML answers neither.
- **Raw header lists**: `test_http.py` and `test_stow.py` read every `Warning` field through
  urllib3's `getlist`, past the tracked mapping.
- A read by a function-scoped fixture counts for the check it sets up; a read by a shared fixture
  counts for the first check that needed it.
- Presence is not value: "presence only" means a check asked whether the attribute is there
  (`tag in obj`) but none read its value, so any value passes. "Every attribute" reads (`==`,
  `.items()`: comparing or serialising a whole object) read every value present, but no
  attribute by name: an attribute a server leaves out is not missed by them.
"""


def _cells(values: Sequence[object]) -> str:
    return "| " + " | ".join(str(v) for v in values) + " |"


def status_section(reads: Reads, kind: str) -> list[str]:
    family = TRANSACTIONS[kind][2]
    described = STATUS_CODES.get(family, {})
    lines = ["**Status codes**", ""]
    rows = []
    expected: set[int] = set()
    for variant in reads.variants(kind):
        method = variant[len(kind) :].strip(" ()") or ""
        for (k, how, codes), checks in sorted(reads.against.items()):
            if k != variant:
                continue
            expected |= set(codes)
            what = "needed first (precondition)" if how == readmap.PRECONDITION else "judged"
            label = f"{what} against {', '.join(map(str, codes))}"
            rows.append((f"{method} {label}".strip(), names(checks)))
        for code, checks in sorted(reads.direct.get(variant, {}).items()):
            rows.append((f"{method} saw {code}, compared in the check".strip(), names(checks)))
    if rows:
        lines += ["| how | checks |", "| --- | --- |", *(_cells(r) for r in rows)]
    else:
        lines.append("No check reads the status code.")
    if described:
        unjudged = sorted(set(described) - expected)
        where = ", ".join(f"{c} ({described[c]})" for c in unjudged)
        lines += [
            "",
            f"Codes the standard describes that no `expect` helper takes: {where or 'none'}.",
        ]
    return [*lines, ""]


def header_section(
    reads: Reads, kinds: list[str], part: str, described: dict[str, str], title: str
) -> list[str]:
    items = reads.items(kinds, part)
    if not items:
        return []
    lines = [
        f"**{title}**",
        "",
        "| header | value read by | presence only |",
        "| --- | --- | --- |",
    ]
    for name in sorted(items, key=lambda n: (n not in described, n)):
        hows = items[name]
        value = hows.get(readmap.VALUE, set())
        present = (hows.get(readmap.PRESENT, set()) | hows.get(readmap.KEYS, set())) - value
        shown = "every header (iterated)" if name == "*" else f"`{name}`"
        lines.append(_cells([shown, names(value), names(present)]))
    return [*lines, ""]


def level_title(part: str) -> str:
    head, *sequences = part.split(" > ")
    inside = " > ".join(f"{keyword(t)} ({t}) item" for t in sequences)
    return f"{head} result" if not inside else f"{head}: {inside}"


def attribute_section(reads: Reads, kinds: list[str], part: str) -> tuple[list[str], list[str]]:
    """The table of one level, and the inventory's attributes whose value no check reads."""
    items = reads.items(kinds, part)
    table, inventory = LEVELS.get(part, ("", {}))
    whole = items.pop("*", {})
    lines = [f"**{level_title(part)}**" + (f" ({table})" if table else ""), ""]
    lines += ["| attribute | type | value read by | presence only |", "| --- | --- | --- | --- |"]
    order = [*inventory, *sorted(t for t in items if t not in inventory)]
    unread = []
    for tag in order:
        hows = items.get(tag, {})
        value = hows.get(readmap.VALUE, set())
        present = hows.get(readmap.PRESENT, set()) - value
        if tag in inventory and not value:
            unread.append(tag)
        if not hows and tag not in inventory:
            continue
        name = f"{keyword(tag)} `{tag}`" if tag in inventory or keyword(tag) else f"`{tag}`"
        flag = "" if value else (" — **presence only**" if present else " — **unread**")
        lines.append(
            _cells(
                [
                    name + flag,
                    inventory.get(tag, "(not in the table)"),
                    names(value),
                    names(present),
                ]
            )
        )
    all_values = whole.get(readmap.ALL, set())
    keys = whole.get(readmap.KEYS, set()) - all_values
    if all_values:
        lines += [
            "",
            "Every attribute with its value (compared or serialised whole): "
            f"{names(all_values, 8)}.",
        ]
    if keys:
        lines += ["", f"Which attributes are present (keys only): {names(keys, 8)}."]
    return [*lines, ""], unread


def write(out: Path, doc: Path = DOC) -> str:
    records, titles = load(out)
    text = render(records, titles)
    doc.write_text(text, encoding="utf-8")
    return text


def render(records: list[dict[str, Any]], servers: Sequence[str]) -> str:
    reads = Reads.of(records)
    checks = {short(r["check"]) for r in records}
    sections: list[str] = []
    summary = [
        "| transaction | checks reading it | status readings | headers read "
        "| attributes read by value | of the standard's, value unread |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    # (kind, part, unread, presence only, checks reading every attribute whole)
    gaps: list[tuple[str, str, list[str], list[str], set[str]]] = []
    for kind in reads.kinds():
        title, section, _ = TRANSACTIONS[kind]
        variants = reads.variants(kind)
        kind_checks = {short(r["check"]) for r in records if r["kind"] in variants}
        lines = [
            f"## {title} (`{kind}`{', PS3.18 ' + section if section[:1].isdigit() else ''})",
            "",
        ]
        lines += status_section(reads, kind)
        lines += header_section(
            reads, variants, readmap.RESPONSE_HEADER, RESPONSE_HEADERS, "Response headers"
        )
        lines += header_section(
            reads, variants, readmap.PART_HEADER, PART_HEADERS, "Multipart part headers"
        )
        parts = [
            p
            for p in reads.parts(variants)
            if p not in (readmap.RESPONSE_HEADER, readmap.PART_HEADER)
        ]
        levels = [
            *ANSWER_LEVELS.get(kind, []),
            *(p for p in parts if p not in ANSWER_LEVELS.get(kind, [])),
        ]
        read_values = 0
        unread_total = 0
        for part in levels:
            if part not in parts and part not in LEVELS:
                continue
            table, unread = attribute_section(reads, variants, part)
            lines += table
            items = reads.items(variants, part)
            read_values += sum(1 for t, h in items.items() if t != "*" and readmap.VALUE in h)
            presence = [t for t in unread if t in items]
            whole = items.get("*", {}).get(readmap.ALL, set())
            if unread:
                gaps.append((kind, part, unread, presence, whole))
                unread_total += len(unread)
                shown = ", ".join(f"{keyword(t)} `{t}`" for t in unread)
                lines += [
                    f"Value read by no check ({len(unread)} of {len(LEVELS[part][1])}): {shown}.",
                    "",
                ]
        statuses = sum(1 for k in reads.against if k[0] in variants) + sum(
            len(reads.direct.get(v, {})) for v in variants
        )
        headers = sum(
            1
            for (k, p, i) in reads.by
            if k in variants and p in (readmap.RESPONSE_HEADER, readmap.PART_HEADER) and i != "*"
        )
        summary.append(
            _cells(
                [
                    f"{title} (`{kind}`)",
                    len(kind_checks),
                    statuses,
                    headers,
                    read_values,
                    unread_total or "",
                ]
            )
        )
        sections += lines
    described_headers = set(RESPONSE_HEADERS)
    read_headers = {i for (_, p, i) in reads.by if p == readmap.RESPONSE_HEADER}
    never = sorted(described_headers - read_headers)
    gap_lines = [
        "## The gaps",
        "",
        "Attributes the standard describes whose value no check reads, by answer:",
        "",
    ]
    for kind, part, unread, presence, whole in gaps:
        shown = ", ".join(
            f"{keyword(t)}" + (" (presence only)" if t in presence else "") for t in unread
        )
        also = f"; every value present is read whole by {len(whole)} check(s)" if whole else ""
        gap_lines.append(f"- `{kind}`, {level_title(part)}: {shown}{also}")
    gap_lines += [
        "",
        "Response headers the standard or HTTP describes that no check reads in any answer: "
        + (", ".join(f"`{h}` ({RESPONSE_HEADERS[h]})" for h in never) or "none")
        + ".",
        "",
        "Part headers no check reads: "
        + (
            ", ".join(
                f"`{h}`"
                for h in sorted(
                    set(PART_HEADERS) - {i for (_, p, i) in reads.by if p == readmap.PART_HEADER}
                )
            )
            or "none"
        )
        + ".",
        "",
    ]
    why = [
        "## What stays unread, and why",
        "",
        "| unread | why |",
        "| --- | --- |",
        *(
            f"| {keyword(item)} (`{item}`) | {reason} |"
            if item[:1].isdigit()
            else f"| `{item}` | {reason} |"
            for item, reason in UNREAD_WHY.items()
        ),
        "",
    ]
    head = [
        HEADER,
        "Servers run: " + "; ".join(servers) + ".",
        "",
        f"**{len(checks)} checks** (parametrizations collapsed) read **{len(records)} distinct "
        f"things** in **{len(reads.kinds())} transactions**.",
        "",
        *summary,
        "",
    ]
    return "\n".join([*head, *gap_lines, *why, BLIND, *sections]).rstrip() + "\n"


def main(argv: Sequence[str]) -> int:
    if argv[:1] in (["standin"], ["auth"]):
        command = list(argv[1:])
        command = command[1:] if command[:1] == ["--"] else command
        return standin(command) if argv[0] == "standin" else with_auth(command)
    if len(argv) >= 2 and argv[0] in ("run", "write"):
        out = Path(argv[1])
        if argv[0] == "run":
            run(out, argv[2:])
        else:
            write(out)
            print(f"what-is-read: wrote {DOC.relative_to(REPO)}")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
