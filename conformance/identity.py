"""What the server is, as the reports name it: the name given, else what it says of itself; and
a warning when the profile describes other versions than the server's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .preflight import Probe
from .profiles import Profile
from .settings import Settings


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


_VERSION = re.compile(r"\d+(?:\.\d+)+")


def profile_mismatch(profile: Profile, server: str) -> str | None:
    """One line when the profile describes other versions than the server's ("Orthanc 1.13 with
    the DICOMweb plugin 1.24" against Orthanc 1.10.1 with 1.7); None when they agree, or when
    either names no version."""
    described, found = _VERSION.findall(profile.description), _VERSION.findall(server)
    if not described or not found:
        return None

    def covers(short: str, full: str) -> bool:  # "1.13" covers "1.13.0"
        return full.split(".")[: short.count(".") + 1] == short.split(".")

    if all(any(covers(d, f) for f in found) for d in described):
        return None
    return (
        f"profile {profile.name} describes {profile.description}, but the server is {server}: "
        "the verdicts the profile expects may not be this server's"
    )
