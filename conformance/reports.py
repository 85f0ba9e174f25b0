"""The reports of a run, written from its results.json alone, without the server: the Markdown
statement (``report.py``) and the HTML report (``reporthtml.py``), next to each other.

    dicomweb-conformance report reports/results.json            # writes conformance.md/.html
    dicomweb-conformance report results.json --out some/folder  # next to each other, elsewhere

Every run with ``--dicomweb-results`` writes both next to its results.json.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .report import Results, markdown
from .reporthtml import render_html
from .results import load


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
