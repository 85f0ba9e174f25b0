"""Wall time of the whole catalog against a local throwaway Orthanc: serial and with -n 2, 4
and 8 workers, directly and through a proxy that adds latency (a server 50 ms away), with what
each run sends and where its time goes.

For each setting: the median wall time over --runs runs (process start included), then from
the median run: its requests, the studies it stored (and its cleanup removed), MB sent and
received, the time its processes spent in HTTP
exchanges (from sending to the answer's last byte, summed over workers), and the share of the
processes' time not spent in exchanges (our own code, pytest's and the interpreter's). The
settings of one latency are interleaved run by run, so that the machine's noise falls on all.

Usage: .venv/bin/python benchmarks/suite_time.py [--runs 3] [--workers 0 2 4 8]
       [--latency 0 50] [-k EXPRESSION]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from latencyproxy import LatencyProxy

from conformance.local.orthanc import LocalOrthanc

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Run:
    wall: float
    processes: int
    requests: int
    sent: int
    received: int
    in_exchanges: float  # seconds, summed over processes
    studies: int  # stored and removed by the run's cleanup


def one_run(base_url: str, workers: int, select: str | None) -> Run:
    with tempfile.TemporaryDirectory() as folder:
        command = [
            sys.executable, "-m", "pytest", "--pyargs", "conformance.checks", "-q",
            "-p", "no:cacheprovider", "-p", "exchange_timer",
            *(["-n", str(workers)] if workers else []),
            *(["-k", select] if select else []),
            "--dicomweb-profile=orthanc", f"--base-url={base_url}",
        ]  # fmt: skip
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
            "EXCHANGE_TIMER_DIR": folder,
        }
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
        wall = time.perf_counter() - started
        removed = re.search(r"removed (\d+) stud", done.stdout)
        logs = [json.loads(p.read_text()) for p in Path(folder).glob("*.json")]
    exchanges = [e for log in logs for e in log]
    return Run(
        wall,
        max(1, workers),
        len(exchanges),
        sum(e[1] for e in exchanges),
        sum(e[2] for e in exchanges),
        sum(e[3] for e in exchanges),
        int(removed.group(1)) if removed else 0,
    )


def through(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}"))


def report(name: str, runs: list[Run]) -> str:
    median = sorted(runs, key=lambda r: r.wall)[len(runs) // 2]
    # Each worker process runs its share of the checks: the processes' time is the workers'
    # wall time, about the run's (a serial run: one process, the whole run).
    busy = median.wall * median.processes
    own = 1 - median.in_exchanges / busy
    return (
        f"{name:>22}: median {statistics.median(r.wall for r in runs):6.2f} s "
        f"(min {min(r.wall for r in runs):.2f}, max {max(r.wall for r in runs):.2f}); "
        f"{median.requests} requests, {median.studies} studies, {median.sent / 1e6:.1f} MB sent, "
        f"{median.received / 1e6:.1f} MB received; {median.in_exchanges:.1f} s in exchanges, "
        f"{own:.0%} of the processes' time elsewhere"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2, 4, 8])
    parser.add_argument("--latency", type=float, nargs="+", default=[0, 50])
    parser.add_argument("-k", dest="select", help="pytest -k expression (default: everything)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at the start")
    with LocalOrthanc() as orthanc:
        for latency in args.latency:
            runs: dict[int, list[Run]] = {w: [] for w in args.workers}
            with LatencyProxy(urlsplit(orthanc.dicomweb_url).port or 80, latency) as proxy:
                url = through(orthanc.dicomweb_url, proxy.port) if latency else orthanc.dicomweb_url
                for _ in range(args.runs):
                    for workers in args.workers:
                        runs[workers].append(one_run(url, workers, args.select))
            for workers, done in runs.items():
                name = f"{'serial' if not workers else f'-n {workers}'}, +{latency:g} ms"
                print(report(name, done))
            if 0 in runs and 2 in runs:
                serial = statistics.median(r.wall for r in runs[0])
                two = statistics.median(r.wall for r in runs[2])
                print(f"{'':>22}  serial / -n 2 at +{latency:g} ms: {serial / two:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
