"""``dicomweb-conformance``: the suite for people who do not live in pytest.

    dicomweb-conformance run --base-url=https://host/dicom-web [qido ...] [pytest options]
    dicomweb-conformance report reports/results.json
    dicomweb-conformance compare a/results.json b/results.json
    dicomweb-conformance requirements [WORDS] [--level must] [--transaction qido]
    dicomweb-conformance requirements QIDO-NO-MATCH-204
    dicomweb-conformance baseline reports/results.json --previous old.toml > new.toml
    dicomweb-conformance basis > docs/standard-basis.md

pytest stays the engine: ``run`` is pytest on the suite's checks (or the modules named) with
every report written into one folder, and ``pytest --base-url=…`` keeps working as it does.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .catalog import Catalog


SUITE = "conformance.checks"
CHECKS_DIR = Path(__file__).parent / "checks"
# Options whose value is the next word (-k walkthrough, --deselect test_qido.py::x): that word
# is no module to run, even when it reads like one. Ours are added from settings.OPTIONS.
VALUE_OPTIONS = frozenset(("-k", "-m", "-p", "-c", "-o", "-W", "-n", "-r", "--tb", "--maxfail"))
VALUE_OPTIONS |= {"--deselect", "--ignore", "--ignore-glob", "--rootdir", "--basetemp"}
VALUE_OPTIONS |= {"--confcutdir", "--junitxml", "--html", "--css", "--dist", "--base-url"}


def check_targets(word: str, here: Path) -> list[str] | None:
    """What a word of ``run`` names: ``qido`` or ``test_qido`` the transaction's modules
    (test_qido.py and its topics, test_qido_paging.py ...), ``test_qido.py`` (with ``::check``)
    that one module, each given as its path so that the run works from any folder; a path that
    exists here stays as it is; None: it names nothing."""
    name, sep, rest = word.partition("::")
    if (here / name).exists():
        return [word]
    stem = name.removesuffix(".py")
    stem = stem if stem.startswith("test_") else f"test_{stem}"
    module = CHECKS_DIR / f"{stem}.py"
    if not module.is_file():
        return None
    if name.endswith(".py") or sep:
        return [f"{module}{sep}{rest}"]
    return [str(module), *(str(p) for p in sorted(CHECKS_DIR.glob(f"{stem}_*.py")))]


def pytest_arguments(rest: Sequence[str], here: Path) -> list[str]:
    """``run``'s words for pytest: each module named made its path; without a word saying
    what to run, the whole suite. A word that names nothing is refused (ValueError) before
    pytest starts, rather than after it has written its reports."""
    from .settings import OPTIONS

    values = VALUE_OPTIONS | {o.cli for o in OPTIONS if not o.flag}
    args, named = [], False
    for before, word in zip(["", *rest], rest, strict=False):
        if word.startswith("-") or before in values:
            args.append(word)
            continue
        targets = check_targets(word, here) or ([word] if "--pyargs" in rest else None)
        if targets is None:
            found = sorted(CHECKS_DIR.glob("test_*.py"))
            modules = ", ".join(p.stem.removeprefix("test_") for p in found)
            raise ValueError(
                f"{word!r} names no module of the suite ({modules}) and no path here "
                "(an option's value? write --option=value)"
            )
        named = True
        args.extend(targets)
    return args if named else ["--pyargs", SUITE, *args]


class NeedsAServer:
    """A plugin of ``run``'s pytest: no server is one line (exit status 4) before pytest
    writes any report, or makes their folder."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(self, config: pytest.Config) -> None:
        if not (config.getoption("base_url", None) or config.getini("base_url")):
            raise pytest.UsageError(
                "dicomweb-conformance run: no server given: pass "
                "--base-url=https://host/dicom-web (or set PYTEST_BASE_URL)"
            )


def run(args: argparse.Namespace, rest: list[str]) -> int:
    out: Path = args.out
    reports = [
        f"--junitxml={out / 'junit.xml'}",
        f"--html={out / 'report.html'}",
        "--self-contained-html",
        f"--dicomweb-results={out / 'results.json'}",
    ]
    try:
        chosen = pytest_arguments(rest, Path.cwd())
    except ValueError as exc:
        print(f"dicomweb-conformance run: error: {exc}", file=sys.stderr)
        return int(pytest.ExitCode.USAGE_ERROR)
    # The console script has imported this package before pytest could mark it for assertion
    # rewriting: the modules it imports later are still rewritten, so the warning is noise.
    quiet = "ignore:Module already imported so cannot be rewritten; conformance:"
    quiet += "pytest.PytestAssertRewriteWarning"
    return int(pytest.main(["-W", quiet, *reports, *chosen], plugins=[NeedsAServer()]))


def run_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="dicomweb-conformance run",
        description="Run the checks (pytest) and write every report into one folder: junit.xml, "
        "report.html (pytest-html), results.json, conformance.html and .md. Words name what to "
        "run: a module of the suite (qido, test_qido.py, test_qido.py::test_x) or a path; "
        "without, the whole suite. Any other option goes to pytest: --base-url=…, "
        "--dicomweb-profile=…, -k, -n.",
        allow_abbrev=False,
    )
    parser.add_argument("--out", type=Path, default=Path("reports"), help="default: reports")
    args, rest = parser.parse_known_args(argv)
    return run(args, rest)


def requirements(
    catalog: Catalog, words: Sequence[str], level: str | None, transaction: str | None
) -> int:
    from .basis import entry

    if len(words) == 1 and words[0].upper() in catalog:
        print("\n".join(entry(catalog[words[0].upper()])).rstrip())
        return 0
    wanted = [word.lower() for text in words for word in text.split()]
    found = [
        r
        for r in catalog.values()
        if all(word in f"{r.id} {r.title} {r.text}".lower() for word in wanted)
        and level in (None, r.level)
        and transaction in (None, r.transaction)
    ]
    for r in found:
        print(f"{r.id:45} {r.level:6} {r.part} {r.section:18} {r.title}")
    print(f"{len(found)} requirement(s)", file=sys.stderr)
    return 0


def requirements_main(argv: Sequence[str]) -> int:
    from .catalog import LEVELS, TRANSACTIONS, default

    catalog = default()
    present = {r.transaction for r in catalog.values()}
    known = [t for t in TRANSACTIONS if t in present] + sorted(present - set(TRANSACTIONS))
    parser = argparse.ArgumentParser(
        prog="dicomweb-conformance requirements",
        description="Search the catalog: every word must appear in a requirement's ID, title or "
        "rule, in any order and any case. An exact ID prints that requirement's whole rule.",
    )
    parser.add_argument("words", nargs="*", help="words of an ID, title or rule; or one ID")
    parser.add_argument("--level", help=", ".join(LEVELS) + " (any case)")
    parser.add_argument("--transaction", help=", ".join(known) + " (any case)")
    args = parser.parse_args(argv)
    level = args.level.upper() if args.level else None
    if level is not None and level not in LEVELS:
        return _refuse(parser, f"unknown level {args.level!r}; known: {', '.join(LEVELS)}")
    transaction = args.transaction.lower() if args.transaction else None
    if transaction is not None and transaction not in known:
        return _refuse(
            parser, f"unknown transaction {args.transaction!r}; known: {', '.join(known)}"
        )
    return requirements(catalog, args.words, level, transaction)


def _refuse(parser: argparse.ArgumentParser, problem: str) -> int:
    print(f"{parser.prog}: error: {problem}", file=sys.stderr)
    return 2


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
    "report": (_delegate("reports"), "re-render conformance.html and .md from a results.json"),
    "compare": (_delegate("compare"), "several results.json side by side"),
    "requirements": (requirements_main, "search the catalog, or print one requirement's rule"),
    "baseline": (_delegate("expectations"), "write an expectations file from a results.json"),
    "basis": (_delegate("basis"), "the standard's words behind every verdict, as Markdown"),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        command, _ = COMMANDS[argv[0]]
        return command(argv[1:])
    if argv and not argv[0].startswith("-"):
        print(
            f"dicomweb-conformance: error: unknown command {argv[0]!r}; commands: "
            + ", ".join(COMMANDS),
            file=sys.stderr,
        )
        return 2
    asked = argv[:1] in (["-h"], ["--help"])
    lines = [__doc__ or "", "commands:"]
    lines += [f"  {name:13} {what}" for name, (_, what) in COMMANDS.items()]
    lines.append("Each command's --help says more.")
    print("\n".join(lines), file=sys.stdout if asked else sys.stderr)
    return 0 if asked else 2


if __name__ == "__main__":
    raise SystemExit(main())
