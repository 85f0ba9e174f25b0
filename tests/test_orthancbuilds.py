"""Fetching a newer Orthanc is all or nothing, and says what to do when it cannot be done.

apt-get runs for real, against a small Debian repository of ours served on loopback (our tests
have no other network): a repository whose pinned version has moved on, one that refuses
connections, one that cuts a package off half-way, and one whose package unpacks but does not
run. In every case nothing is left where a launcher would find it. (Fetching the real builds is
scripts/bootstrap's job, on every CI run.)
"""

from __future__ import annotations

import email.utils
import hashlib
import http.server
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from paths import newer_orthanc_root

from conformance.local import orthancbuilds
from conformance.local.orthancbuilds import Build, BuildError, Unavailable

SUITE = "fakesuite"
PINNED = Build("9.9", SUITE, "9.9.0-1", "9.9-1", "usr/lib/orthanc/libOrthancDicomWeb.so.9")


def build_deb(folder: Path, package: str, version: str, files: dict[str, bytes]) -> Path:
    tree = folder / f"{package}-tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        f"Package: {package}\nVersion: {version}\nArchitecture: amd64\n"
        f"Maintainer: Tests <tests@example.org>\nDescription: a stand-in for {package}\n"
    )
    for name, data in files.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(data)
    deb = folder / "pool" / f"{package}_{version}_amd64.deb"
    deb.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-Zgzip", "--build", str(tree), str(deb)], check=True,
                   capture_output=True)  # fmt: skip
    return deb


def publish(folder: Path, debs: list[tuple[str, str, Path]]) -> None:
    """A Packages index and an (unsigned) Release file for ``debs`` in suite SUITE."""
    entries = []
    for package, version, deb in debs:
        data = deb.read_bytes()
        entries.append(
            f"Package: {package}\nVersion: {version}\nArchitecture: amd64\n"
            f"Maintainer: Tests <tests@example.org>\nFilename: pool/{deb.name}\n"
            f"Size: {len(data)}\nSHA256: {hashlib.sha256(data).hexdigest()}\n"
            f"Description: a stand-in for {package}\n"
        )
    index = folder / f"dists/{SUITE}/main/binary-amd64/Packages"
    index.parent.mkdir(parents=True, exist_ok=True)
    index.write_text("\n".join(entries))
    listing = index.read_bytes()
    (folder / f"dists/{SUITE}/Release").write_text(
        f"Suite: {SUITE}\nCodename: {SUITE}\nArchitectures: amd64\nComponents: main\n"
        f"Date: {email.utils.formatdate(usegmt=True)}\nSHA256:\n"
        f" {hashlib.sha256(listing).hexdigest()} {len(listing)} main/binary-amd64/Packages\n"
    )


class Mirror:
    """A folder served over HTTP on loopback; ``cut`` sends only half of each .deb."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.cut = False
        mirror = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: object, **kwargs: object) -> None:
                super().__init__(*args, directory=str(folder), **kwargs)  # type: ignore[arg-type]

            def do_GET(self) -> None:
                if mirror.cut and self.path.endswith(".deb"):
                    data = (folder / self.path.lstrip("/")).read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.close_connection = True
                    return
                super().do_GET()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def sources(self) -> str:
        return f"deb [trusted=yes] http://127.0.0.1:{self.server.server_port}/ {SUITE} main"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve(tmp_path: Path, orthanc: str, dicomweb: str) -> Iterator[Mirror]:
    folder = tmp_path / "mirror"
    files = {"usr/sbin/Orthanc": b"#!/bin/sh\necho not really Orthanc\n"}
    plugin = {PINNED.plugin: b"not really a plugin"}
    publish(
        folder,
        [
            ("orthanc", orthanc, build_deb(folder, "orthanc", orthanc, files)),
            ("orthanc-dicomweb", dicomweb, build_deb(folder, "orthanc-dicomweb", dicomweb, plugin)),
        ],
    )
    mirror = Mirror(folder)
    yield mirror
    mirror.close()


@pytest.fixture
def moved_on(tmp_path: Path) -> Iterator[Mirror]:
    """The suite now serves newer versions than the pinned ones."""
    yield from serve(tmp_path, "9.9.1-1", "9.10-1")


@pytest.fixture
def pinned(tmp_path: Path) -> Iterator[Mirror]:
    """The suite serves the pinned versions (whose Orthanc does not really run)."""
    yield from serve(tmp_path, PINNED.orthanc, PINNED.dicomweb)


def left_in(cache: Path) -> list[str]:
    """What a failed fetch left in the cache, but its note."""
    return sorted(p.name for p in cache.iterdir() if not p.name.endswith(".unavailable"))


def test_a_pinned_version_no_longer_served_says_what_is_and_how_to_rebaseline(
    moved_on: Mirror, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(Unavailable) as raised:
        orthancbuilds.fetch(PINNED, cache, moved_on.sources, say=lambda _: None)

    said = str(raised.value)
    assert "now serves orthanc 9.9.1-1, orthanc-dicomweb 9.10-1" in said
    assert "pinned to orthanc 9.9.0-1, orthanc-dicomweb 9.9-1" in said
    assert "scripts/record-expectations" in said
    assert orthancbuilds.note_of(PINNED, cache).read_text().strip() in said
    assert left_in(cache) == []


def test_a_mirror_that_refuses_leaves_nothing_and_says_which_step(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    refused = f"deb [trusted=yes] http://127.0.0.1:9/ {SUITE} main"
    with pytest.raises(BuildError, match=r"apt-get update failed") as raised:
        orthancbuilds.fetch(PINNED, cache, refused, say=lambda _: None)

    assert "Nothing was installed for Orthanc 9.9" in str(raised.value)
    assert not isinstance(raised.value, Unavailable)
    assert left_in(cache) == []


def test_a_download_cut_off_half_way_installs_nothing(pinned: Mirror, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    pinned.cut = True
    with pytest.raises(BuildError, match=r"apt-get download failed"):
        orthancbuilds.fetch(PINNED, cache, pinned.sources, say=lambda _: None)

    assert left_in(cache) == []


def test_packages_whose_orthanc_does_not_run_are_not_installed(
    pinned: Mirror, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(BuildError, match=r"the unpacked Orthanc does not run"):
        orthancbuilds.fetch(PINNED, cache, pinned.sources, say=lambda _: None)

    assert left_in(cache) == []
    assert orthancbuilds.problem(orthancbuilds.root_of(PINNED, cache)) is not None


def test_a_damaged_build_is_fetched_again_not_reused(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    root = orthancbuilds.root_of(PINNED, cache)
    root.mkdir(parents=True)
    (root / "half-unpacked").write_text("")
    said: list[str] = []
    refused = f"deb [trusted=yes] http://127.0.0.1:9/ {SUITE} main"

    with pytest.raises(BuildError):
        orthancbuilds.fetch(PINNED, cache, refused, say=said.append)

    assert said == [f"orthancbuilds: removing {root} is incomplete (no readable .manifest.json: "
                    "not a finished fetch)"]  # fmt: skip
    assert not root.exists()


def test_the_machine_mirror_comes_from_its_apt_sources() -> None:
    mirror = orthancbuilds.machine_mirror()
    assert mirror.startswith(("http://", "https://")), mirror
    assert "security" not in mirror


def test_our_tests_of_a_version_no_longer_served_skip_saying_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not green, not red: a loud skip (and a WARNING line at the end of the run, conftest)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("CI", "true")  # even on CI, where a version merely missing fails
    build = orthancbuilds.BUILDS["1.13"]
    note = orthancbuilds.note_of(build)
    note.parent.mkdir(parents=True)
    note.write_text("Orthanc 1.13 is pinned to …, but Debian forky now serves …\n")

    with pytest.raises(pytest.skip.Exception, match=r"ORTHANC 1.13 UNAVAILABLE: .* now serves"):
        newer_orthanc_root("1.13")
    note.unlink()
    with pytest.raises(pytest.fail.Exception, match=r"not ready .* run scripts/bootstrap"):
        newer_orthanc_root("1.13")
