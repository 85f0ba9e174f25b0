"""The read budget: how much a run may read of a server, in requests and in bytes of answers.

A read-only run is for an archive the suite did not fill, often a production one: a study there
can hold gigabytes, and a run must never read more than its operator allowed. Each process of a
run counts what it sends and what it reads against its share of the budget (under pytest-xdist
the budget is split evenly between the controller and the workers, so the run as a whole stays
within it). Past it, no request is sent and no answer read further: the check in hand, and every
later one that asks, is not judged (``BudgetSpent``, verdict DISABLED), and the summary says so.

A writing run reads what it stored: it has no budget unless one is given.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import BudgetSpent

if TYPE_CHECKING:
    import requests

UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
SPEC = re.compile(r"\s*(\d+)\s*,\s*(\d+(?:\.\d+)?)\s*([KMGT]?B)?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Budget:
    """At most ``requests`` requests and ``bytes`` bytes of answers."""

    requests: int
    bytes: int

    def share(self, processes: int) -> Budget:
        """One process's share when ``processes`` read at once."""
        n = max(processes, 1)
        return Budget(max(self.requests // n, 1), max(self.bytes // n, 1))

    def described(self) -> str:
        return f"{self.requests:,} requests and {size(self.bytes)}"


# A read-only run of the whole catalog on a sampled study (3 series of 3 instances, bulk data
# of one instance at a time) reads a few hundred requests and a few MB (docs/read-only.md): the
# default leaves room for ten times that, and for a few whole instances of a large modality, and
# stops a run that would walk a production archive well before it does harm.
DEFAULT_READ_ONLY = Budget(requests=5_000, bytes=500 * 10**6)


def parse(value: str) -> Budget | None:
    """``--dicomweb-read-budget``: "REQUESTS,SIZE" (e.g. 2000,250MB) or "none"."""
    if value.strip().lower() == "none":
        return None
    match = SPEC.fullmatch(value)
    if match is None:
        raise ValueError("REQUESTS,SIZE such as 2000,250MB (units B, KB, MB, GB), or none")
    requests_, amount, unit = match.groups()
    budget = Budget(int(requests_), int(float(amount) * UNITS[(unit or "").upper()]))
    if budget.requests < 1 or budget.bytes < 1:
        raise ValueError("REQUESTS,SIZE of at least 1 request and 1 byte, or none")
    return budget


def size(n: int) -> str:
    """Bytes for people: 512 B, 3.1 MB."""
    for unit, factor in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n} B"


class Meter:
    """What one process has read: every request sent and every byte of answer read, held to its
    share of a budget (None: counted, never refused); safe to count into from several threads."""

    def __init__(self, budget: Budget | None = None, what: str = "") -> None:
        self.budget = budget
        self.what = what  # how the budget was given, for messages: "--dicomweb-read-budget"
        self.requests = 0
        self.bytes = 0
        # Client.each's threads count at once: each count under the lock, so the totals stay
        # exact (a read-modify-write of an attribute is not atomic between threads).
        self._lock = threading.Lock()

    def _spent(self, what: str) -> BudgetSpent:
        assert self.budget is not None
        return BudgetSpent(
            f"the read budget is spent ({what}; this process's share of {self.what}: "
            f"{self.budget.described()})"
        )

    def ask(self, method: str, url: str) -> None:
        """Count a request about to be sent; raise BudgetSpent instead if none is left."""
        with self._lock:
            if self.budget is not None and self.requests >= self.budget.requests:
                raise self._spent(f"{method} {url} was not sent")
            self.requests += 1

    def watch(self, response: requests.Response) -> None:
        """Count the bytes of ``response``'s body as it is read; stop reading past the budget."""
        raw = response.raw
        stream = raw.stream
        meter = self

        def counted(*args: Any, **kwargs: Any) -> Iterator[bytes]:
            for chunk in stream(*args, **kwargs):
                with meter._lock:
                    meter.bytes += len(chunk)
                    read = meter.bytes
                if meter.budget is not None and read > meter.budget.bytes:
                    request = response.request
                    raise meter._spent(
                        f"the answer to {request.method} {request.url} was not read past "
                        f"{size(read)}"
                    )
                yield chunk

        raw.stream = counted  # type: ignore[method-assign]
