"""What the server is, as the reports name it: the name given, else what it says of itself; and
a warning when the profile describes other versions than the server's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..preflight import Probe
from ..profiles import Profile
from ..settings import Settings


@dataclass(frozen=True)
class Identity:
    """What the server is, as the reports name it, and where that name comes from."""

    name: str | None  # None: no one named it, and it says nothing of itself
    source: str  # "given", "api" (Orthanc's /system), "header" (its Server header) or ""
    header: str  # its Server header, "" when it sends none

    def line(self) -> str:
        """The terminal's ``server:`` line (without the label)."""
        said = f"Server header: {self.header}" if self.header else "no Server header"
        if self.name is None:
            return f"not named (pass --dicomweb-server-name); {said}"
        if self.source == "header":
            return f"{self.name} (its Server header)"
        if self.source == "api":
            return f"{self.name} (as its REST API says); {said}"
        return f"{self.name}; {said}"


def identify(settings: Settings, probe: Probe) -> Identity:
    """The name given, else what the server says of itself (its product API, then its Server
    header), else none: never a profile's description, which says what was expected."""
    if settings.server_name:
        return Identity(settings.server_name, "given", probe.server)
    if probe.product:
        return Identity(probe.product, "api", probe.server)
    if probe.server:
        return Identity(probe.server, "header", probe.server)
    return Identity(None, "", "")


# A product and its version, as both names write them: "Orthanc 1.13", "plugin 1.24",
# "BaseHTTP/0.6". "PS3.18" is no version (a letter before it), so the standard profile's
# description names no product.
_PRODUCT_VERSION = re.compile(r"\b([A-Za-z][\w-]*)[ /](\d+(?:\.\d+)+)\b")


def _versions(text: str) -> dict[str, str]:
    return {name.lower(): version for name, version in _PRODUCT_VERSION.findall(text)}


def profile_mismatch(profile: Profile, server: str) -> str | None:
    """One line when the profile gives a product another version than the server's name gives
    it ("Orthanc 1.13 with the DICOMweb plugin 1.24" against Orthanc 1.10.1 with 1.7); None
    when they agree, or name no product in common (a gateway's Server header, the standard
    profile): versions of different things are not compared."""
    described, found = _versions(profile.description), _versions(server)

    def covers(short: str, full: str) -> bool:  # "1.13" covers "1.13.0"
        return full.split(".")[: short.count(".") + 1] == short.split(".")

    common = described.keys() & found.keys()
    if all(covers(described[name], found[name]) for name in common):
        return None
    return (
        f"profile {profile.name} describes {profile.description}, but the server is {server}: "
        "the verdicts the profile expects may not be this server's"
    )
