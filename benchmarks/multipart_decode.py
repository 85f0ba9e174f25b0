"""Our multipart decoder on bodies given whole and in 64 KiB chunks: MB/s and the peak of
Python allocations, medians of several runs. requests-toolbelt's MultipartDecoder is timed on
the same bodies when it is installed (pip install requests-toolbelt).

Usage: .venv/bin/python benchmarks/multipart_decode.py [--mb 100] [--runs 5]
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

from conformance.multipart import encode_related, iter_parts

CHUNK = 64 * 1024


def chunks(body: bytes) -> Iterator[bytes]:
    view = memoryview(body)
    for start in range(0, len(body), CHUNK):
        yield bytes(view[start : start + CHUNK])


def median_seconds(work: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def toolbelt() -> Any:
    """requests-toolbelt's MultipartDecoder, when it is installed (it is no dependency of ours)."""
    try:
        return importlib.import_module("requests_toolbelt.multipart.decoder").MultipartDecoder
    except ImportError:
        return None


def measure(parts: int, megabytes: int, runs: int) -> str:
    size = megabytes * 1024 * 1024 // parts
    body, content_type = encode_related([os.urandom(size) for _ in range(parts)])
    mb = len(body) / 1e6
    whole = median_seconds(lambda: list(iter_parts([body], content_type)), runs)
    chunked = median_seconds(lambda: list(iter_parts(chunks(body), content_type)), runs)
    line = (
        f"{parts:3} part(s), {mb:.0f} MB: ours whole {mb / whole:6.0f} MB/s, "
        f"chunked {mb / chunked:6.0f} MB/s"
    )
    decoder = toolbelt()
    if decoder is not None:
        theirs = median_seconds(lambda: decoder(body, content_type).parts, runs)
        line += f"; requests-toolbelt whole {mb / theirs:6.0f} MB/s"
    return line + f"; chunked, one part at a time: peak {peak_mb(body, content_type):.1f} MB"


def peak_mb(body: bytes, content_type: str) -> float:
    """The peak of Python allocations while the chunks are decoded and each part let go (the
    body itself, made before, not counted): a part and a chunk or two, whatever the body."""
    tracemalloc.start()
    for part in iter_parts(chunks(body), content_type):
        del part
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    for parts in (1, 300):
        print(measure(parts, args.mb, args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
