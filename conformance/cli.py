"""``dicomweb-conformance``: the suite for people who do not live in pytest.

    dicomweb-conformance run --base-url=https://host/dicom-web [pytest options]
    dicomweb-conformance report reports/results.json
    dicomweb-conformance compare a/results.json b/results.json
    dicomweb-conformance requirements [TEXT] [--level MUST] [--transaction qido]
    dicomweb-conformance baseline reports/results.json --previous old.toml > new.toml
    dicomweb-conformance basis > docs/standard-basis.md

pytest stays the engine: ``run`` is ``pytest --pyargs conformance.checks`` with every report
written into one folder, and ``pytest --base-url=…`` keeps working as it does.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
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


def requirements_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="dicomweb-conformance requirements", description="List or search the catalog."
    )
    parser.add_argument("text", nargs="?", help="words of an ID, title or rule")
    parser.add_argument("--level", choices=("MUST", "SHOULD", "MAY"))
    parser.add_argument("--transaction", help="stow, wado, qido, json, http, azure, article")
    return requirements(parser.parse_args(argv))


def run_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="dicomweb-conformance run",
        description="Run the checks (pytest) and write every report into one folder. Any "
        "option after the known ones goes to pytest: --base-url=…, --dicomweb-profile=…, -k, -n.",
    )
    parser.add_argument("--out", type=Path, default=Path("reports"), help="default: reports")
    args, rest = parser.parse_known_args(argv)
    return run(args, rest)


def _delegate(module: str) -> Callable[[Sequence[str]], int]:
    """The command of another module, which owns its options (python -m conformance.<module>)."""

    def main(argv: Sequence[str]) -> int:
        command: Callable[[Sequence[str]], int] = importlib.import_module(
            f"conformance.{module}"
        ).main
        return command(argv)

    return main


COMMANDS: dict[str, tuple[Callable[[Sequence[str]], int], str]] = {
    "run": (run_main, "run the checks (pytest) and write every report into one folder"),
    "report": (_delegate("report"), "re-render conformance.html and .md from a results.json"),
    "compare": (_delegate("compare"), "several results.json side by side"),
    "requirements": (requirements_main, "list or search the catalog"),
    "baseline": (_delegate("expectations"), "write an expectations file from a results.json"),
    "basis": (_delegate("basis"), "the standard's words behind every verdict, as Markdown"),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        command, _ = COMMANDS[argv[0]]
        return command(argv[1:])
    asked = argv[:1] in (["-h"], ["--help"])
    lines = [__doc__ or "", "commands:"]
    lines += [f"  {name:13} {what}" for name, (_, what) in COMMANDS.items()]
    lines.append("Each command's --help says more.")
    print("\n".join(lines), file=sys.stdout if asked else sys.stderr)
    return 0 if asked else 2


if __name__ == "__main__":
    raise SystemExit(main())
