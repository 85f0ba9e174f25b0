"""Reports made from a results.json alone, without the server: a conformance statement in
Markdown (to paste into a vendor's DICOM Conformance Statement) and a self-contained HTML report
(one file, no network) a person would rather look at than read; ``reports.py`` writes both.

Both are written for a reader who has only them: the headline says when the run was partial,
a legend says what each verdict means, sections come in the standard's order and link to its
pages, a gate run opens on what changed since its expectations, and the HTML prints whole.

Here: what both say of the verdicts (the conformance line, the gate's summary, what changed, why
a requirement is INFO, the known deviations), the Markdown statement. The HTML
is ``reporthtml.py``'s; sections and links to the standard are ``sections.py``'s.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .budget import size
from .sections import edition_name, grouped, heading_url, part_key, transaction_name

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
    unwritten = sum(r["verdict"] == "DISABLED" for r in requirements)
    if not_run:
        mode = results.get("mode")
        overall = f"PARTIAL ({f'{mode} run: ' if mode else ''}{not_run} requirements not run)"
        if not_run == 1:
            overall = overall.replace("requirements", "requirement")
    elif (results.get("reading") or {}).get("read_only") and unwritten:
        # What a read-only run could not judge is no PASS either.
        overall = f"PARTIAL (read-only run: {_plural(unwritten, 'requirement')} not judged)"
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


def changed_why(check: Mapping[str, Any]) -> str:
    """What a changed check says now, or (now that it has nothing to say) what was expected."""
    if check["message"]:
        return _short(check["message"])
    reason = check.get("expected_reason")
    return f"was expected because: {_short(reason)}" if reason else ""


def gate_line(results: Results) -> str:
    found = expectations_file(results) or ""
    return gate_summary(results["checks"]) or f"no check of this run has an entry in {found}"


def shown_verdict(r: Mapping[str, Any]) -> str:
    return str(r["verdict"] or r["status"].upper())


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


def summary_rows(results: Results) -> list[tuple[str, Counter[str]]]:
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


def verdict_columns(results: Results) -> list[str]:
    present = {shown_verdict(r) for r in results["requirements"]}
    return [v for v in (*VERDICT_ORDER, *UNJUDGED) if v in present]


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


def identity_rows(results: Results) -> list[tuple[str, str]]:
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
    if reading := results.get("reading"):
        if reading["read_only"]:
            rows.append(("Read-only", read_only_line(reading)))
        rows.append(("Read", read_line(reading)))
    rows.append(("Suite", f"dicomweb-conformance {version}"))
    rows.append(("Catalog", _editions(results["catalog"])))
    rows.append(
        ("Run", f"{results['started']} to {results['ended']} ({results['duration_s']:.0f} s)")
    )
    return rows


def read_only_line(reading: dict[str, Any]) -> str:
    """ "read-only run on 1 study (9 instances sampled, not the whole study)"."""
    n, sampled = len(reading["studies"]), reading["instances_sampled"]
    partial = ", not the whole study" if reading["partial"] else ""
    return f"read-only run on {n} stud{'y' if n == 1 else 'ies'}" + (
        f" ({sampled} instances sampled{partial})" if sampled else ""
    )


def read_line(reading: dict[str, Any]) -> str:
    """ "read 412 requests and 3.1 MB of a budget of 5,000 requests and 500.0 MB"."""
    budget = f" of a budget of {reading['budget']}" if reading["budget"] else ""
    return f"read {reading['requests']:,} requests and {size(reading['bytes'])}{budget}"


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
    lines = ["", f"## Changed since expectations ({len(changed)})", "", gate_line(results)]
    if changed:
        lines += ["", "| requirements | check | change | message |", "| --- | --- | --- | --- |"]
        for c in changed:
            lines.append(
                f"| {', '.join(c['requirements'])} | `{md_cell(c['check'])}` | "
                f"{md_cell(change(c) or '')} | {md_cell(changed_why(c))} |"
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
    lines += [f"- {name}: {md_cell(value)}" for name, value in identity_rows(results)]
    lines += _md_changed(results)
    columns = verdict_columns(results)
    lines += ["", "## Summary (requirements by transaction and by level)", ""]
    lines += ["| transaction | " + " | ".join(columns) + " |"]
    lines += ["| --- |" + " --- |" * len(columns)]
    for name, counts in summary_rows(results):
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


if __name__ == "__main__":  # the command's old home: python -m conformance.report still works
    import runpy

    runpy.run_module("conformance.reports", run_name="__main__", alter_sys=True)
