"""Wall time at --dicomweb-concurrency 1 and N against a local throwaway Orthanc made far away by
the latency proxy (+50 ms by default): a read-only run of the whole catalog on the article's study
stored straight into Orthanc (data no run stored), and a writing run of -k test_existing. The
settings are interleaved run by run, so that the machine's noise falls on all; each line gives
the median over --runs runs (process start included) and the verdicts' agreement.

With --series N the read-only run reads a generated study of N series of --instances images each
instead (more series: longer chains of independent requests in the sampling and test_existing).

Usage: .venv/bin/python benchmarks/concurrency_time.py [--runs 3] [--latency 50]
       [--concurrency 1 4] [--read-only-k EXPRESSION] [--writing-k test_existing]
       [--series N --instances M] [--no-writing]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from latencyproxy import LatencyProxy
from suite_time import through

from conformance import samples
from conformance.client import Client
from conformance.dicomweb import stow
from conformance.local.orthanc import LocalOrthanc
from conformance.synthetic import generated_instance


def one_run(base_url: str, args: list[str]) -> tuple[float, dict[str, str], int]:
    """Wall seconds, verdicts and requests of one run of the installed checks."""
    with tempfile.TemporaryDirectory() as folder:
        results = Path(folder) / "results.json"
        command = [
            sys.executable, "-m", "pytest", "--pyargs", "conformance.checks", "-q",
            "-p", "no:cacheprovider", f"--base-url={base_url}",
            f"--dicomweb-results={results}", "--dicomweb-profile=orthanc", *args,
        ]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        data = json.loads(results.read_text()) if results.exists() else {}
    verdicts = {c["check"]: c["verdict"] for c in data.get("checks", [])}
    reading = data.get("reading") or {}
    return wall, verdicts, int(reading.get("requests", 0))


def held(orthanc: LocalOrthanc, args: argparse.Namespace) -> str:
    """Store the study the read-only run reads, straight into Orthanc: its UID."""
    client = Client(orthanc.dicomweb_url)
    if not args.series:
        study = samples.fresh_copy(samples.load(), "somebody", "existing")
        assert stow(client, study).status_code == 200
        return study.study_uid
    uid = samples.derive_uid("somebody", "many-series", "study")
    instances = [
        generated_instance("somebody", uid, f"{uid}.{series}.{n}", None, [], series=series)
        for series in range(1, args.series + 1)
        for n in range(1, args.instances + 1)
    ]
    assert stow(client, instances).status_code == 200
    return uid


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency", type=float, default=50)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--read-only-k", default=None, help="-k of the read-only run (all)")
    parser.add_argument("--writing-k", default="test_existing", help="-k of the writing run")
    parser.add_argument("--no-writing", action="store_true", help="only the read-only run")
    parser.add_argument("--series", type=int, default=0, help="a generated held study's series")
    parser.add_argument("--instances", type=int, default=2, help="its images per series")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at the start")
    with LocalOrthanc() as orthanc:
        port = urlsplit(orthanc.dicomweb_url).port or 80
        with LatencyProxy(port, args.latency) as proxy:
            url = through(orthanc.dicomweb_url, proxy.port)
            kinds = {
                "read-only": ["--dicomweb-read-only"]
                + (["-k", args.read_only_k] if args.read_only_k else []),
            }
            if not args.no_writing:
                kinds[f"writing -k {args.writing_k}"] = ["-k", args.writing_k]
            for kind, extra in kinds.items():
                if kind == "read-only":
                    orthanc.purge()
                    extra = [*extra, f"--dicomweb-studies={held(orthanc, args)}"]
                done: dict[int, list[tuple[float, dict[str, str], int]]] = {
                    n: [] for n in args.concurrency
                }
                for _ in range(args.runs):
                    for n in args.concurrency:
                        done[n].append(one_run(url, [*extra, f"--dicomweb-concurrency={n}"]))
                first = done[args.concurrency[0]][0][1]
                for n, runs in done.items():
                    walls = [wall for wall, _, _ in runs]
                    same = all(verdicts == first for _, verdicts, _ in runs)
                    print(
                        f"{kind}, +{args.latency:g} ms, concurrency {n}: median "
                        f"{statistics.median(walls):6.2f} s (min {min(walls):.2f}, max "
                        f"{max(walls):.2f}); {len(first)} checks, requests {runs[0][2] or '-'}; "
                        f"verdicts {'the same' if same else 'DIFFER'}"
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
