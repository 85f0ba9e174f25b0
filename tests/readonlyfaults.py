"""Which faults a read-only run catches: each proxy fault of the registry (tests/proof.py), run
read-only on a foreign archive (tests/heldarchive.py) and compared with the same run without it.

One Orthanc 1.10; the archive is stored into it once, straight (not by a run of the suite). A
read-only run of the whole catalog through a FaultProxy without a fault is the baseline; then
one run per fault, through a FaultProxy with it. A fault is caught read-only when a check fails
that passed the baseline (or the run stops before any check). That it is caught writing is the
registry's claim, asserted by the test module each entry names (test_catalog_faults.py for
most). The faults injected elsewhere than the proxy (the Azure stand-in, an auth gateway, a
profile's promise) need set-ups of their own and are listed as not run, with the reason.

    scripts/read-only-faults            # writes docs/read-only-faults.md, prints the summary
    scripts/read-only-faults -j 2 -k qido   # two faults at a time; only faults named *qido*

A script, not a test (like faultmatrix.py): a few minutes of Orthanc.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import proof
from faultproxy import FaultProxy
from faults import FAULTS
from heldarchive import store

from conformance.client import Client
from conformance.local.orthanc import LocalOrthanc

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "read-only-faults.md"
PYTEST = REPO / ".venv" / "bin" / "pytest"
FAILING = {"FAIL", "ERROR", "NON-STRICT"}
UNJUDGED = {"DISABLED", "NOT-IMPLEMENTED"}
# Where a fault is injected -> why it is not run read-only here (it needs another set-up).
NOT_RUN = {
    proof.STANDIN: "needs the Azure stand-in (tests/azurestandin.py), its own server",
    proof.AUTH_GATEWAY: "needs a server with auth behind a gateway (tests/authmatrix.py)",
    proof.PROMISE: "needs a profile promising what Orthanc lacks, not a proxy",
}
RUN_TIMEOUT = 600
STOPPED = "(the run)"  # in place of a check: the run stopped before any check


class RunStopped(Exception):
    """The run judged nothing: it stopped before any check (its last ERROR line says why)."""


def read_only_verdicts(base_url: str, studies: Sequence[str], results: Path) -> dict[str, str]:
    """Check name -> verdict of a read-only run of the whole catalog (Orthanc's profile)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DICOMWEB_", "PYTEST_"))}
    command = [
        str(PYTEST),
        *("--pyargs", "conformance.checks", "-q", "-p", "no:cacheprovider"),
        f"--base-url={base_url}",
        "--dicomweb-profile=orthanc",
        f"--dicomweb-results={results}",
        "--dicomweb-read-only",
        f"--dicomweb-studies={','.join(studies)}",
    ]
    done = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT
    )
    if not results.exists():
        # It stopped before any check: a usage error (nothing to read, say) or an internal
        # error (the suite's own bug, shown by the fault: worth a line in the table).
        lines = (done.stdout + done.stderr).splitlines()
        said = [line for line in lines if line.startswith("ERROR: ")] or [
            line for line in lines if line.startswith("INTERNALERROR> ") and "Error" in line
        ]
        if said:
            raise RunStopped(f"exit {done.returncode}: {said[-1].split('> ')[-1]}")
        raise RuntimeError(f"the run wrote no results:\n{done.stdout[-3000:]}{done.stderr}")
    document = json.loads(results.read_text())
    return {c["check"]: c["verdict"] for c in document["checks"]}


@dataclass(frozen=True)
class Outcome:
    fault: str
    where: str
    caught_writing: tuple[str, ...]  # the checks the registry says it fails in a writing run
    changed: dict[str, tuple[str, str]]  # check -> (baseline verdict, verdict under the fault)
    seconds: float
    judged: int  # of caught_writing, the checks a read-only run judges (not DISABLED)

    @property
    def caught(self) -> bool:
        """Some check now fails where it did not (or the run stopped): a verdict that only
        improves (NOT-IMPLEMENTED -> PASS under a fault that implements a resource) is not."""
        return STOPPED in self.changed or any(
            new in FAILING and old not in FAILING for old, new in self.changed.values()
        )

    @property
    def failed(self) -> list[str]:
        """The changed checks that now fail (FAIL, ERROR or NON-STRICT)."""
        return sorted(c for c, (_, new) in self.changed.items() if new in FAILING)


def run_fault(
    upstream: str, studies: Sequence[str], name: str, baseline: dict[str, str], work: Path
) -> Outcome:
    entry = proof.PROOFS[name]
    start = time.monotonic()
    with FaultProxy(upstream, name) as proxy:
        try:
            got = read_only_verdicts(f"{proxy.url}/dicom-web", studies, work / f"{name}.json")
        except RunStopped as stopped:
            got = {STOPPED: f"stopped before any check ({stopped})"}
            baseline = {STOPPED: "ran", **baseline}
    changed = {
        check: (baseline.get(check, "not run"), got.get(check, "not run"))
        for check in sorted(set(baseline) | set(got))
        if baseline.get(check) != got.get(check)
    }
    judged = sum(baseline.get(c, "DISABLED") not in UNJUDGED for c in entry.checks)
    return Outcome(
        name, entry.where, tuple(sorted(entry.checks)), changed, time.monotonic() - start, judged
    )


def render(outcomes: list[Outcome], seconds: float, judged: int, total: int) -> str:
    proof.load()
    caught = sum(o.caught for o in outcomes)
    within = [o for o in outcomes if o.judged]
    not_run = {n: p for n, p in proof.faults().items() if p.where in NOT_RUN}
    lines = [
        "# Faults caught read-only",
        "",
        "Generated by `scripts/read-only-faults` (tests/readonlyfaults.py); do not edit by hand.",
        "Each proxy fault of the registry (tests/proof.py) is injected over Orthanc 1.10 holding",
        "a foreign archive (tests/heldarchive.py: 5 studies, 3 patients, stored straight, never",
        "by a run), and the whole catalog runs read-only on it (`--dicomweb-read-only",
        "--dicomweb-studies=` its five studies). A fault is *caught read-only* when a check",
        "fails (FAIL, ERROR or NON-STRICT) that passed the same read-only run without the fault,",
        "or the run stops before any check; every verdict that differs is listed. *Caught",
        "writing* is the registry's claim (the checks it must fail in a writing run), asserted by",
        "the test module each entry names.",
        "",
        f"**{caught} of {len(outcomes)} faults caught read-only**; of the {len(within)} whose "
        f"registered checks include one a read-only run judges, {sum(o.caught for o in within)}"
        f" are. The read-only run judges {judged} of {total} checks (the others need to write, "
        f"or are not implemented); {len(outcomes) + 1} runs of the catalog took {seconds:.0f} s.",
        "",
        "| fault | injected by | caught writing (its checks) | its checks judged read-only "
        "| caught read-only | verdicts that change |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for o in sorted(outcomes, key=lambda o: (not o.caught, o.fault)):
        shown = "<br>".join(
            f"{c} {new}" if c == STOPPED else f"`{c}` {old} → {new}"
            for c, (old, new) in o.changed.items()
            if c == STOPPED or new != "not run"
        ).replace("|", "\\|")
        where = "proxy" if o.where == proof.PROXY else o.where
        lines.append(
            f"| `{o.fault}` | {where} | yes ({len(o.caught_writing)}) | {o.judged} | "
            f"{'**yes**' if o.caught else 'no'} | {shown} |"
        )
    lines += [
        "",
        "## Not run read-only",
        "",
        "| fault | injected by | why |",
        "| --- | --- | --- |",
    ]
    lines += [f"| `{n}` | {p.where} | {NOT_RUN[p.where]} |" for n, p in sorted(not_run.items())]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-j", "--jobs", type=int, default=1, help="faults run at a time (1-2)")
    parser.add_argument("-k", dest="only", help="only the faults whose name contains this")
    parser.add_argument("--out", type=Path, default=DOC, help="where the table goes")
    args = parser.parse_args(argv)
    proof.load()
    names = sorted(
        n
        for n, p in proof.faults().items()
        if p.where not in NOT_RUN and n in FAULTS and (args.only is None or args.only in n)
    )
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp, LocalOrthanc() as orthanc:
        work = Path(tmp)
        studies = store(Client(orthanc.dicomweb_url))
        with FaultProxy(orthanc.url) as proxy:
            baseline = read_only_verdicts(f"{proxy.url}/dicom-web", studies, work / "none.json")
        with ThreadPoolExecutor(max_workers=max(1, min(args.jobs, 2))) as pool:
            outcomes = list(
                pool.map(lambda n: run_fault(orthanc.url, studies, n, baseline, work), names)
            )
    seconds = time.monotonic() - start
    judged = sum(v not in UNJUDGED for v in baseline.values())
    args.out.write_text(render(outcomes, seconds, judged, len(baseline)), encoding="utf-8")
    caught = sum(o.caught for o in outcomes)
    print(f"{caught} of {len(outcomes)} faults caught read-only ({seconds:.0f} s); {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
