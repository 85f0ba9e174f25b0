"""Reports made from a results.json alone, without the server: a conformance statement in
Markdown (to paste into a vendor's DICOM Conformance Statement) and a self-contained HTML report
(one file, no network) a person would rather look at than read.

    python -m conformance.report reports/results.json            # writes conformance.md/.html
    python -m conformance.report results.json --out some/folder  # next to each other, elsewhere

Every run with ``--dicomweb-results`` writes both next to its results.json.

Both are written for a reader who has only them: the headline says when the run was partial,
a legend says what each verdict means, sections come in the standard's order and link to its
pages, a gate run opens on what changed since its expectations, and the HTML prints whole.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .catalog import TRANSACTIONS
from .evidence import compact_json, shown
from .results import load

VERDICT_ORDER = ("FAIL", "ERROR", "NON-STRICT", "INFO", "PASS", "NOT-IMPLEMENTED", "DISABLED")
UNJUDGED = ("NOT RUN", "UNTESTED", "USER AGENT", "WITHDRAWN")
# What each verdict means, for a reader without the README (its "Verdicts" table, shortened).
LEGEND = {
    "PASS": "the rule holds.",
    "FAIL": "a MUST is broken (or a capability the profile promises is missing).",
    "NON-STRICT": "a SHOULD is broken.",
    "NOT-IMPLEMENTED": "an optional capability is absent: declared so by the profile, or "
    "detected from the answer the standard sanctions (404/405/501 for a resource, 406 for a "
    "media type).",
    "DISABLED": "switched off by configuration (a capability disabled, authentication checks "
    "without credentials, writes in a read-only run).",
    "INFO": "the standard leaves it open, or allows several readings: the check records what "
    "the server did (the reading it chose).",
    "ERROR": "not judged: the suite or the infrastructure broke, or the server gave no "
    "complete answer (dropped connection, deadline passed, throttled).",
    "NOT RUN": "its checks exist but did not run in this run (deselected, a module left out).",
    "UNTESTED": "no check exists for it; the catalog says why.",
    "USER AGENT": "the rule binds the client, not the server: it shapes the suite's requests "
    "and is never judged.",
    "WITHDRAWN": "no rule (descriptive text, or gone from the standard): listed, never judged.",
}
HTML_EXCHANGES = 3  # the last exchanges of a check shown in the HTML report
BODY_CHARS = 800  # at most this much of a body's first lines is shown there
SUMMARY_CHARS = 300  # a message in a table row

Results = Mapping[str, Any]


def breach_count(requirements: Iterable[Mapping[str, Any]]) -> int:
    """How many distinct faults the failing requirements come from (one breach, one count)."""
    seen = set()
    for r in requirements:
        if r["verdict"] == "FAIL":
            seen.add(min(r.get("breach") or [r["id"]]))
    return len(seen)


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def conformance_line(results: Results) -> str:
    """One line a reader can quote: how many tested MUST requirements fail, from how many
    distinct faults. PARTIAL, with how many requirements did not run (and the run's mode),
    when the run left some of the catalog out: a subset never reads as a PASS."""
    requirements = results["requirements"]
    # Tested means a check judged the rule: not switched off, not an absent optional capability.
    must = [
        r
        for r in requirements
        if r["level"] == "MUST" and r["verdict"] not in (None, "DISABLED", "NOT-IMPLEMENTED")
    ]
    failing = [r for r in must if r["verdict"] == "FAIL"]
    unjudged = sum(r["verdict"] == "ERROR" for r in must)
    overall = "FAIL" if failing else "INCOMPLETE" if unjudged else "PASS"
    not_run = sum(r.get("status") == "not run" for r in requirements)
    if not_run:
        mode = results.get("mode")
        overall = f"PARTIAL ({f'{mode} run: ' if mode else ''}{not_run} requirements not run)"
        if not_run == 1:
            overall = overall.replace("requirements", "requirement")
    line = f"{overall}: {len(failing)} of {len(must)} tested MUST requirements fail"
    faults = breach_count(failing)
    if failing:
        line += f", from {_plural(faults, 'distinct fault')}"
    if unjudged:
        line += f"; {unjudged} could not be judged (ERROR)"
    # A broken optional capability fails the run too: the line says so rather than read PASS.
    for level in ("SHOULD", "MAY"):
        n = sum(r["level"] == level and r["verdict"] == "FAIL" for r in requirements)
        if n:
            line += f"; {n} {level} requirement{' fails' if n == 1 else 's fail'}"
    return line


def gate_summary(checks: Sequence[Mapping[str, Any]]) -> str | None:
    """One line of what a gate saw change, by direction: "4 verdicts differ from orthanc.toml:
    2 now FAIL, 2 now PASS; 1 reading changed". None when no check had an expected verdict.
    A FAIL or ERROR of a check no entry names fails a gate too, and is counted."""
    expected = [c for c in checks if c.get("expected")]
    if not expected:
        return None
    origins = sorted({str(c.get("expected_by") or "").split(":", 1)[0] for c in expected} - {""})
    moved = Counter(c["verdict"] for c in expected if c["verdict"] != c["expected"])
    readings = sum(
        1
        for c in expected
        if c["verdict"] == c["expected"]
        and c.get("expected_reading")
        and c.get("reading") != c["expected_reading"]
    )
    unnamed = Counter(
        c["verdict"] for c in checks if not c.get("expected") and c["verdict"] in ("FAIL", "ERROR")
    )
    total = sum(moved.values()) + readings + sum(unnamed.values())
    where = " and ".join(origins) or "the expectations"
    if not total:
        return f"every verdict is the one {where} expects ({len(expected)} checks)"
    parts = [f"{n} now {verdict}" for verdict, n in sorted(moved.items(), key=_by_severity)]
    if readings:
        parts.append(f"{readings} reading{'s' if readings > 1 else ''} changed")
    parts += [f"{n} {verdict} no entry names" for verdict, n in sorted(unnamed.items())]
    noun = "verdict differs" if total == 1 else "verdicts differ"
    return f"{total} {noun} from {where}: {', '.join(parts)}"


def _by_severity(item: tuple[str, int]) -> int:
    order = ("FAIL", "ERROR", "NON-STRICT", "INFO", "PASS", "NOT-IMPLEMENTED", "DISABLED")
    return order.index(item[0]) if item[0] in order else len(order)


def change(check: Mapping[str, Any]) -> str | None:
    """How a check's verdict differs from what its expectations say (the gate's own rule), or
    None when it does not."""
    expected = check.get("expected")
    if expected and check["verdict"] != expected:
        return f"expected {expected}, now {check['verdict']}"
    if (
        expected
        and check.get("expected_reading")
        and check.get("reading") != check.get("expected_reading")
    ):
        return f"expected reading {check['expected_reading']}, now {check.get('reading')}"
    if not expected and check["verdict"] in ("FAIL", "ERROR"):
        return f"{check['verdict']}, and no entry names it"
    return None


def expectations_file(results: Results) -> str | None:
    """The expectations file a gate run held its verdicts to; None for any other run."""
    found = (results.get("settings") or {}).get("expectations")
    return str(found) if found else None


def changed_checks(results: Results) -> list[Mapping[str, Any]] | None:
    """The checks of a gate run whose verdict (or reading) is not the expected one; None when
    the run was not a gate (no expectations file: a profile's departures alone are no gate)."""
    if not expectations_file(results):
        return None
    changed = [c for c in results["checks"] if change(c)]
    return sorted(changed, key=lambda c: _by_severity((c["verdict"], 0)))  # now FAIL first


def _changed_why(check: Mapping[str, Any]) -> str:
    """What a changed check says now, or (now that it has nothing to say) what was expected."""
    if check["message"]:
        return _short(check["message"])
    reason = check.get("expected_reason")
    return f"was expected because: {_short(reason)}" if reason else ""


def _gate_line(results: Results) -> str:
    found = expectations_file(results) or ""
    return gate_summary(results["checks"]) or f"no check of this run has an entry in {found}"


def transaction_name(key: str) -> str:
    return TRANSACTIONS.get(key, key)


# --- Sections in the standard's order, and links to its pages -----------------------------------

# A section number where a reference starts: "10.4.4", "Table 10.4.4-1" (in section 10.4.4),
# "Annex I", "C.2.2.2.1", "F.2.3".
_NUMBER = re.compile(
    r"(?<![\w.])(?:Tables?\s+|Annex\s+)?"
    r"(?P<n>(?:[A-Z]{1,2}|\d+)(?:\.\d+)*)(?P<table>-\d+)?(?![\w.])"
)
_DICOM_PART = re.compile(r"^PS3\.(\d+)$")
_RFC = re.compile(r"^RFC (\d+)$")
_DICOM_EDITION = re.compile(r"^\d{4}[a-e]$")


def _numbered(part: str) -> bool:
    """Whether a part's sections are numbers (the DICOM standard and RFCs), not a vendor's
    headings."""
    return bool(_DICOM_PART.match(part) or _RFC.match(part))


def part_key(part: str) -> tuple[int, int, str]:
    """PS3.18 first (the DICOMweb part), then the other DICOM parts by number, then RFCs, then
    vendors' documents."""
    if part == "PS3.18":
        return (0, 0, "")
    if m := _DICOM_PART.match(part):
        return (1, int(m[1]), "")
    if m := _RFC.match(part):
        return (2, int(m[1]), "")
    return (3, 0, part)


def section_number(part: str, section: str) -> str:
    """The section a requirement is filed under: the first one its ``section`` names
    ("10.4.4, Table 10.4.4-1" is 10.4.4; "Table 8.7.4-1" is 8.7.4); a vendor document's first
    heading."""
    if _numbered(part) and (found := _NUMBER.search(section)):
        return found["n"]
    return section.split(";")[0].strip()


def number_key(number: str) -> tuple[tuple[int, int, str], ...]:
    """Number by number ("8.7.10" after "8.7.9"); an annex ("F.2") after the numbered clauses."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in number.split("."))


def heading(r: Mapping[str, Any]) -> str:
    """A section's heading: "PS3.18 10.4.4", "RFC 9110 15.5", or a vendor's document and its
    heading."""
    number = section_number(r["part"], r["section"])
    if not _numbered(r["part"]):
        return f"{r['part']}: {number}"
    return f"{r['part']} {'Annex ' if number.isalpha() else ''}{number}"


def grouped(results: Results) -> dict[str, dict[str, list[Mapping[str, Any]]]]:
    """transaction -> section heading -> requirements: transactions in the catalog's order,
    sections in the standard's (PS3.18 by number, then PS3.4, then RFCs and vendors' documents),
    requirements in the catalog's order within a section."""
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in results["requirements"]:
        groups[r["transaction"]].append(r)
    order = [t for t in TRANSACTIONS if t in groups] + sorted(set(groups) - set(TRANSACTIONS))
    grouped: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for transaction in order:
        sections: dict[str, list[Mapping[str, Any]]] = {}
        keys: dict[str, tuple[Any, ...]] = {}
        for r in groups[transaction]:
            title = heading(r)
            sections.setdefault(title, []).append(r)
            number = section_number(r["part"], r["section"]) if _numbered(r["part"]) else ""
            keys[title] = (part_key(r["part"]), number_key(number) if number else ())
        grouped[transaction] = {t: sections[t] for t in sorted(sections, key=keys.__getitem__)}
    return grouped


def standard_url(part: str, edition: str, number: str, table: str | None = None) -> str | None:
    """The published page of a section (or of the section a table is in), at its anchor: the
    DICOM standard's HTML or the RFC Editor's. None for a vendor's document."""
    if m := _RFC.match(part):
        return f"https://www.rfc-editor.org/rfc/rfc{m[1]}#section-{number}"
    m = _DICOM_PART.match(part)
    if not m:
        return None
    # One page per section, five levels deep at most; a first subsection ("x.1") is on its
    # parent's page, and so are its own subsections; clauses 1 to 4 (scope, references,
    # definitions, symbols) are one page each.
    pieces = number.split(".")
    kept = pieces[:1]
    if not (pieces[0].isdigit() and int(pieces[0]) <= 4):
        for piece in pieces[1:5]:
            if piece == "1":
                break
            kept.append(piece)
    page = ("chapter_" if len(kept) == 1 else "sect_") + ".".join(kept)
    anchor = f"#table_{table}" if table else f"#sect_{number}" if len(pieces) > 1 else ""
    release = edition if _DICOM_EDITION.match(edition) else "current"
    site = f"https://dicom.nema.org/medical/dicom/{release}/output/chtml"
    return f"{site}/part{int(m[1]):02d}/{page}.html{anchor}"


def heading_url(r: Mapping[str, Any]) -> str | None:
    """The page of the section a requirement is filed under."""
    return standard_url(r["part"], r["edition"], section_number(r["part"], r["section"]))


# What a section reference holds: a section number, or another part's name ("PS3.4 C.2.2.2.2",
# "(by way of PS3.18 8.3.4.1)"), whose numbers follow until the clause ends (";" or ")").
_REFERENCE = re.compile(rf"(?P<part>PS3\.\d+)\s+|(?P<end>[);])|{_NUMBER.pattern}")


def _table(m: re.Match[str]) -> str | None:
    """The table a reference names ("Table 10.4.4-1"; "10.6.1-2" after "Tables 10.6.1-1 and")."""
    return m["n"] + m["table"] if m["table"] else None


def linked_section(part: str, edition: str, section: str) -> str:
    """``section`` as HTML, each section number in it a link to its page."""
    if not _numbered(part):
        return escape(section)
    out, at, current = [], 0, part
    for m in _REFERENCE.finditer(section):
        if m["part"]:
            current = m["part"]
        elif m["end"]:
            current = part
        elif url := standard_url(current, edition, m["n"], _table(m)):
            out.append(escape(section[at : m.start()]))
            out.append(f'<a href="{escape(url)}">{escape(m[0])}</a>')
            at = m.end()
    return "".join(out) + escape(section[at:])


def shown_verdict(r: Mapping[str, Any]) -> str:
    return str(r["verdict"] or r["status"].upper())


def _whom(r: Mapping[str, Any]) -> str:
    return (
        f"{r['vendor']}'s service" if r.get("vendor") else f"the {r.get('binds', 'origin server')}"
    )


def info_reason(r: Mapping[str, Any], checks: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Why a requirement is INFO: the reading its server chose, with its source, or what its
    checks recorded. None for any other verdict."""
    if r["verdict"] != "INFO":
        return None
    chosen = set((r.get("reading") or "").split(", "))
    readings = [g for g in r.get("readings") or [] if g["id"] in chosen]
    if readings:
        return "; ".join(f"the server chose reading {g['id']} ({g['source']})" for g in readings)
    said = [f"reading {r['reading']}"] if r.get("reading") else []
    said += [
        checks[c]["message"]
        for c in r["checks"]
        if c in checks and checks[c]["verdict"] == "INFO" and checks[c]["message"]
    ]
    return "; ".join(dict.fromkeys(said)) or "its check recorded no reason"


# An expectations file written from a run keeps its messages, with the run's own values replaced
# (conformance.expectations): such a reason restates the message, in words that read worse.
_PLACEHOLDERS = {
    "2.25.…": r"2\.25\.\d+",
    "DWC-<run>": r"(?i:DWC)-[0-9A-Za-z-]+",
    "<run>": r"[0-9A-Za-z-]+",
    "<port>": r"\d+",
    "N-byte": r"\d+-byte",
    "N bytes": r"\d+ bytes",
}
_PLACEHOLDER = re.compile("(" + "|".join(re.escape(p) for p in _PLACEHOLDERS) + ")")


def restates(reason: str, message: str) -> bool:
    """Whether an expected reason says what the check's message says: written from a message
    like it, with placeholders for the run's own values, and maybe cut."""
    pieces = _PLACEHOLDER.split(" ".join(reason.split()))
    pattern = "".join(_PLACEHOLDERS.get(p) or re.escape(p) for p in pieces)
    return bool(pattern) and re.match(pattern, " ".join(message.split())) is not None


def shown_reason(check: Mapping[str, Any]) -> str | None:
    """The expected reason worth showing next to the check's message: None when there is none
    or when it restates the message."""
    reason = check.get("expected_reason") or ""
    return None if not reason or restates(reason, check["message"]) else str(reason)


def deviation_reason(check: Mapping[str, Any]) -> str:
    """Why a deviation is known, in words: its reason, or the check's message where the reason
    is a message written down with placeholders ("a N-byte payload")."""
    reason = check.get("expected_reason") or ""
    if reason and not _PLACEHOLDER.search(reason):
        return str(reason)
    return _short(check["message"]) or _short(reason) or "(no reason given)"


def _origin(check: Mapping[str, Any]) -> str:
    return str(check.get("expected_by") or "").split(":", 1)[0]


# A deviation from the standard: a rule broken, or not judged. An absent optional capability
# (NOT-IMPLEMENTED), a check switched off (DISABLED) and a reading the standard allows (INFO)
# are none, expected or not.
DEVIATIONS = ("FAIL", "NON-STRICT", "ERROR")


def _deviations(results: Results) -> list[tuple[Mapping[str, Any], list[Mapping[str, Any]]]]:
    """Known, documented deviations: each requirement with its checks whose verdict breaks or
    leaves unjudged a rule, as expected, in catalog order."""
    checks = {c["check"]: c for c in results["checks"]}
    found = []
    for r in results["requirements"]:
        known = [
            checks[name]
            for name in r["checks"]
            if name in checks
            and checks[name]["expected"]
            and checks[name]["verdict"] == checks[name]["expected"]
            and checks[name]["verdict"] in DEVIATIONS
        ]
        if known:
            found.append((r, known))
    return found


def _summary_rows(results: Results) -> list[tuple[str, Counter[str]]]:
    """Requirement verdicts counted by transaction, then by level."""
    rows = []
    for transaction, sections in grouped(results).items():
        counts = Counter(shown_verdict(r) for rs in sections.values() for r in rs)
        rows.append((transaction_name(transaction), counts))
    for level in ("MUST", "SHOULD", "MAY"):
        counts = Counter(shown_verdict(r) for r in results["requirements"] if r["level"] == level)
        if counts:
            rows.append((f"all {level}", counts))
    return rows


def _columns(results: Results) -> list[str]:
    present = {shown_verdict(r) for r in results["requirements"]}
    return [v for v in (*VERDICT_ORDER, *UNJUDGED) if v in present]


def edition_name(part: str, edition: str) -> str:
    """An edition as a reader names it: "PS3.18 2024c", "RFC 9110 (June 2022)", "Azure change
    feed overview (MicrosoftDocs/azure-docs 0381795b, ms.date 1/18/2024)"."""
    if _DICOM_PART.match(part):
        return f"{part} {edition}"
    if edition.endswith(")") and " (" in edition:  # "commit (ms.date …)" inside parentheses
        edition = edition[:-1].replace(" (", ", ", 1)
    return f"{part} ({edition})"


def _editions(catalog: Mapping[str, Any]) -> str:
    """'241 requirements; PS3.18 2024c, PS3.4 2024c, RFC 9110 (June 2022), …'."""
    shown_parts = []
    for part in sorted(catalog["editions"], key=part_key):
        found = catalog["editions"][part]
        if len(found) == 1:
            shown_parts.append(edition_name(part, found[0]))
        else:
            first, last = edition_name(part, found[0]), found[-1]
            shown_parts.append(f"{first} to {last} ({len(found)} editions)")
    return f"{catalog['requirements']} requirements; " + ", ".join(shown_parts)


def server_name(results: Results) -> str:
    """The server as the run named it (its launcher, the user, or what it says of itself)."""
    return str(results.get("server_name") or "server not named")


def _identity(results: Results) -> list[tuple[str, str]]:
    suite = results["suite"]
    version = suite["version"] + (f" ({suite['commit'][:12]})" if suite.get("commit") else "")
    rows = [
        ("Server", server_name(results)),
        ("Server header", results["server"] or "(none)"),
        ("Base URL", results["base_url"]),
        ("Profile", results["profile"]),
    ]
    if results.get("mode"):
        rows.append(("Mode", str(results["mode"])))
    if found := expectations_file(results):
        rows.append(("Expectations", found))
    rows.append(("Suite", f"dicomweb-conformance {version}"))
    rows.append(("Catalog", _editions(results["catalog"])))
    rows.append(
        ("Run", f"{results['started']} to {results['ended']} ({results['duration_s']:.0f} s)")
    )
    return rows


def _short(text: str, limit: int = SUMMARY_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- Markdown -----------------------------------------------------------------------------------


def md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_changed(results: Results) -> list[str]:
    changed = changed_checks(results)
    if changed is None:
        return []
    lines = ["", f"## Changed since expectations ({len(changed)})", "", _gate_line(results)]
    if changed:
        lines += ["", "| requirements | check | change | message |", "| --- | --- | --- | --- |"]
        for c in changed:
            lines.append(
                f"| {', '.join(c['requirements'])} | `{md_cell(c['check'])}` | "
                f"{md_cell(change(c) or '')} | {md_cell(_changed_why(c))} |"
            )
    return lines


def _md_verdict(r: Mapping[str, Any], checks: Mapping[str, Mapping[str, Any]]) -> str:
    verdict = shown_verdict(r)
    if reason := info_reason(r, checks):
        return f"{verdict}: {_short(reason)}"
    if r.get("reading"):
        verdict += f" (reading: {r['reading']})"
    return verdict


def markdown(results: Results) -> str:
    checks = {c["check"]: c for c in results["checks"]}
    lines = ["# DICOMweb conformance", "", f"**{conformance_line(results)}**", ""]
    lines += [f"- {name}: {md_cell(value)}" for name, value in _identity(results)]
    lines += _md_changed(results)
    columns = _columns(results)
    lines += ["", "## Summary (requirements by transaction and by level)", ""]
    lines += ["| transaction | " + " | ".join(columns) + " |"]
    lines += ["| --- |" + " --- |" * len(columns)]
    for name, counts in _summary_rows(results):
        lines.append(f"| {name} | " + " | ".join(str(counts[c] or "") for c in columns) + " |")
    lines += ["", "## Verdicts", ""]
    lines += [f"- **{verdict}**: {meaning}" for verdict, meaning in LEGEND.items()]
    if results.get("capabilities"):
        lines += ["", "## Capabilities declared by the profile", "", "| capability | | source |"]
        lines += ["| --- | --- | --- |"]
        for name, declared in results["capabilities"].items():
            has = "supported" if declared["supported"] else "not supported"
            lines.append(f"| {name} | {has} | {md_cell(declared['source'])} |")
    deviations = _deviations(results)
    if deviations:
        lines += ["", "## Known deviations", ""]
        lines += [
            "Rules this server is known to break (FAIL, NON-STRICT) or to leave unjudged "
            "(ERROR), as its profile or expectations file records them: by requirement, its "
            "checks and why."
        ]
        lines += [""]
        for r, known in deviations:
            lines.append(f"- **{r['id']}** ({r['level']}, {shown_verdict(r)}): {r['title']}")
            by_reason: dict[str, list[str]] = {}
            for c in known:
                reason = deviation_reason(c)
                by_reason.setdefault(reason, []).append(f"`{c['check']}`")
            lines += [f"  - {', '.join(names)}: {reason}" for reason, names in by_reason.items()]
    shared = [g for g in _breach_groups(results) if len(g) > 1]
    if shared:
        lines += ["", "## Requirements failing from one fault", ""]
        lines += [
            f"- {', '.join(r['id'] for r in group)}: one observed fault, "
            f"counted once in the conformance line"
            for group in shared
        ]
    for transaction, sections in grouped(results).items():
        lines += ["", f"## {transaction_name(transaction)}"]
        for section, requirements in sections.items():
            url = heading_url(requirements[0])
            title = f"[{section}]({url})" if url else section
            lines += ["", f"### {title}", "", "| ID | level | requirement | verdict |"]
            lines += ["| --- | --- | --- | --- |"]
            for r in requirements:
                lines.append(
                    f"| {r['id']} | {r['level']} | {md_cell(r['title'])} | "
                    f"{md_cell(_md_verdict(r, checks))} |"
                )
    return "\n".join(lines) + "\n"


def _breach_groups(results: Results) -> list[list[Mapping[str, Any]]]:
    by_id = {r["id"]: r for r in results["requirements"]}
    groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for r in results["requirements"]:
        if r["verdict"] == "FAIL" and r.get("breach"):
            key = tuple(r["breach"])
            groups.setdefault(key, [by_id[i] for i in key if i in by_id])
    return list(groups.values())


# --- HTML ---------------------------------------------------------------------------------------

STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:1em;color:#222}
h1{margin:.2em 0}.line{font-size:1.3em;font-weight:600;margin:.4em 0 1em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .5em;
text-align:left;vertical-align:top}.id td,.id th{font-size:13px}
.v{display:inline-block;min-width:7.5em;text-align:center;border-radius:3px;padding:0 .3em;
font-weight:600;font-size:12px}
.PASS{background:#cdeccd}.FAIL{background:#f6c6c6}.ERROR{background:#f3b27a}
.NON-STRICT{background:#f7e4a6}.INFO{background:#d4e4f7}.NOT-IMPLEMENTED,.DISABLED,.NOT.RUN,
.UNTESTED,.USER.AGENT,.WITHDRAWN{background:#e4e4e4}
details{border-bottom:1px solid #eee;padding:.15em 0}summary{cursor:pointer}
summary code{min-width:19em;display:inline-block}
blockquote{margin:.4em 0 .4em 1em;color:#444;border-left:3px solid #ccc;padding-left:.6em}
pre{background:#f6f6f6;padding:.5em;overflow-x:auto;white-space:pre-wrap;word-break:break-all;
font-size:12px;max-width:100%}
.filters label{margin-right:.8em;white-space:nowrap}.filters{position:sticky;top:0;
background:#fff;padding:.4em 0;border-bottom:1px solid #ccc;z-index:1;font-size:13px}
.exp{color:#555;font-style:italic}li{overflow-wrap:anywhere}[hidden]{display:none}
.legend{display:grid;grid-template-columns:max-content 1fr;gap:.15em .6em;margin:.5em 0}
.why{background:#eef4fb;padding:.2em .5em}.changed{background:#fff4d6;padding:.2em .8em;
border:1px solid #e8cf86}.changed .line{font-size:1.1em;margin:.3em 0}
details.req{scroll-margin-top:var(--bar,9em)}details.req:target>summary{outline:2px solid #7aa7e0}
@media print{
.filters,#shown{display:none}
details.req[hidden],section.tx[hidden],div.sec[hidden]{display:block}
details::details-content{content-visibility:visible;display:block}
summary{list-style:none}pre{overflow:visible;max-height:none}a{color:inherit}
}
"""

SCRIPT = """
const bar=document.querySelector('.filters');
const boxes=[...document.querySelectorAll('.filters input[type=checkbox][value]')];
const changedOnly=document.getElementById('changed-only');
const search=document.getElementById('search');
const rows=[...document.querySelectorAll('details.req')];
function apply(){
  const on=new Set(boxes.filter(b=>b.checked).map(b=>b.value));
  const text=search.value.trim().toUpperCase();
  let shown=0;
  for(const row of rows){
    const show=on.has(row.dataset.verdict)&&on.has(row.dataset.level)&&
      on.has(row.dataset.transaction)&&(!text||row.dataset.id.includes(text))&&
      (!changedOnly||!changedOnly.checked||row.dataset.changed==='yes');
    row.hidden=!show;shown+=show;
  }
  sections();
  document.getElementById('shown').textContent=shown+' of '+rows.length+' requirements shown';
}
function sections(){
  for(const sec of document.querySelectorAll('section.tx, div.sec')){
    sec.hidden=!sec.querySelector('details.req:not([hidden])');
  }
}
// A link to #req-ID (compare's cells link so) opens that row, shows it even when the filters
// hide it, and puts it below the sticky filter bar.
function reveal(){
  const target=document.getElementById(decodeURIComponent(location.hash.slice(1)));
  if(!target||!target.matches('details.req'))return;
  target.hidden=false;sections();target.open=true;
  document.documentElement.style.setProperty('--bar',(bar.offsetHeight+8)+'px');
  target.scrollIntoView({block:'start'});
}
// Printed, every requirement is open, whatever the filters show (the print style shows closed
// ones' contents where the browser knows ::details-content; this, where it does not).
let opened=[];
function printing(on){
  if(on){opened=rows.filter(r=>!r.open);opened.forEach(r=>r.open=true);}
  else{opened.forEach(r=>r.open=false);opened=[];}
}
boxes.forEach(b=>b.addEventListener('change',apply));
if(changedOnly)changedOnly.addEventListener('change',apply);
search.addEventListener('input',apply);
window.addEventListener('hashchange',reveal);
document.addEventListener('click',e=>{
  const a=e.target.closest('a[href^="#req-"]');
  if(a&&a.getAttribute('href')===location.hash)setTimeout(reveal);
});
window.addEventListener('beforeprint',()=>printing(true));
window.addEventListener('afterprint',()=>printing(false));
apply();reveal();
"""


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)


def badge(verdict: str) -> str:
    return f'<span class="v {escape(verdict)}">{escape(verdict)}</span>'


def shown_body(body: str) -> str:
    """A body as the report shows it: JSON one result per line, its first lines, bounded; the
    whole excerpt stays in results.json."""
    text = body
    if body.lstrip()[:1] in ("{", "["):
        # An excerpt cut short is no JSON to re-serialise, but a newline in JSON is only ever
        # layout: one value per line becomes one line.
        text = compact_json(body) or re.sub(r"\n\s*", " ", body)
    text = shown(text)
    if len(text) > BODY_CHARS:
        text = text[:BODY_CHARS] + f" … ({len(body)} characters in results.json)"
    return text


def _exchange_text(exchange: Mapping[str, Any]) -> str:
    lines = [f"> {exchange['method']} {exchange['url']}"]
    lines += [f"> {k}: {v}" for k, v in exchange["request_headers"].items()]
    if exchange["request_body"]:
        lines.append("> " + shown_body(exchange["request_body"]))
    if exchange["status"] is not None:
        lines.append(f"< {exchange['status']} {exchange['reason']}")
        lines += [f"< {k}: {v}" for k, v in exchange["response_headers"].items()]
        if exchange["response_body"]:
            lines.append("< " + shown_body(exchange["response_body"]))
    if exchange["error"]:
        lines.append(f"< no complete answer: {exchange['error']}")
    return "\n".join(lines)


def _check_html(check: Mapping[str, Any], gate: bool) -> str:
    parts = [f"<li>{badge(check['verdict'])} <code>{escape(check['check'])}</code>"]
    if check["expected"]:
        reason = shown_reason(check)
        parts.append(
            f' <span class="exp">expected {escape(check["expected"])} by '
            f"{escape(_origin(check))}" + (f": {escape(reason)}" if reason else "") + "</span>"
        )
    if gate and (moved := change(check)):
        parts.append(f' <b class="changed">changed: {escape(moved)}</b>')
    if check["message"]:
        parts.append(f"<br>{escape(check['message'])}")
    for exchange in check["evidence"][-HTML_EXCHANGES:]:
        parts.append(f"<pre>{escape(_exchange_text(exchange))}</pre>")
    return "".join(parts) + "</li>"


def _link(rid: str) -> str:
    return f'<a href="#req-{escape(rid)}"><code>{escape(rid)}</code></a>'


def _requirement_html(
    r: Mapping[str, Any], checks: Mapping[str, Mapping[str, Any]], changed: set[str] | None
) -> str:
    """A requirement's row: its verdict and title, opening on its rule, where the rule stands,
    its readings and its checks with their evidence. ``changed``: the requirements a gate run
    saw change (None: the run was no gate)."""
    verdict = shown_verdict(r)
    body = []
    if reason := info_reason(r, checks):
        body.append(f'<p class="why"><b>INFO:</b> {escape(reason)}</p>')
    body.append(f"<blockquote>{escape(r['text'])}</blockquote>")
    where = linked_section(r["part"], r["edition"], r["section"])
    body.append(
        f"<p>{escape(r['part'])} {where} ({escape(r['edition'])}), {escape(r['level'])}, "
        f"binds {escape(_whom(r))}, capability {escape(r['capability'])}</p>"
    )
    if r.get("readings"):
        chosen = set((r.get("reading") or "").split(", "))
        items = "".join(
            f"<li>{'<b>chosen:</b> ' if g['id'] in chosen else ''}<code>{escape(g['id'])}</code>"
            f" ({escape(g['source'])}): {escape(g['text'])}</li>"
            for g in r["readings"]
        )
        body.append(
            f"<p>The standard allows several readings; every one passes:</p><ul>{items}</ul>"
        )
    if r.get("later"):
        body.append(f"<p>Later editions: {escape(r['later'])}</p>")
    if r.get("request_breaks"):
        body.append(
            f"<p>The check's request breaks a rule for the user agent "
            f"({escape(r['request_breaks'])}): the answer is judged for robustness only.</p>"
        )
    others = [i for i in r.get("breach") or [] if i != r["id"]]
    if others:
        body.append(
            "<p>One observed fault with " + ", ".join(_link(i) for i in others) + ": counted "
            "once in the conformance line.</p>"
        )
    if r.get("withdrawn"):
        body.append(f"<p>No rule: {escape(r['withdrawn'])}</p>")
    if r["untested"]:
        body.append(f"<p>No check: {escape(r['untested'])}</p>")
    if r["checks"]:
        gate = changed is not None
        shown_checks = [_check_html(checks[c], gate) for c in r["checks"] if c in checks]
        body.append("<ul>" + "".join(shown_checks) + "</ul>")
    is_changed = "yes" if changed and r["id"] in changed else "no"
    return (
        f'<details class="req" id="req-{escape(r["id"])}" data-id="{escape(r["id"])}" '
        f'data-verdict="{escape(verdict)}" data-changed="{is_changed}" '
        f'data-level="{escape(r["level"])}" data-transaction="{escape(r["transaction"])}">'
        f"<summary>{badge(verdict)} <code>{escape(r['id'])}</code> {escape(r['title'])} "
        f"<small>({escape(r['level'])})</small></summary>{''.join(body)}</details>"
    )


def _filters(label: str, values: Iterable[tuple[str, str, int]]) -> str:
    """A row of checkboxes: (value, what it reads, how many requirements have it)."""
    boxes = "".join(
        f'<label><input type="checkbox" value="{escape(v)}" checked> {escape(name)} '
        f'<span class="n">({n})</span></label>'
        for v, name, n in values
    )
    return f"<div><b>{escape(label)}:</b> {boxes}</div>"


def _changed_html(results: Results) -> str:
    changed = changed_checks(results)
    if changed is None:
        return ""
    items = "".join(
        f"<li>{badge(c['expected']) if c.get('expected') else '<i>no entry</i>'} &rarr; "
        f"{badge(c['verdict'])} {', '.join(_link(i) for i in c['requirements'])} "
        f"<code>{escape(c['check'])}</code><br><small>{_reading_change(c)}"
        f"{escape(_changed_why(c))}</small></li>"
        for c in changed
    )
    return (
        f'<section class="changed" id="changed"><h2>Changed since expectations '
        f'({len(changed)})</h2><p class="line">{escape(_gate_line(results))}</p>'
        f"<ul>{items}</ul></section>"
    )


def _reading_change(check: Mapping[str, Any]) -> str:
    """The change in words where the verdicts' badges do not show it: a reading."""
    if check["verdict"] == check.get("expected"):
        return f"{escape(change(check))}: "
    return ""


def _legend_html() -> str:
    items = "".join(f"<div>{badge(v)}</div><div>{escape(m)}</div>" for v, m in LEGEND.items())
    return f'<h2>Verdicts</h2><div class="legend">{items}</div>'


def render_html(results: Results) -> str:
    checks = {c["check"]: c for c in results["checks"]}
    changed_list = changed_checks(results)
    changed = (
        None if changed_list is None else {rid for c in changed_list for rid in c["requirements"]}
    )
    requirements = results["requirements"]
    columns = _columns(results)
    identity = "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in _identity(results)
    )
    summary = "".join(
        f"<tr><td>{escape(name)}</td>"
        + "".join(f"<td>{counts[c] or ''}</td>" for c in columns)
        + "</tr>"
        for name, counts in _summary_rows(results)
    )
    by_verdict = Counter(shown_verdict(r) for r in requirements)
    by_level = Counter(r["level"] for r in requirements)
    by_transaction = Counter(r["transaction"] for r in requirements)
    levels = sorted(by_level, key=("MUST", "SHOULD", "MAY").index)
    groups = grouped(results)
    body = []
    for transaction, sections in groups.items():
        body.append(f'<section class="tx"><h2>{escape(transaction_name(transaction))}</h2>')
        for section, rows in sections.items():
            url = heading_url(rows[0])
            title = f'<a href="{escape(url)}">{escape(section)}</a>' if url else escape(section)
            html_rows = "".join(_requirement_html(r, checks, changed) for r in rows)
            body.append(f'<div class="sec"><h3>{title}</h3>{html_rows}</div>')
        body.append("</section>")
    changed_box = (
        f'<div><label><input type="checkbox" id="changed-only"> only changed since '
        f'expectations <span class="n">({len(changed)})</span></label></div>'
        if changed is not None
        else ""
    )
    filters = (
        _filters("verdict", ((v, v, by_verdict[v]) for v in columns))
        + _filters("level", ((v, v, by_level[v]) for v in levels))
        + _filters("transaction", ((t, transaction_name(t), by_transaction[t]) for t in groups))
        + changed_box
        + '<div><label>ID <input id="search" type="search" placeholder="QIDO-MATCH"></label> '
        '<span id="shown"></span></div>'
    )
    title = f"DICOMweb conformance: {server_name(results)}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{STYLE}</style></head><body>
<h1>{escape(title)}</h1>
<div class="line">{escape(conformance_line(results))}</div>
<table class="id">{identity}</table>
{_changed_html(results)}
<h2>Summary (requirements by transaction and by level)</h2>
<table><tr><th>transaction</th>{"".join(f"<th>{badge(c)}</th>" for c in columns)}</tr>
{summary}</table>
{_legend_html()}
<div class="filters">{filters}</div>
{"".join(body)}
<script>{SCRIPT}</script></body></html>
"""


def write_all(results: Results, folder: Path) -> list[Path]:
    """conformance.md and conformance.html in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (
        ("conformance.md", markdown(results)),
        ("conformance.html", render_html(results)),
    ):
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dicomweb-conformance report",
        description="Write the conformance report (HTML) and statement (Markdown) of a run "
        "from its results.json, without the server.",
    )
    parser.add_argument("results", type=Path, help="a results.json written by a run")
    parser.add_argument("--out", type=Path, help="folder to write into (default: its folder)")
    args = parser.parse_args(argv)
    try:
        results = load(args.results)
    except (OSError, ValueError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    for path in write_all(results, args.out or args.results.parent):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
