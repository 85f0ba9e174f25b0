"""Several runs side by side: different servers, or one server on different days.

    python -m conformance.compare a/results.json b/results.json --out reports/compare

writes ``compare.html`` and ``compare.md``: one row per requirement, grouped by section, one
column per run, the rows where the runs differ first; each HTML cell links to that requirement
in the run's own conformance.html (next to its results.json). Runs against different catalogs
are refused unless ``--allow-different-catalogs``: their verdicts would not be about the same
rules.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .report import STYLE, badge, escape, grouped, md_cell, shown_verdict, transaction_name
from .results import load

Results = Mapping[str, Any]


def column_name(results: Results) -> str:
    return f"{results['server_name'] or results['profile']} ({results['started'][:10]})"


def catalog_problem(runs: Sequence[Results]) -> str | None:
    first = runs[0]["catalog"]
    for run in runs[1:]:
        if run["catalog"] != first:
            return (
                f"{column_name(run)} was judged against another catalog than "
                f"{column_name(runs[0])} ({run['catalog']['requirements']} requirements vs "
                f"{first['requirements']}, or other editions): pass --allow-different-catalogs "
                "to compare them anyway"
            )
    return None


def cell(requirement: Mapping[str, Any]) -> str:
    """A requirement's verdict in one run, with the reading of its rule the server chose:
    "INFO (200-empty)". Two servers choosing different readings differ."""
    reading = requirement.get("reading")
    return shown_verdict(requirement) + (f" ({reading})" if reading else "")


def rows(runs: Sequence[Results]) -> list[tuple[str, Mapping[str, Any], list[str]]]:
    """(section, requirement, the verdict in each run), in the first run's order; a requirement
    a run does not have is "ABSENT" there."""
    by_run = [{r["id"]: r for r in run["requirements"]} for run in runs]
    found = []
    seen = set()
    for run in runs:
        for sections in grouped(run).values():
            for section, requirements in sections.items():
                for r in requirements:
                    if r["id"] in seen:
                        continue
                    seen.add(r["id"])
                    verdicts = [cell(b[r["id"]]) if r["id"] in b else "ABSENT" for b in by_run]
                    found.append((section, r, verdicts))
    return found


def _split(table: list[tuple[str, Mapping[str, Any], list[str]]]) -> tuple[list[Any], list[Any]]:
    differ = [row for row in table if len(set(row[2])) > 1]
    same = [row for row in table if len(set(row[2])) == 1]
    return differ, same


def markdown(runs: Sequence[Results]) -> str:
    names = [column_name(run) for run in runs]
    table = rows(runs)
    differ, same = _split(table)
    lines = ["# DICOMweb conformance, side by side", ""]
    lines += [
        f"- {md_cell(name)}: {run['base_url']}" for name, run in zip(names, runs, strict=True)
    ]
    header = "| section | requirement | " + " | ".join(md_cell(n) for n in names) + " |"
    rule = "| --- | --- |" + " --- |" * len(names)
    for title, chosen in (
        (f"Where they differ ({len(differ)})", differ),
        (f"Where they agree ({len(same)})", same),
    ):
        lines += ["", f"## {title}", "", header, rule]
        for section, r, verdicts in chosen:
            lines.append(
                f"| {md_cell(section)} | {r['id']} {md_cell(r['title'])} | "
                + " | ".join(verdicts)
                + " |"
            )
    return "\n".join(lines) + "\n"


def _cell_html(shown: str, link: str) -> str:
    """A run's cell: its verdict's badge, linking to the requirement in that run's report, and
    the reading chosen, if any."""
    if shown == "ABSENT":
        return "<td>absent</td>"
    verdict, _, reading = shown.partition(" (")
    chosen = f" <small>{escape(reading.rstrip(')'))}</small>" if reading else ""
    return f'<td><a href="{escape(link)}">{badge(verdict)}</a>{chosen}</td>'


def render_html(runs: Sequence[Results], paths: Sequence[Path], out: Path) -> str:
    names = [column_name(run) for run in runs]
    reports = [os.path.relpath(path.parent / "conformance.html", out) for path in paths]
    differ, same = _split(rows(runs))
    head = "".join(f"<th>{escape(n)}</th>" for n in names)

    def table(chosen: list[Any]) -> str:
        body = []
        for section, r, verdicts in chosen:
            cells = "".join(
                _cell_html(v, f"{report}#req-{r['id']}")
                for v, report in zip(verdicts, reports, strict=True)
            )
            body.append(
                f"<tr><td>{escape(section)}</td><td><code>{escape(r['id'])}</code> "
                f"{escape(r['title'])} <small>({escape(r['level'])}, "
                f"{escape(transaction_name(r['transaction']))})</small></td>{cells}</tr>"
            )
        return f"<table><tr><th>section</th><th>requirement</th>{head}</tr>{''.join(body)}</table>"

    runs_list = "".join(
        f"<li>{escape(n)}: {escape(run['base_url'])}, profile {escape(run['profile'])}, "
        f"suite {escape(run['suite']['version'])}</li>"
        for n, run in zip(names, runs, strict=True)
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>DICOMweb conformance, side by side</title>
<style>{STYLE}</style></head><body>
<h1>DICOMweb conformance, side by side</h1><ul>{runs_list}</ul>
<h2>Where they differ ({len(differ)})</h2>{table(differ)}
<h2>Where they agree ({len(same)})</h2>{table(same)}
</body></html>
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m conformance.compare",
        description="Compare the results.json of several runs: HTML and Markdown matrices.",
    )
    parser.add_argument("results", type=Path, nargs="+", help="results.json files, two or more")
    parser.add_argument("--out", type=Path, default=Path("reports/compare"), help="folder to write")
    parser.add_argument("--allow-different-catalogs", action="store_true")
    args = parser.parse_args(argv)
    if len(args.results) < 2:
        parser.error("give two or more results.json files")
    try:
        runs = [load(path) for path in args.results]
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problem = catalog_problem(runs)
    if problem and not args.allow_different_catalogs:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    html_path, md_path = args.out / "compare.html", args.out / "compare.md"
    html_path.write_text(render_html(runs, args.results, args.out), encoding="utf-8")
    md_path.write_text(markdown(runs), encoding="utf-8")
    print(html_path)
    print(md_path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
