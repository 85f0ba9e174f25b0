"""What the installed plugin costs a pytest run that is not ours: a one-test project, run with
the plugin and with it blocked (``-p no:conformance.plugin``), medians of several runs each,
interleaved so that the machine's noise falls on both alike.

Usage: .venv/bin/python benchmarks/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {
    "with the plugin": [],
    "plugin blocked": ["-p", "no:conformance.plugin"],
    "plugin and hypothesis blocked": ["-p", "no:conformance.plugin", "-p", "no:hypothesispytest"],
}


def one_run(project: Path, extra: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra],
        cwd=project,
        capture_output=True,
        check=True,
    )
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        (project / "test_one.py").write_text("def test_one():\n    assert 1 + 1 == 2\n")
        times: dict[str, list[float]] = {name: [] for name in VARIANTS}
        for _ in range(args.runs):
            for name, extra in VARIANTS.items():
                times[name].append(one_run(project, extra))
    medians = {name: statistics.median(values) for name, values in times.items()}
    base = medians["plugin blocked"]
    for name, value in medians.items():
        print(f"{name:32} {value * 1000:6.0f} ms  ({(value - base) * 1000:+.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
