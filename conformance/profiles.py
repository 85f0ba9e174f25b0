"""Server profiles: what a kind of server declares about itself, with the source of each claim.

A profile (``conformance/profiles/NAME.toml``, or a user's own file) declares optional
capabilities present or absent, vendor parameters the checks need (paging limits, API version),
and the vendor's documented departures from the standard as expected verdicts::

    name = "azure-v2"
    description = "Azure Health Data Services DICOM service, API v2"
    extends = "standard"
    vendor = "azure"    # the vendor whose documented extensions bind this server

    [capabilities]
    delete = { supported = true, source = "https://learn.microsoft.com/…" }

    [parameters]
    changefeed-max-limit = 200

    [expect]
    "QIDO-MATCH-WILDCARD-ANY" = { verdict = "FAIL", reason = "exact match only", source = "…" }

Declared beats detected: a capability declared absent is NOT-IMPLEMENTED without asking the
server; one declared present but missing on the server is a FAIL, because the vendor promised it.
Departures never change a verdict, only whether it is expected.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .catalog import CORE_CAPABILITIES, OPTIONAL_CAPABILITIES
from .expectations import Expectations, ExpectationsError, parse_table

PROFILES_DIR = Path(__file__).parent / "profiles"
DEFAULT = "standard"


class ProfileError(ValueError):
    """A profile cannot be found or is inconsistent."""


@dataclass(frozen=True)
class Declared:
    supported: bool
    source: str


@dataclass(frozen=True)
class Profile:
    name: str
    description: str = ""
    vendor: str | None = None  # whose documented extensions (catalog ``vendor``) bind the server
    capabilities: dict[str, Declared] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    expectations: Expectations = field(default_factory=Expectations)

    def declared(self, capability: str) -> Declared | None:
        return self.capabilities.get(capability)

    def parameter(self, name: str, default: Any = None) -> Any:
        return self.parameters.get(name, default)


def shipped() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def _path(name_or_path: str) -> Path:
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix == ".toml" or "/" in name_or_path:
        if not candidate.is_file():
            raise ProfileError(f"profile file not found: {candidate}")
        return candidate
    path = PROFILES_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise ProfileError(
            f"unknown profile {name_or_path!r}: shipped profiles are {', '.join(shipped())}, "
            "or give the path of your own .toml file"
        )
    return path


def load(name_or_path: str = DEFAULT, _seen: tuple[str, ...] = ()) -> Profile:
    """A shipped profile by name, or a profile file by path, with what it extends merged in."""
    path = _path(name_or_path)
    if str(path) in _seen:
        raise ProfileError(f"profile {path.name} extends itself")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"profile {path.name} is not valid TOML: {exc}") from None
    known = {"name", "description", "extends", "vendor", "capabilities", "parameters", "expect"}
    unknown = set(data) - known
    if unknown:
        raise ProfileError(f"profile {path.name}: unknown keys {sorted(unknown)}")
    base = (
        load(data["extends"], (*_seen, str(path))) if data.get("extends") else Profile(name=DEFAULT)
    )
    capabilities = dict(base.capabilities)
    for name, value in data.get("capabilities", {}).items():
        if name in CORE_CAPABILITIES:
            raise ProfileError(
                f"profile {path.name}: {name!r} is a core capability every server must have; "
                "list what the server does differently under [expect]"
            )
        if name not in OPTIONAL_CAPABILITIES:
            raise ProfileError(
                f"profile {path.name}: unknown capability {name!r}; "
                f"known: {', '.join(OPTIONAL_CAPABILITIES)}"
            )
        if not isinstance(value, dict) or not isinstance(value.get("supported"), bool):
            raise ProfileError(
                f"profile {path.name}: capability {name!r} needs supported = true or false"
            )
        if not value.get("source"):
            raise ProfileError(f"profile {path.name}: capability {name!r} needs its source")
        capabilities[name] = Declared(value["supported"], str(value["source"]))
    try:
        departures = parse_table(data.get("expect", {}), f"profile {path.name}")
    except ExpectationsError as exc:
        raise ProfileError(str(exc)) from None
    for key, entry in departures.entries.items():
        if not entry.reason or not entry.source:
            raise ProfileError(f"profile {path.name}: departure {key!r} needs a reason and source")
    return Profile(
        name=str(data.get("name", path.stem)),
        description=str(data.get("description", "")),
        vendor=str(data["vendor"]) if data.get("vendor") else base.vendor,
        capabilities=capabilities,
        parameters={**base.parameters, **data.get("parameters", {})},
        expectations=base.expectations.merged(departures),
    )
