"""Wall time of the suite against a local throwaway Orthanc, serial and with -n 2.

Prints medians over several runs (these machines are noisy) and the parallel ratio measured in
the same session. Usage: .venv/bin/python benchmarks/suite_time.py [--runs N] [-k EXPRESSION]
(default: the whole catalog; ``-k walkthrough`` times the article's walkthrough alone).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from conformance.orthanc import LocalOrthanc


def one_run(base_url: str, extra: list[str], select: str | None) -> float:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--pyargs",
        "conformance.checks",
        "-q",
        "-p",
        "no:cacheprovider",
        *(["-k", select] if select else []),
        "--dicomweb-profile=orthanc",
        f"--base-url={base_url}",
        *extra,
    ]
    started = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("-k", dest="select", help="pytest -k expression (default: everything)")
    args = parser.parse_args()
    label = args.select or "whole catalog"
    with LocalOrthanc() as orthanc:
        results = {}
        for name, extra in (("serial", []), ("-n 2", ["-n", "2"])):
            times = [one_run(orthanc.dicomweb_url, extra, args.select) for _ in range(args.runs)]
            results[name] = statistics.median(times)
            print(
                f"{label} {name:>6}: median {results[name]:.2f} s over {args.runs} runs "
                f"(min {min(times):.2f}, max {max(times):.2f}), process start included"
            )
    print(f"parallel ratio serial / -n 2: {results['serial'] / results['-n 2']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
