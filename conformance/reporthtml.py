"""The HTML report of a run: one self-contained file (no network) a person would rather look at
than read. Its headline, summary and legend are the Markdown statement's (``report.py``); here,
each requirement is a row that opens on its rule, where the rule stands and the evidence of its
checks, with filters that stay on top and a layout that prints whole.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from .evidence import compact_json, shown
from .report import (
    LEGEND,
    Results,
    change,
    changed_checks,
    changed_why,
    conformance_line,
    gate_line,
    identity_rows,
    info_reason,
    server_name,
    shown_reason,
    shown_verdict,
    summary_rows,
    verdict_columns,
)
from .sections import grouped, heading_url, linked_section, transaction_name

HTML_EXCHANGES = 3  # the last exchanges of a check shown in the HTML report
BODY_CHARS = 800  # at most this much of a body's first lines is shown there

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


def _whom(r: Mapping[str, Any]) -> str:
    return (
        f"{r['vendor']}'s service" if r.get("vendor") else f"the {r.get('binds', 'origin server')}"
    )


def _origin(check: Mapping[str, Any]) -> str:
    return str(check.get("expected_by") or "").split(":", 1)[0]


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
        f"{escape(changed_why(c))}</small></li>"
        for c in changed
    )
    return (
        f'<section class="changed" id="changed"><h2>Changed since expectations '
        f'({len(changed)})</h2><p class="line">{escape(gate_line(results))}</p>'
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
    columns = verdict_columns(results)
    identity = "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in identity_rows(results)
    )
    summary = "".join(
        f"<tr><td>{escape(name)}</td>"
        + "".join(f"<td>{counts[c] or ''}</td>" for c in columns)
        + "</tr>"
        for name, counts in summary_rows(results)
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
