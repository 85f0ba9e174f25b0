"""Several runs side by side: different servers, or one server on different days.

    dicomweb-conformance compare a/results.json b/results.json --out reports/compare

prints the requirements where the runs differ and writes ``compare.html`` and ``compare.md``:
one row per requirement, grouped by section, one column per run, the rows where the runs differ
first, then those some run did not run (no agreement), then those where they agree; each HTML
cell links to that requirement in the run's own conformance.html (next to its results.json).
Runs against different catalogs are refused unless ``--allow-different-catalogs``: their
verdicts would not be about the same rules.

Exit status: 1 when the runs differ, 0 when they agree (``--exit-zero``: always 0), 2 when an
input cannot be read.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .report import md_cell, shown_verdict
from .reporthtml import STYLE, badge, escape
from .results import load
from .sections import grouped, transaction_name

Results = Mapping[str, Any]
Row = tuple[str, Mapping[str, Any], list[str]]  # section, requirement, its cell in each run
NOT_RUN = "NOT RUN"  # the cell of a requirement whose checks did not run (report.shown_verdict)


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


def rows(runs: Sequence[Results]) -> list[Row]:
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


def split(table: Sequence[Row]) -> tuple[list[Row], list[Row], list[Row]]:
    """(where the runs differ, where some run did not run it, where they agree). A requirement
    differs when the runs that judged it disagree; one that a run did not judge is no
    agreement, even when no run judged it."""
    differ, not_run, same = [], [], []
    for row in table:
        judged = {verdict for verdict in row[2] if verdict != NOT_RUN}
        if len(judged) > 1:
            differ.append(row)
        elif NOT_RUN in row[2]:
            not_run.append(row)
        else:
            same.append(row)
    return differ, not_run, same


def _groups(table: Sequence[Row]) -> list[tuple[str, list[Row]]]:
    differ, not_run, same = split(table)
    # "Not run in every run" only when some requirement was: most comparisons are of full runs,
    # and a heading over an empty table reads like a rendering fault.
    return [
        (f"Where they differ ({len(differ)})", differ),
        *([(f"Not run in every run ({len(not_run)})", not_run)] if not_run else []),
        (f"Where they agree ({len(same)})", same),
    ]


def selection_problem(runs: Sequence[Results]) -> str | None:
    """Runs that chose different checks (-k, -m, modules) cannot agree where one did not look."""
    selected = [{c["check"] for c in run["checks"]} for run in runs]
    everywhere = set.intersection(*selected)
    somewhere = set.union(*selected)
    if somewhere == everywhere:
        return None
    return (
        f"the runs selected different checks: {len(somewhere - everywhere)} of "
        f"{len(somewhere)} ran in some runs only (other -k, -m or modules?)"
    )


def terminal(runs: Sequence[Results], table: Sequence[Row]) -> str:
    """The differences as a short table (requirement, then each run's verdict and reading),
    and one line of counts."""
    differ, not_run, same = split(table)
    counts = f"{len(same)} agree, {len(not_run)} not run in every run"
    if not differ:
        return f"no differences: {counts}\n"
    lines = [["requirement", *(column_name(run) for run in runs)]]
    lines += [[r["id"], *verdicts] for _, r, verdicts in differ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    shown = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    noun = "requirement differs" if len(differ) == 1 else "requirements differ"
    return "\n".join([*shown, f"{len(differ)} {noun}, {counts}"]) + "\n"


def markdown(runs: Sequence[Results]) -> str:
    names = [column_name(run) for run in runs]
    lines = ["# DICOMweb conformance, side by side", ""]
    lines += [
        f"- {md_cell(name)}: {run['base_url']}" for name, run in zip(names, runs, strict=True)
    ]
    header = "| section | requirement | " + " | ".join(md_cell(n) for n in names) + " |"
    rule = "| --- | --- |" + " --- |" * len(names)
    for title, chosen in _groups(rows(runs)):
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
    head = "".join(f"<th>{escape(n)}</th>" for n in names)

    def table(chosen: list[Row]) -> str:
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
{"".join(f"<h2>{title}</h2>{table(chosen)}" for title, chosen in _groups(rows(runs)))}
</body></html>
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dicomweb-conformance compare",
        description="Compare the results.json of several runs: the differences on the terminal, "
        "HTML and Markdown matrices in --out. Exit status 1 when the runs differ, 0 when they "
        "agree, 2 when an input cannot be read.",
    )
    parser.add_argument("results", type=Path, nargs="+", help="results.json files, two or more")
    parser.add_argument("--out", type=Path, default=Path("reports/compare"), help="folder to write")
    parser.add_argument(
        "--allow-different-catalogs",
        action="store_true",
        help="compare runs judged against different catalogs (other suite versions or editions)",
    )
    parser.add_argument(
        "--exit-zero", action="store_true", help="exit 0 even when the runs differ (for reports)"
    )
    args = parser.parse_intermixed_args(argv)  # options may come between the files
    if len(args.results) < 2:
        parser.error("give two or more results.json files")
    try:
        runs = [load(path) for path in args.results]
    except (OSError, ValueError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    problem = catalog_problem(runs)
    if problem and not args.allow_different_catalogs:
        print(f"{parser.prog}: error: {problem}", file=sys.stderr)
        return 2
    selection = selection_problem(runs)
    if selection:
        print(f"{parser.prog}: warning: {selection}", file=sys.stderr)
    table = rows(runs)
    sys.stdout.write(terminal(runs, table))
    args.out.mkdir(parents=True, exist_ok=True)
    html_path, md_path = args.out / "compare.html", args.out / "compare.md"
    html_path.write_text(render_html(runs, args.results, args.out), encoding="utf-8")
    md_path.write_text(markdown(runs), encoding="utf-8")
    print(html_path)
    print(md_path)
    differ, _, _ = split(table)
    return 1 if differ and not args.exit_zero else 0


if __name__ == "__main__":
    raise SystemExit(main())
