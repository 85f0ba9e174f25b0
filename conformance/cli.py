"""``dicomweb-conformance``: the suite for people who do not live in pytest.

    dicomweb-conformance run --base-url=https://host/dicom-web [pytest options]
    dicomweb-conformance report reports/results.json
    dicomweb-conformance compare a/results.json b/results.json
    dicomweb-conformance requirements [TEXT] [--level MUST] [--transaction qido]
    dicomweb-conformance baseline reports/results.json --previous old.toml > new.toml

pytest stays the engine: ``run`` is ``pytest --pyargs conformance.checks`` with every report
written into one folder, and ``pytest --base-url=…`` keeps working as it does.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def run(args: argparse.Namespace, rest: list[str]) -> int:
    import pytest

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    return int(
        pytest.main(
            [
                "--pyargs",
                "conformance.checks",
                f"--junitxml={out / 'junit.xml'}",
                f"--dicomweb-results={out / 'results.json'}",
                *rest,
            ]
        )
    )


def requirements(args: argparse.Namespace) -> int:
    from .catalog import default

    text = (args.text or "").lower()
    found = [
        r
        for r in default().values()
        if (not text or text in f"{r.id} {r.title} {r.text}".lower())
        and (not args.level or r.level == args.level)
        and (not args.transaction or r.transaction == args.transaction)
    ]
    for r in found:
        print(f"{r.id:45} {r.level:6} {r.part} {r.section:18} {r.title}")
    print(f"{len(found)} requirement(s)", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dicomweb-conformance",
        description="Check a DICOMweb server against PS3.18, and report on it.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser(
        "run",
        help="run the checks (pytest) and write every report into one folder",
        description="Any option after the known ones goes to pytest: --base-url=…, "
        "--dicomweb-profile=…, -k …, -n 2.",
    )
    run_parser.add_argument("--out", type=Path, default=Path("reports"), help="default: reports")
    report_parser = commands.add_parser("report", help="re-render the reports of a results.json")
    report_parser.add_argument("results")
    report_parser.add_argument("--out")
    compare_parser = commands.add_parser("compare", help="several results.json side by side")
    compare_parser.add_argument("results", nargs="+")
    compare_parser.add_argument("--out")
    compare_parser.add_argument("--allow-different-catalogs", action="store_true")
    list_parser = commands.add_parser("requirements", help="list or search the catalog")
    list_parser.add_argument("text", nargs="?", help="words of an ID, title or rule")
    list_parser.add_argument("--level", choices=("MUST", "SHOULD", "MAY"))
    list_parser.add_argument("--transaction", help="stow, wado, qido, json, http, azure, article")
    baseline_parser = commands.add_parser(
        "baseline", help="write an expectations file from a results.json (to stdout)"
    )
    baseline_parser.add_argument("results")
    baseline_parser.add_argument("--previous", help="an expectations file whose reasons to keep")
    baseline_parser.add_argument("--server", help="what the file describes")
    args, rest = parser.parse_known_args(argv)
    if args.command != "run" and rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "run":
        return run(args, rest)
    if args.command == "requirements":
        return requirements(args)
    forwarded = [str(args.results)] if isinstance(args.results, str) else list(args.results)
    for option in ("out", "previous", "server"):
        if getattr(args, option, None):
            forwarded += [f"--{option}", str(getattr(args, option))]
    if getattr(args, "allow_different_catalogs", False):
        forwarded.append("--allow-different-catalogs")
    if args.command == "report":
        from .report import main as report_main

        return report_main(forwarded)
    if args.command == "compare":
        from .compare import main as compare_main

        return compare_main(forwarded)
    from .expectations import main as baseline_main

    return baseline_main(forwarded)


if __name__ == "__main__":
    raise SystemExit(main())
