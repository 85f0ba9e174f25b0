"""What shows each check can fail, and can pass: one registry of every fault we inject and every
repair, each naming its checks.

A fault breaks one rule the way a real server did (in our proxy over Orthanc, in the Azure
stand-in, in a gateway in front of a server with auth, or as a profile promising a capability
the server lacks); it names the checks that must fail under it. A repair mends one rule that
every real server breaks; it names the checks that must pass through it. Each entry also names
the test module that asserts it. ``faultmatrix.py`` and ``test_fault_coverage.py`` read this
registry, never test modules.

Check names are validated when registered: a name that is no check of the suite's modules stops
the import, and ``test_registry.py`` holds every name against the collected checks, parameters
included, so a renamed check cannot leave a proof that silently proves nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from conformance.expectations import CHECK_NAME, key_problem, moved

Kind = Literal["fault", "repair"]
PROXY = "proxy over Orthanc"
STANDIN = "Azure stand-in over Orthanc"
AUTH_GATEWAY = "proxy over Orthanc / tiny-pacs with auth"
PROMISE = "a profile promising it, over Orthanc"
# A rule Orthanc does not implement at all (so no fault over it could break it), broken in the
# repair that implements it: the repair, not Orthanc, is then the server without the fault.
OVER_A_REPAIR = "proxy over Orthanc, in the mechanism of a repair"


@dataclass(frozen=True)
class Proof:
    name: str
    kind: Kind
    where: str  # what injects it
    checks: frozenset[str]  # that fail under a fault, or pass through a repair
    test: str  # the test module that asserts it
    # For a repair: the reading of its rule each of these checks must then record (where the
    # standard allows several, passing is INFO naming the reading the answer fits).
    readings: tuple[tuple[str, str], ...] = ()


PROOFS: dict[str, Proof] = {}


def check_problem(name: str) -> str | None:
    if not CHECK_NAME.match(name):
        return f"{name!r} is not a check name (test_x.py::test_y[param])"
    return key_problem(name)


def register(
    name: str,
    checks: Iterable[str],
    *,
    test: str,
    where: str = PROXY,
    kind: Kind = "fault",
    readings: Mapping[str, str] | None = None,
) -> Proof:
    """Record a fault or a repair and its checks; a name that is no check stops the import.
    ``readings``: check -> the reading it must record (a repair's checks only)."""
    if name in PROOFS:
        raise ValueError(f"{name} is registered twice")
    # A check is named by its transaction's module (test_qido.py::…) wherever its topic module
    # (test_qido_paging.py) now holds it, as an expectations file may: one rule for both.
    readings = {moved(check): reading for check, reading in (readings or {}).items()}
    named = frozenset(moved(check) for check in checks) | frozenset(readings)
    problems = [p for check in sorted(named) if (p := check_problem(check))]
    if problems:
        raise ValueError(f"{name}: {'; '.join(problems)}")
    chosen = tuple(sorted(readings.items()))
    PROOFS[name] = proof = Proof(name, kind, where, named, test, chosen)
    return proof


def faults(test: str | None = None) -> dict[str, Proof]:
    """The faults (of one test module, if given) that name at least one check."""
    return {
        n: p
        for n, p in PROOFS.items()
        if p.kind == "fault" and p.checks and (test is None or p.test == test)
    }


def repairs() -> dict[str, Proof]:
    return {n: p for n, p in PROOFS.items() if p.kind == "repair"}


def caught_by_faults() -> set[str]:
    return set().union(*(p.checks for p in faults().values()))


def repaired() -> set[str]:
    """The checks a repair makes pass outright (not those it proves a reading of)."""
    return set().union(*(p.checks - dict(p.readings).keys() for p in repairs().values()))


def repaired_readings() -> set[tuple[str, str]]:
    """(check, reading) for every reading a repair is proven to make a check record."""
    return {pair for p in repairs().values() for pair in p.readings}


def load() -> dict[str, Proof]:
    """Every proof: importing the modules that define faults and repairs registers them."""
    import faults as _faults  # noqa: F401
    import repairs as _repairs  # noqa: F401

    return PROOFS
