"""Reports made from a results.json alone, without the server: a conformance statement in
Markdown (to paste into a vendor's DICOM Conformance Statement) and a self-contained HTML report
(one file, no network) a person would rather look at than read.

    python -m conformance.report reports/results.json            # writes conformance.md/.html
    python -m conformance.report results.json --out some/folder  # next to each other, elsewhere

Every run with ``--dicomweb-results`` writes both next to its results.json.
"""

from __future__ import annotations

import argparse
import html
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .catalog import TRANSACTIONS
from .results import load

VERDICT_ORDER = ("FAIL", "ERROR", "NON-STRICT", "INFO", "PASS", "NOT-IMPLEMENTED", "DISABLED")
UNJUDGED = ("NOT RUN", "UNTESTED", "USER AGENT", "WITHDRAWN")
HTML_EXCHANGES = 3  # the last exchanges of a check shown in the HTML report
HTML_BODY = 600  # characters of a body excerpt shown there

Results = Mapping[str, Any]


def breach_count(requirements: Iterable[Mapping[str, Any]]) -> int:
    """How many distinct faults the failing requirements come from (one breach, one count)."""
    seen = set()
    for r in requirements:
        if r["verdict"] == "FAIL":
            seen.add(min(r.get("breach") or [r["id"]]))
    return len(seen)


def conformance_line(results: Results) -> str:
    """One line a reader can quote: how many tested MUST requirements fail, from how many
    distinct faults."""
    # Tested means a check judged the rule: not switched off, not an absent optional capability.
    must = [
        r
        for r in results["requirements"]
        if r["level"] == "MUST" and r["verdict"] not in (None, "DISABLED", "NOT-IMPLEMENTED")
    ]
    failing = [r for r in must if r["verdict"] == "FAIL"]
    unjudged = sum(r["verdict"] == "ERROR" for r in must)
    overall = "FAIL" if failing else "INCOMPLETE" if unjudged else "PASS"
    line = f"{overall}: {len(failing)} of {len(must)} tested MUST requirements fail"
    faults = breach_count(failing)
    if failing:
        line += f", from {faults} distinct fault" + ("s" if faults != 1 else "")
    if unjudged:
        line += f"; {unjudged} could not be judged (ERROR)"
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


def transaction_name(key: str) -> str:
    return TRANSACTIONS.get(key, key)


def _section_key(requirement: Mapping[str, Any]) -> tuple[Any, ...]:
    """Part, then section number by number ("8.7.10" after "8.7.9"); words sort after numbers."""
    pieces = str(requirement["section"]).replace("-", ".").split(".")
    numbered = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pieces)
    return (requirement["part"], numbered)


def grouped(results: Results) -> dict[str, dict[str, list[Mapping[str, Any]]]]:
    """transaction -> section -> requirements, in the catalog's order of transactions."""
    groups: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in results["requirements"]:
        groups[r["transaction"]].append(r)
    order = [t for t in TRANSACTIONS if t in groups] + sorted(set(groups) - set(TRANSACTIONS))
    grouped: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for transaction in order:
        sections: dict[str, list[Mapping[str, Any]]] = {}
        for r in sorted(groups[transaction], key=_section_key):
            sections.setdefault(f"{r['part']} {r['section']}", []).append(r)
        grouped[transaction] = sections
    return grouped


def shown_verdict(r: Mapping[str, Any]) -> str:
    return str(r["verdict"] or r["status"].upper())


def basis(r: Mapping[str, Any]) -> str:
    """Where the rule stands and whom it binds: 'PS3.18 8.7.5 (2024c), MUST, origin server'."""
    binds = r.get("binds", "origin server")
    whom = f"{r['vendor']}'s service" if r.get("vendor") else f"the {binds}"
    return f"{r['part']} {r['section']} ({r['edition']}), {r['level']}, binds {whom}"


def _deviations(results: Results) -> list[Mapping[str, Any]]:
    """Checks whose verdict is not PASS but was expected: known, documented deviations."""
    return [
        c
        for c in results["checks"]
        if c["expected"] and c["verdict"] == c["expected"] and c["verdict"] != "PASS"
    ]


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


def _editions(catalog: Mapping[str, Any]) -> str:
    """'229 requirements; PS3.18 2015a to 2025e (16 editions), RFC 9110 (June 2022), …'."""
    shown = []
    for part, found in catalog["editions"].items():
        # "RFC 9110 (June 2022)" already names its part.
        editions = [e if e.startswith(part) else f"{part} {e}" for e in found]
        if len(editions) == 1:
            shown.append(editions[0])
        else:
            shown.append(f"{editions[0]} to {editions[-1]} ({len(editions)} editions)")
    return f"{catalog['requirements']} requirements; " + ", ".join(shown)


def _identity(results: Results) -> list[tuple[str, str]]:
    suite = results["suite"]
    version = suite["version"] + (f" ({suite['commit'][:12]})" if suite.get("commit") else "")
    return [
        ("Server", results["server_name"] or results["base_url"]),
        ("Server header", results["server"] or "(none)"),
        ("Base URL", results["base_url"]),
        ("Profile", results["profile"]),
        ("Suite", f"dicomweb-conformance {version}"),
        ("Catalog", _editions(results["catalog"])),
        ("Run", f"{results['started']} to {results['ended']} ({results['duration_s']:.0f} s)"),
    ]


# --- Markdown -----------------------------------------------------------------------------------


def md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(results: Results) -> str:
    lines = ["# DICOMweb conformance", "", f"**{conformance_line(results)}**", ""]
    lines += [f"- {name}: {md_cell(value)}" for name, value in _identity(results)]
    columns = _columns(results)
    lines += ["", "## Summary (requirements by transaction and by level)", ""]
    lines += ["| transaction | " + " | ".join(columns) + " |"]
    lines += ["| --- |" + " --- |" * len(columns)]
    for name, counts in _summary_rows(results):
        lines.append(f"| {name} | " + " | ".join(str(counts[c] or "") for c in columns) + " |")
    if results.get("capabilities"):
        lines += ["", "## Capabilities declared by the profile", "", "| capability | | source |"]
        lines += ["| --- | --- | --- |"]
        for name, declared in results["capabilities"].items():
            has = "supported" if declared["supported"] else "not supported"
            lines.append(f"| {name} | {has} | {md_cell(declared['source'])} |")
    deviations = _deviations(results)
    if deviations:
        lines += [
            "",
            "## Known deviations",
            "",
            "| check | verdict | reason |",
            "| --- | --- | --- |",
        ]
        for c in deviations:
            reason = c.get("expected_reason") or c["message"]
            lines.append(f"| `{c['check']}` | {c['verdict']} | {md_cell(reason)} |")
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
            lines += ["", f"### {section}", "", "| ID | level | requirement | verdict |"]
            lines += ["| --- | --- | --- | --- |"]
            for r in requirements:
                verdict = shown_verdict(r)
                if r.get("reading"):
                    verdict += f" (reading: {r['reading']})"
                lines.append(
                    f"| {r['id']} | {r['level']} | {md_cell(r['title'])} | {md_cell(verdict)} |"
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
background:#fff;padding:.4em 0;border-bottom:1px solid #ccc;z-index:1}
.exp{color:#555;font-style:italic}[hidden]{display:none}
"""

SCRIPT = """
const boxes=[...document.querySelectorAll('.filters input[type=checkbox]')];
const search=document.getElementById('search');
function apply(){
  const on=new Set(boxes.filter(b=>b.checked).map(b=>b.value));
  const text=search.value.trim().toUpperCase();
  for(const row of document.querySelectorAll('details.req')){
    const show=on.has(row.dataset.verdict)&&on.has(row.dataset.level)&&
      on.has(row.dataset.transaction)&&(!text||row.dataset.id.includes(text));
    row.hidden=!show;
  }
  for(const sec of document.querySelectorAll('section.tx, div.sec')){
    sec.hidden=!sec.querySelector('details.req:not([hidden])');
  }
}
boxes.forEach(b=>b.addEventListener('change',apply));search.addEventListener('input',apply);
"""


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)


def badge(verdict: str) -> str:
    return f'<span class="v {escape(verdict)}">{escape(verdict)}</span>'


def _exchange_text(exchange: Mapping[str, Any]) -> str:
    lines = [f"> {exchange['method']} {exchange['url']}"]
    lines += [f"> {k}: {v}" for k, v in exchange["request_headers"].items()]
    if exchange["request_body"]:
        lines.append(f"> {exchange['request_body'][:HTML_BODY]}")
    if exchange["status"] is not None:
        lines.append(f"< {exchange['status']} {exchange['reason']}")
        lines += [f"< {k}: {v}" for k, v in exchange["response_headers"].items()]
        if exchange["response_body"]:
            body = exchange["response_body"]
            cut = f" … (all {len(body)} in results.json)" if len(body) > HTML_BODY else ""
            lines.append(f"< {body[:HTML_BODY]}{cut}")
    if exchange["error"]:
        lines.append(f"< no complete answer: {exchange['error']}")
    return "\n".join(lines)


def _check_html(check: Mapping[str, Any]) -> str:
    parts = [f"<li>{badge(check['verdict'])} <code>{escape(check['check'])}</code>"]
    if check["expected"]:
        reason = check.get("expected_reason") or ""
        origin = str(check["expected_by"] or "").split(":", 1)[0]
        parts.append(
            f' <span class="exp">expected {escape(check["expected"])} by {escape(origin)}'
            + (f": {escape(reason)}" if reason else "")
            + "</span>"
        )
    if check["message"]:
        parts.append(f"<br>{escape(check['message'])}")
    for exchange in check["evidence"][-HTML_EXCHANGES:]:
        parts.append(f"<pre>{escape(_exchange_text(exchange))}</pre>")
    return "".join(parts) + "</li>"


def _link(rid: str) -> str:
    return f'<a href="#req-{escape(rid)}"><code>{escape(rid)}</code></a>'


def _requirement_html(r: Mapping[str, Any], checks: Mapping[str, Mapping[str, Any]]) -> str:
    verdict = shown_verdict(r)
    body = [f"<blockquote>{escape(r['text'])}</blockquote>"]
    body.append(f"<p>{escape(basis(r))}, capability {escape(r['capability'])}</p>")
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
        body.append("<ul>" + "".join(_check_html(checks[c]) for c in r["checks"]) + "</ul>")
    return (
        f'<details class="req" id="req-{escape(r["id"])}" data-id="{escape(r["id"])}" '
        f'data-verdict="{escape(verdict)}" '
        f'data-level="{escape(r["level"])}" data-transaction="{escape(r["transaction"])}">'
        f"<summary>{badge(verdict)} <code>{escape(r['id'])}</code> {escape(r['title'])} "
        f"<small>({escape(r['level'])})</small></summary>{''.join(body)}</details>"
    )


def _filters(values: Iterable[str], label: str) -> str:
    boxes = "".join(
        f'<label><input type="checkbox" value="{escape(v)}" checked> {escape(v)}</label>'
        for v in values
    )
    return f"<div><b>{escape(label)}:</b> {boxes}</div>"


def render_html(results: Results) -> str:
    checks = {c["check"]: c for c in results["checks"]}
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
    levels = sorted(
        {r["level"] for r in results["requirements"]}, key=("MUST", "SHOULD", "MAY").index
    )
    groups = grouped(results)
    body = []
    for transaction, sections in groups.items():
        body.append(f'<section class="tx"><h2>{escape(transaction_name(transaction))}</h2>')
        for section, requirements in sections.items():
            rows = "".join(_requirement_html(r, checks) for r in requirements)
            body.append(f'<div class="sec"><h3>{escape(section)}</h3>{rows}</div>')
        body.append("</section>")
    transactions = [(t, transaction_name(t)) for t in groups]
    tx_boxes = "".join(
        f'<label><input type="checkbox" value="{escape(t)}" checked> {escape(name)}</label>'
        for t, name in transactions
    )
    title = f"DICOMweb conformance: {results['server_name'] or results['base_url']}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{STYLE}</style></head><body>
<h1>{escape(title)}</h1>
<div class="line">{escape(conformance_line(results))}</div>
<table class="id">{identity}</table>
<h2>Summary (requirements by transaction and by level)</h2>
<table><tr><th>transaction</th>{"".join(f"<th>{badge(c)}</th>" for c in columns)}</tr>
{summary}</table>
<div class="filters">{_filters(columns, "verdict")}{_filters(levels, "level")}
<div><b>transaction:</b> {tx_boxes}</div>
<div><label>ID <input id="search" type="search" placeholder="QIDO-MATCH"></label></div></div>
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
        prog="python -m conformance.report",
        description="Write the conformance report (HTML) and statement (Markdown) of a run "
        "from its results.json, without the server.",
    )
    parser.add_argument("results", type=Path, help="a results.json written by a run")
    parser.add_argument("--out", type=Path, help="folder to write into (default: its folder)")
    args = parser.parse_args(argv)
    try:
        results = load(args.results)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for path in write_all(results, args.out or args.results.parent):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
