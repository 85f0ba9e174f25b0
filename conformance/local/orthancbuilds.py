"""The Orthanc versions our tests run, and fetching the newer ones from Debian's own packages.

Orthanc 1.10 comes from the machine's Debian release (``apt-get install``). Orthanc 1.12 (Debian
13 "trixie") and 1.13 (Debian testing "forky") need a newer glibc than these machines have, so
they are fetched with their whole library closure, glibc included, through a private apt state
(the system's dpkg database is never touched), unpacked into a folder of the user's cache, and
started through that folder's own dynamic loader (see ``command()``).

Installing is all or nothing: everything happens in a temporary folder beside the target, and
only an unpacked tree whose Orthanc has answered ``--version`` is renamed into place, with a
manifest of every file written last. ``problem()`` holds a folder against its manifest, so a
folder damaged later is found before a server is started from it.

forky is Debian *testing*: its versions move and old ones leave the mirror. When a pinned version
is no longer served, ``fetch`` raises ``Unavailable`` saying what is served now, and leaves a note
that our tests show when they skip that version (see README, "Re-baselining a moved Orthanc").

    python -m conformance.local.orthancbuilds fetch 1.12 1.13     # what scripts/bootstrap runs
    python -m conformance.local.orthancbuilds list
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
MANIFEST = ".manifest.json"
PACKAGES = ("orthanc", "orthanc-dicomweb")
SYSTEM = "system"  # the version installed from the machine's own Debian release
# apt-get and dpkg-deb are quick; a mirror that stops answering must not hang bootstrap.
APT_TIMEOUT = 300.0
EXIT_UNAVAILABLE = 3  # a pinned version the mirror no longer serves: not a broken machine


@dataclass(frozen=True)
class Build:
    """One Orthanc version: where its Debian packages come from, pinned, and what it can do."""

    version: str  # what users type: --orthanc 1.13
    suite: str | None  # the Debian suite to fetch from; None: the machine's own packages
    orthanc: str  # the pinned Debian version of the orthanc package
    dicomweb: str  # ... and of orthanc-dicomweb
    plugin: str  # the DICOMweb plugin, inside the unpacked root (or absolute, for the system's)

    @property
    def folder(self) -> str:
        return f"orthanc-{self.orthanc}_dicomweb-{self.dicomweb}"

    @property
    def listens_on_loopback_only(self) -> bool:
        """Orthanc 1.13 honours ``HttpBindAddresses``; older ones listen on every interface
        and refuse non-local clients (``RemoteAccessAllowed: false``)."""
        return binds_loopback(self.orthanc)

    @property
    def title(self) -> str:
        """E.g. "Orthanc 1.12.7 with the DICOMweb plugin 1.20 (Debian trixie)"."""
        suite = self.suite or "the machine's release"
        orthanc, dicomweb = (v.split("+")[0] for v in (self.orthanc, self.dicomweb))
        return f"Orthanc {orthanc} with the DICOMweb plugin {dicomweb} (Debian {suite})"

    def describe(self) -> str:
        where = "the machine's Debian release" if self.suite is None else f"Debian {self.suite}"
        listening = (
            "listens on 127.0.0.1 only (HttpBindAddresses)"
            if self.listens_on_loopback_only
            else "listens on every interface and refuses non-local clients (no bind option)"
        )
        packages = f"Orthanc {self.orthanc} with orthanc-dicomweb {self.dicomweb}"
        return f"{packages} ({where}); {listening}"


BUILDS: dict[str, Build] = {
    b.version: b
    for b in (
        Build(
            "1.10",
            None,
            "1.10.1+dfsg-2+deb12u1",
            "1.7+dfsg-6+b2",
            "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
        ),
        Build(
            "1.12",
            "trixie",
            "1.12.7+dfsg-4",
            "1.20+dfsg-1",
            "usr/lib/orthanc/libOrthancDicomWeb.so.1.20",
        ),
        Build(
            "1.13",
            "forky",
            "1.13.0+dfsg-1+b1",
            "1.24+dfsg-1+b1",
            "usr/lib/orthanc/libOrthancDicomWeb.so.1.24",
        ),
    )
}
DEFAULT = "1.10"
FETCHED = tuple(v for v, b in BUILDS.items() if b.suite is not None)


class BuildError(RuntimeError):
    """A build that cannot be fetched or used; the message says what to do."""


class Unavailable(BuildError):
    """The mirror no longer serves the pinned version (Debian testing moved on)."""


def version_tuple(debian_version: str) -> tuple[int, ...]:
    """(1, 13, 0) for "1.13.0+dfsg-1+b1"."""
    return tuple(int(n) for n in re.findall(r"\d+", debian_version.split("+")[0].split("-")[0]))


def binds_loopback(orthanc_version: str) -> bool:
    """Whether this Orthanc honours ``HttpBindAddresses`` (new in 1.13)."""
    return version_tuple(orthanc_version) >= (1, 13)


def cache_dir() -> Path:
    """Where fetched builds live: the user's cache, shared by every clone of the project."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "dicomweb-conformance"


def root_of(build: Build, cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / build.folder


def note_of(build: Build, cache: Path | None = None) -> Path:
    """Where ``fetch`` leaves the reason a pinned version could not be fetched."""
    return (cache or cache_dir()) / f"orthanc-{build.version}.unavailable"


# --- using an unpacked build -----------------------------------------------------------------


def problem(root: Path) -> str | None:
    """What is wrong with an unpacked build (None: it is whole, as fetched)."""
    if not root.is_dir():
        return f"{root} does not exist"
    try:
        manifest = json.loads((root / MANIFEST).read_text())
        files: dict[str, int] = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"{root} is incomplete (no readable {MANIFEST}: not a finished fetch)"
    changed = []
    for name, size in files.items():
        try:
            if (root / name).lstat().st_size != size:
                changed.append(name)
        except OSError:
            changed.append(name)
    if changed:
        return f"{root} is damaged: {len(changed)} file(s) missing or changed, e.g. {changed[0]}"
    return None


def manifest_of(root: Path) -> dict[str, str]:
    """What a fetch recorded about its build: suite, orthanc and dicomweb versions, plugin."""
    manifest = json.loads((root / MANIFEST).read_text())
    return {k: v for k, v in manifest.items() if k != "files"}


def command(root: Path, *arguments: str) -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run the unpacked Orthanc in ``root``.

    Through the folder's own loader, so its own glibc and libraries are used, never the
    machine's; DCMDICTPATH points DCMTK at the folder's DICOM dictionary.
    """
    libraries = ":".join(
        str(root / d) for d in ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu", "usr/lib")
    )
    dcmtk = root / "usr/share/dcmtk"
    env = dict(os.environ, DCMDICTPATH=f"{dcmtk / 'dicom.dic'}:{dcmtk / 'private.dic'}")
    loader = root / "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    return [
        str(loader),
        "--library-path",
        libraries,
        str(root / "usr/sbin/Orthanc"),
        *arguments,
    ], env


# --- fetching --------------------------------------------------------------------------------


def machine_mirror() -> str:
    """The Debian mirror the machine's apt is configured with (never written into the project)."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for match in re.finditer(r"^URIs:\s*(\S+)", path.read_text(), re.MULTILINE):
            if "security" not in match.group(1):
                return match.group(1)
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for match in re.finditer(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", legacy.read_text(), re.M):
            if "security" not in match.group(1):
                return match.group(1)
    raise BuildError("no Debian mirror in /etc/apt/sources.list(.d): cannot fetch Orthanc")


def _run(step: str, argv: Sequence[str], timeout: float = APT_TIMEOUT) -> str:
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise BuildError(f"{step}: {argv[0]} is not installed (Debian's apt is needed)") from None
    except subprocess.TimeoutExpired:
        raise BuildError(f"{step}: no result within {timeout:g} s") from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise BuildError(f"{step} failed (exit {done.returncode}): " + " | ".join(lines[-4:]))
    return done.stdout


class PrivateApt:
    """apt-get with its own state, lists, cache and sources in ``folder``: the machine's apt
    configuration and dpkg database are read by nothing and changed by nothing. An empty
    status file makes apt resolve the whole closure, glibc included."""

    def __init__(self, folder: Path, sources: str) -> None:
        for sub in ("state/lists/partial", "cache/archives/partial", "etc/sources.list.d"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        (folder / "state/status").write_text("")
        (folder / "etc/sources.list").write_text(sources + "\n")
        self.archives = folder / "cache/archives"
        self.options = [
            f"-oDir::State={folder / 'state'}",
            f"-oDir::State::status={folder / 'state/status'}",
            f"-oDir::Cache={folder / 'cache'}",
            f"-oDir::Etc::sourcelist={folder / 'etc/sources.list'}",
            f"-oDir::Etc::sourceparts={folder / 'etc/sources.list.d'}",
            "-oAPT::Architecture=amd64",
            "-oDebug::NoLocking=1",
            "-oAPT::Sandbox::User=root",
            "-oAcquire::Retries=2",
        ]

    def update(self) -> None:
        # Without --error-on=any, a source that cannot be fetched is only a warning (exit 0).
        _run("apt-get update", ["apt-get", *self.options, "-qq", "--error-on=any", "update"])

    def candidates(self) -> dict[str, str]:
        """The version of each package the sources serve now ("none" when absent)."""
        text = _run("apt-cache policy", ["apt-cache", *self.options, "policy", *PACKAGES])
        found = dict(re.findall(r"^(\S+):\n\s+Installed: .*\n\s+Candidate: (\S+)", text, re.M))
        return {p: found.get(p, "none") for p in PACKAGES}

    def download(self, pins: dict[str, str]) -> list[Path]:
        wanted = [f"{package}={version}" for package, version in pins.items()]
        _run(
            "apt-get download",
            ["apt-get", *self.options, "-qq", "-y", "install", "--download-only",
             "--no-install-recommends", *wanted],
        )  # fmt: skip
        return sorted(self.archives.glob("*.deb"))


def sources_line(build: Build, mirror: str) -> str:
    return f"deb [signed-by={KEYRING}] {mirror} {build.suite} main"


def fetch(
    build: Build,
    cache: Path | None = None,
    sources: str | None = None,
    say: Callable[[str], None] = print,
) -> Path:
    """Make sure ``build`` is unpacked, whole, in the cache; its root. Idempotent.

    ``sources`` replaces the apt sources line (default: the suite on the machine's mirror).
    Raises Unavailable when the pinned versions are no longer served, BuildError on any other
    failure; either way nothing half-made is left where a launcher would find it.
    """
    if build.suite is None:
        raise BuildError(f"Orthanc {build.version} comes from the machine's Debian packages")
    cache = cache or cache_dir()
    root, note = root_of(build, cache), note_of(build, cache)
    if problem(root) is None:
        note.unlink(missing_ok=True)
        return root
    if root.exists():
        say(f"orthancbuilds: removing {problem(root)}")
        shutil.rmtree(root)
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".partial-{build.version}-", dir=cache))
    try:
        apt = PrivateApt(work / "apt", sources or sources_line(build, machine_mirror()))
        apt.update()
        pins = {"orthanc": build.orthanc, "orthanc-dicomweb": build.dicomweb}
        served = apt.candidates()
        if served != pins:
            message = (
                f"Orthanc {build.version} is pinned to {_versions(pins)}, but Debian "
                f"{build.suite} now serves {_versions(served)}. To re-baseline: set the new "
                f"versions in conformance/local/orthancbuilds.py (BUILDS), run scripts/bootstrap, "
                f"then scripts/record-expectations and review git diff expectations/ (README)."
            )
            note.write_text(message + "\n")
            raise Unavailable(message)
        debs = apt.download(pins)
        unpacked = work / "root"
        for deb in debs:
            _run(f"unpacking {deb.name}", ["dpkg-deb", "-x", str(deb), str(unpacked)])
        _smoke_test(build, unpacked)
        files = {
            str(p.relative_to(unpacked)): p.lstat().st_size
            for p in unpacked.rglob("*")
            if p.is_file() and not p.is_symlink()
        }
        manifest = {
            "suite": build.suite,
            "orthanc": build.orthanc,
            "dicomweb": build.dicomweb,
            "plugin": build.plugin,
            "files": files,
        }
        (unpacked / MANIFEST).write_text(json.dumps(manifest, indent=0))
        os.rename(unpacked, root)  # atomic: a launcher sees no folder or a whole one
    except BuildError as error:
        raise type(error)(f"{error}\nNothing was installed for Orthanc {build.version}.") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    note.unlink(missing_ok=True)
    say(f"orthancbuilds: Orthanc {build.version} ready in {root} ({len(debs)} packages)")
    return root


def _versions(pins: dict[str, str]) -> str:
    return ", ".join(
        f"{package} {version}" if version != "none" else f"no {package}"
        for package, version in pins.items()
    )


def _smoke_test(build: Build, root: Path) -> None:
    """The unpacked Orthanc runs and is the version pinned, before anything may use it."""
    plugin = root / build.plugin
    if not plugin.is_file():
        raise BuildError(f"the unpacked packages have no DICOMweb plugin at {build.plugin}")
    argv, env = command(root, "--version")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BuildError(f"the unpacked Orthanc does not run: {error}") from None
    wanted = build.orthanc.split("+")[0]
    if done.returncode != 0 or wanted not in done.stdout:
        said = (done.stdout + done.stderr).strip().splitlines()[:2]
        raise BuildError(f"the unpacked Orthanc does not answer --version {wanted}: {said}")


# --- command line ----------------------------------------------------------------------------


def state(build: Build) -> str:
    if build.suite is None:
        installed = os.path.isfile(build.plugin)
        return "installed (Debian package)" if installed else "not installed: run scripts/bootstrap"
    root = root_of(build)
    if problem(root) is None:
        return f"ready in {root}"
    note = note_of(build)
    if note.exists():
        return "UNAVAILABLE: " + note.read_text().strip()
    return "not fetched: run scripts/bootstrap"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m conformance.local.orthancbuilds",
        description="Fetch the newer Orthanc versions our tests run (into "
        f"{cache_dir()}), or list every version and its state.",
    )
    commands = parser.add_subparsers(dest="action", required=True)
    fetching = commands.add_parser("fetch", help="fetch and unpack versions (idempotent)")
    fetching.add_argument(
        "versions", nargs="*", metavar="VERSION", help=f"default: all of {', '.join(FETCHED)}"
    )
    commands.add_parser("list", help="each version, pinned, and whether it is ready")
    for action, what in (("ready", "exit 0 when VERSION is ready to run"), ("title", "its name")):
        commands.add_parser(action, help=what).add_argument("version", choices=list(BUILDS))
    args = parser.parse_args(argv)
    if args.action == "list":
        for build in BUILDS.values():
            print(f"{build.version}: {build.describe()}\n      {state(build)}")
        return 0
    if args.action == "ready":
        build = BUILDS[args.version]
        return 0 if build.suite is None or problem(root_of(build)) is None else 1
    if args.action == "title":
        print(BUILDS[args.version].title)
        return 0
    unknown = [v for v in args.versions if v not in FETCHED]
    if unknown:
        parser.error(f"no Orthanc to fetch called {unknown[0]!r}: choose from {', '.join(FETCHED)}")
    status = 0
    for version in args.versions or FETCHED:
        try:
            fetch(BUILDS[version])
        except Unavailable as error:
            print(f"orthancbuilds: WARNING: {error}", file=sys.stderr)
            status = status or EXIT_UNAVAILABLE
        except BuildError as error:
            print(f"orthancbuilds: error: {error}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
