"""The README's figures, made from the project's own data so they cannot drift: the catalog table
(from the catalog and the collected checks) and the servers table (from the recorded verdicts of
expectations/, the conformance line included). tests/test_readme_figures.py holds the README to
them; this script rewrites them:

    .venv/bin/python tests/readmefigures.py          # rewrite README.md's generated tables

Each table sits between ``<!-- generated: NAME -->`` and ``<!-- /generated: NAME -->``.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from paths import CHECKS_DIR, REPO, SERVERS

from conformance import catalog, expectations, report, results
from conformance.verdicts import Verdict

README = REPO / "README.md"
SERVER_TITLES = {
    "Orthanc 1.10": "Orthanc 1.10.1, DICOMweb plugin 1.7 (profile `orthanc`)",
    "Orthanc 1.12": "Orthanc 1.12.7, DICOMweb plugin 1.20 (profile `orthanc-1.12`)",
    "Orthanc 1.13": "Orthanc 1.13.0, DICOMweb plugin 1.24 (profile `orthanc-1.13`)",
    "tiny-pacs": "tiny-pacs 0.4.1, tiny-pacs-dicomweb 0.1.0 (profile `tiny-pacs`)",
}


def collected_checks() -> dict[str, list[str]]:
    """Check name -> the requirement IDs it names, as pytest collects the suite's checks."""
    import pytest

    from conformance.items import check_name

    found: dict[str, list[str]] = {}

    class Collector:
        def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
            for item in items:
                ids = [i for mark in item.iter_markers("requirement") for i in mark.args]
                found[check_name(item.nodeid)] = ids

    args = [str(CHECKS_DIR), "--collect-only", "-qq", "-p", "no:cacheprovider"]
    with contextlib.redirect_stdout(io.StringIO()):  # the collected names are not the figures
        code = pytest.main([*args, "--base-url=http://x"], plugins=[Collector()])
    assert code == pytest.ExitCode.OK
    return found


def _cells(values: list[object]) -> str:
    return "| " + " | ".join(str(v) if v else "" for v in values) + " |"


def catalog_table(checks: dict[str, list[str]]) -> str:
    known = catalog.default()
    covered: dict[str, set[str]] = defaultdict(set)
    for check, ids in checks.items():
        for rid in ids:
            covered[rid].add(check)
    lines = [
        "| transaction (file) | requirements | MUST | SHOULD | MAY | withdrawn | with checks "
        "| check items |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, name in catalog.TRANSACTIONS.items():
        rs = [r for r in known.values() if r.transaction == key]
        judged = Counter(r.level for r in rs if r.judged)
        items = {check for r in rs for check in covered[r.id]}
        lines.append(
            _cells(
                [
                    f"{name} (`{key}`)",
                    len(rs),
                    judged["MUST"],
                    judged["SHOULD"],
                    judged["MAY"],
                    sum(bool(r.withdrawn) for r in rs),
                    sum(bool(covered[r.id]) for r in rs),
                    len(items),
                ]
            )
        )
    return "\n".join(lines)


def catalog_sentence(checks: dict[str, list[str]]) -> str:
    known = catalog.default()
    judged = Counter(r.level for r in known.values() if r.judged)
    withdrawn = sum(bool(r.withdrawn) for r in known.values())
    named = {rid for ids in checks.values() for rid in ids}
    untested = sum(bool(r.untested) and not r.withdrawn for r in known.values())
    return (
        f"The catalog holds **{len(known)} requirements**: {judged['MUST']} MUST, "
        f"{judged['SHOULD']} SHOULD and {judged['MAY']} MAY, and {withdrawn} withdrawn (the text\n"
        "they rested on is descriptive: no rule). "
        f"**{len(named)} have checks** ({len(checks)} test items once parametrized);\n"
        f"{untested} say why they have none (`untested`):"
    )


ORDER = [Verdict.PASS, Verdict.FAIL, Verdict.NON_STRICT, Verdict.NOT_IMPLEMENTED]
ORDER += [Verdict.DISABLED, Verdict.INFO, Verdict.ERROR]


def servers_table(checks: dict[str, list[str]]) -> str:
    """Each server's check verdicts and conformance line, from its recorded expectations."""
    known = catalog.default()
    lines = [
        "| server | " + " | ".join(ORDER) + " | conformance line |",
        "| --- |" + " --- |" * (len(ORDER) + 1),
    ]
    for server, path in SERVERS.items():
        entries = expectations.load(path).entries
        records = [
            {
                "check": check,
                "requirements": checks[check],
                "verdict": str(e.verdict),
                "reading": e.reading,
            }
            for check, e in entries.items()
            if check in checks
        ]
        counts = Counter(r["verdict"] for r in records)
        rows = results.requirement_rows(known, records)
        line = report.conformance_line({"requirements": rows})
        lines.append(_cells([SERVER_TITLES[server], *(counts[v] or "0" for v in ORDER), line]))
    return "\n".join(lines)


GENERATED: dict[str, Callable[[dict[str, list[str]]], str]] = {
    "catalog-sentence": catalog_sentence,
    "catalog-table": catalog_table,
    "servers-table": servers_table,
}


def _block(name: str) -> re.Pattern[str]:
    return re.compile(
        rf"(<!-- generated: {name} -->\n)(.*?)(\n<!-- /generated: {name} -->)", re.DOTALL
    )


def current(text: str, name: str) -> str | None:
    found = _block(name).search(text)
    return found.group(2) if found else None


def replaced(text: str, name: str, body: str) -> str:
    found = _block(name).search(text)
    if found is None:
        return text
    return text[: found.start(2)] + body + text[found.end(2) :]


def rewritten(text: str, checks: dict[str, list[str]]) -> str:
    for name, make in GENERATED.items():
        text = replaced(text, name, make(checks))
    return text


if __name__ == "__main__":
    text = README.read_text(encoding="utf-8")
    README.write_text(rewritten(text, collected_checks()), encoding="utf-8")
