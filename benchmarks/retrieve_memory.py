"""Peak memory of retrieving and verifying a big study: a generated study of --instances
images of --mb MB each (1.1 GB by default) stored into a local throwaway Orthanc, then
retrieved whole (GET /studies/{uid}, multipart) and compared instance by instance with what was
stored, in a fresh process each way:

- streamed: expect.same_instances(expect.retrieved(...)), what the checks use;
- listed: expect.same_instances(list(expect.retrieved(...))), every part held at once.

What was stored is made again from its seed when the comparison asks for it, so the figure is
the retrieve's own. Prints each way's peak resident memory (ru_maxrss) and time.

Usage: .venv/bin/python benchmarks/retrieve_memory.py [--instances 110] [--mb 10]
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping

from conformance import expect, synthetic
from conformance.client import Client
from conformance.dicomweb import stow
from conformance.local.orthanc import LocalOrthanc
from conformance.samples import Instance

STUDY = "2.25.4242424242"
SIDE = 1024  # 8-bit grayscale rows and columns per MB of pixels


def instance(number: int, megabytes: int) -> Instance:
    """Instance ``number`` of the study: megabytes of pixels made from the number as seed."""
    rows = SIDE * megabytes
    pixels = random.Random(number).randbytes(rows * SIDE)
    image = [(0x00280010, "US", rows), (0x00280011, "US", SIDE), (0x7FE00010, "OB", pixels)]
    return synthetic.generated_instance("DWC-bench", STUDY, f"{STUDY}.1.{number}", None, image)


class Stored(Mapping[str, Instance]):
    """The study's instances by SOP Instance UID, each made again when asked for."""

    def __init__(self, count: int, megabytes: int) -> None:
        self.count, self.megabytes = count, megabytes

    def __getitem__(self, uid: str) -> Instance:
        number = int(uid.rsplit(".", 1)[1])
        if uid != f"{STUDY}.1.{number}" or not 1 <= number <= self.count:
            raise KeyError(uid)
        return instance(number, self.megabytes)

    def __iter__(self) -> Iterator[str]:
        return (f"{STUDY}.1.{n}" for n in range(1, self.count + 1))

    def __len__(self) -> int:
        return self.count


def verify(base_url: str, count: int, megabytes: int, way: str) -> None:
    """In this process: retrieve the study and compare; print peak memory and time."""
    client = Client(base_url)
    started = time.perf_counter()
    parts = expect.retrieved(client, f"studies/{STUDY}")
    got = parts if way == "streamed" else list(parts)
    expect.same_instances(got, Stored(count, megabytes))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{way:>8}: {count} instances verified in {seconds:.1f} s, peak {peak:.0f} MB resident")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=110)
    parser.add_argument("--mb", type=int, default=10)
    parser.add_argument("--verify", help=argparse.SUPPRESS)  # base URL, in the child process
    parser.add_argument("--way", default="streamed", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.verify:
        verify(args.verify, args.instances, args.mb, args.way)
        return 0
    with LocalOrthanc() as orthanc:
        client = Client(orthanc.dicomweb_url)
        started = time.perf_counter()
        for number in range(1, args.instances + 1):
            response = stow(client, [instance(number, args.mb)], STUDY)
            if response.status_code != 200:
                raise SystemExit(f"storing instance {number} answered {response.status_code}")
        total = args.instances * args.mb * 1.048576
        print(f"stored {args.instances} instances, {total:.0f} MB of pixels, in "
              f"{time.perf_counter() - started:.0f} s")  # fmt: skip
        for way in ("streamed", "listed"):
            subprocess.run(
                [sys.executable, __file__, "--verify", orthanc.dicomweb_url,
                 "--instances", str(args.instances), "--mb", str(args.mb), "--way", way],
                check=False,
            )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
