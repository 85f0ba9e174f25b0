"""Wall time of the whole catalog against a local throwaway Orthanc: serial and with -n 2, 4
and 8 workers, directly and through a proxy that adds latency (a server 50 ms away), with what
each run sends and where its time goes.

For each setting: the median wall time over --runs runs (process start included), then from
the median run: its requests, the studies it stored (and its cleanup removed), MB sent and
received, the CPU its processes used (median over the runs), the time its processes spent
waiting on at least one HTTP exchange (from sending to
the answer's last byte; summed over workers), and the share of the processes' time not spent
so (our own code, pytest's and the interpreter's), and
the chains of answers waited for in sequence: a chain is the most exchanges of which none
overlaps another in time, so a check whose chain is C waits at least C times the latency however
fast the server is. The run's critical path is the longest chain of one process (controller or
worker) over the whole run: its wall time is at least that times the latency; the checks with the
longest chains follow (--chains N of them). The settings of one latency are interleaved run by
run, so that the machine's noise falls on all.

Usage: .venv/bin/python benchmarks/suite_time.py [--runs 3] [--workers 0 2 4 8]
       [--latency 0 50] [-k EXPRESSION] [--chains 5]
       [--compare DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
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
    in_exchanges: float  # seconds waiting on at least one exchange, summed over processes
    cpu: float  # seconds of CPU the run's processes used (user and system)
    studies: int  # stored and removed by the run's cleanup
    critical: int  # the longest chain of one process over the run
    chains: dict[str, tuple[int, int]]  # check -> (requests, chain)


Interval = tuple[float, float]


def chain(intervals: list[Interval]) -> int:
    """The most intervals of which none overlaps another (earliest end first is optimal)."""
    count, end = 0, float("-inf")
    for start, stop in sorted(intervals, key=lambda i: i[1]):
        if start >= end:
            count, end = count + 1, stop
    return count


def union(intervals: list[Interval]) -> float:
    """The time covered by at least one interval."""
    covered, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            covered += stop - max(start, end)
            end = stop
    return covered


def one_run(base_url: str, workers: int, select: str | None, code: str | None = None) -> Run:
    """One run of the catalog; ``code``: a checkout whose package runs instead of this one's."""
    with tempfile.TemporaryDirectory() as folder:
        command = [
            sys.executable, "-m", "pytest", "conformance/checks", "-q",
            "-p", "no:cacheprovider", "-p", "exchange_timer",
            *(["-n", str(workers)] if workers else []),
            *(["-k", select] if select else []),
            "--dicomweb-profile=orthanc", f"--base-url={base_url}",
        ]  # fmt: skip
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(
                [str(HERE), *([code] if code else []), os.environ.get("PYTHONPATH", "")]
            ),
            "EXCHANGE_TIMER_DIR": folder,
        }
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        # From the checkout's own folder, as a user runs the checks: python -m puts the working
        # directory first on the path. (By its Python name from there, pytest would also load
        # tests/conftest.py, the project's own tests', into every process: it loads the
        # conftest.py of the test* folders of a folder it is given none of.)
        where = code or str(HERE.parent)
        done = subprocess.run(
            command, capture_output=True, text=True, env=env, cwd=where, check=False
        )
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)  # pytest and its workers
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        removed = re.search(r"removed (\d+) stud", done.stdout)
        logs = [json.loads(p.read_text()) for p in Path(folder).glob("*.json")]
    exchanges = [e for log in logs for e in log]
    by_check: dict[str, list[Interval]] = {}
    for e in exchanges:
        by_check.setdefault(e[5] or "(outside any check)", []).append((e[4], e[4] + e[3]))
    return Run(
        wall,
        max(1, workers),
        len(exchanges),
        sum(e[1] for e in exchanges),
        sum(e[2] for e in exchanges),
        sum(union([(e[4], e[4] + e[3]) for e in log]) for log in logs),
        cpu,
        int(removed.group(1)) if removed else 0,
        max((chain([(e[4], e[4] + e[3]) for e in log]) for log in logs), default=0),
        {check: (len(spans), chain(spans)) for check, spans in by_check.items()},
    )


def through(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}"))


def report(name: str, runs: list[Run], chains: int) -> str:
    median = sorted(runs, key=lambda r: r.wall)[len(runs) // 2]
    # Each worker process runs its share of the checks: the processes' time is the workers'
    # wall time, about the run's (a serial run: one process, the whole run).
    busy = median.wall * median.processes
    own = 1 - median.in_exchanges / busy
    return (
        f"{name:>22}: median {statistics.median(r.wall for r in runs):6.2f} s "
        f"(min {min(r.wall for r in runs):.2f}, max {max(r.wall for r in runs):.2f}); "
        f"{median.requests} requests, {median.studies} studies, {median.sent / 1e6:.1f} MB sent, "
        f"{median.received / 1e6:.1f} MB received; {statistics.median(r.cpu for r in runs):.1f} s "
        f"of CPU (median); {median.in_exchanges:.1f} s in exchanges, "
        f"{own:.0%} of the processes' time elsewhere; critical path {median.critical} "
        f"answers (sum of the checks' chains {sum(c for _, c in median.chains.values())})"
    ) + "".join(
        f"\n{'':>24}chain {c:4} of {n:4} requests: {check}"
        for check, (n, c) in sorted(median.chains.items(), key=lambda i: -i[1][1])[:chains]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2, 4, 8])
    parser.add_argument("--latency", type=float, nargs="+", default=[0, 50])
    parser.add_argument("-k", dest="select", help="pytest -k expression (default: everything)")
    parser.add_argument("--chains", type=int, default=5, help="checks with the longest chains")
    parser.add_argument("--compare", metavar="DIR", help="another checkout, run interleaved")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f} at the start")
    with LocalOrthanc() as orthanc:
        for latency in args.latency:
            codes = [None, args.compare] if args.compare else [None]
            runs: dict[tuple[str | None, int], list[Run]] = {
                (c, w): [] for c in codes for w in args.workers
            }
            with LatencyProxy(urlsplit(orthanc.dicomweb_url).port or 80, latency) as proxy:
                url = through(orthanc.dicomweb_url, proxy.port) if latency else orthanc.dicomweb_url
                for _ in range(args.runs):
                    for code, workers in runs:
                        runs[code, workers].append(one_run(url, workers, args.select, code))
            for (code, workers), done in runs.items():
                name = f"{'serial' if not workers else f'-n {workers}'}, +{latency:g} ms"
                print(report(name + (f" ({code})" if code else ""), done, args.chains))
            for code in codes:
                if (code, 0) in runs and (code, 2) in runs:
                    serial = statistics.median(r.wall for r in runs[code, 0])
                    two = statistics.median(r.wall for r in runs[code, 2])
                    ratio = f"serial / -n 2 at +{latency:g} ms: {serial / two:.2f}"
                    print(f"{'':>22}  {code or 'this tree'}: {ratio}")
            for workers in args.workers if args.compare else []:
                this = statistics.median(r.wall for r in runs[None, workers])
                other = statistics.median(r.wall for r in runs[args.compare, workers])
                print(
                    f"{'':>22}  this tree / {args.compare}, {workers or 'serial'} workers, "
                    f"+{latency:g} ms: {this / other:.2f}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
