"""The examples people copy are files our tests load: every TOML block of the README is one of
``docs/examples/`` (or, for the catalog's format, an entry of the catalog), and each file, as
well as the examples in the modules' docstrings, loads with the loader it is written for."""

from __future__ import annotations

import re
import textwrap
import tomllib
from pathlib import Path

import pytest
from paths import REPO

from conformance import catalog, expectations, profiles
from conformance.settings import resolve

EXAMPLES = REPO / "docs" / "examples"
README = (REPO / "README.md").read_text(encoding="utf-8")
TOML_BLOCKS = re.findall(r"```toml\n(.*?)```", README, flags=re.DOTALL)


def test_every_toml_block_of_the_readme_is_an_example_file_or_a_catalog_entry() -> None:
    files = {p.read_text(encoding="utf-8"): p.name for p in EXAMPLES.glob("*.toml")}
    assert len(TOML_BLOCKS) >= 4
    for block in TOML_BLOCKS:
        if block.startswith("[[requirement]]"):
            (entry,) = tomllib.loads(block)["requirement"]
            actual = catalog.default()[entry["id"]]
            for key, value in entry.items():
                if key == "text":
                    assert actual.text.startswith(value.removesuffix("…").rstrip()), key
                elif key == "readings":
                    assert [g["id"] for g in value] == [g.id for g in actual.readings]
                    for shown, reading in zip(value, actual.readings, strict=True):
                        assert reading.source.startswith(shown["source"].removesuffix("…").rstrip())
                elif key != "part":
                    assert getattr(actual, key) == value, key
        else:
            assert block in files, f"a README example that is no file of docs/examples:\n{block}"
    assert set(files.values()) <= {"profile.toml", "expectations.toml", "config.toml"}


def test_the_example_profile_loads_and_its_departure_names_a_requirement() -> None:
    profile = profiles.load(str(EXAMPLES / "profile.toml"))
    assert profile.name == "my-archive"
    assert set(profile.expectations.entries) == {"QIDO-MATCH-WILDCARD-ANY"}
    assert profile.declared("delete") is not None


def test_the_example_expectations_load() -> None:
    loaded = expectations.load(EXAMPLES / "expectations.toml")
    assert len(loaded) == 2


def test_the_example_config_resolves() -> None:
    settings = resolve(
        "https://host/dicom-web",
        {"config": str(EXAMPLES / "config.toml")},
        env={"DICOMWEB_PASSWORD": "from-the-environment"},
    )
    assert (settings.auth, settings.username, settings.timeout) == ("basic", "alice", 30.0)
    assert settings.disable == ("changefeed", "delete")


def literal_block(doc: str) -> str:
    """The reStructuredText literal block after the first ``::``: its indented lines."""
    lines = doc.split("::\n", 1)[1].splitlines()
    block = []
    for line in lines[1:]:
        if line and not line.startswith(" "):
            break
        block.append(line)
    return textwrap.dedent("\n".join(block))


@pytest.mark.parametrize("module", [profiles, expectations], ids=lambda m: m.__name__)
def test_the_toml_in_a_modules_docstring_loads(module: object, tmp_path: Path) -> None:
    block = literal_block(str(module.__doc__))
    path = tmp_path / "example.toml"
    path.write_text(block, encoding="utf-8")
    if module is profiles:
        assert profiles.load(str(path)).expectations
    else:
        assert expectations.load(path)


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("QIDO-MATCH-WILDCARD", "is not a requirement of the catalog"),
        ("test_wado.py::test_that_does_not_exist", "test_wado.py has no check"),
        ("wado: retrieve", "neither a requirement ID"),
    ],
)
def test_an_expectation_that_can_name_nothing_is_refused_at_load(
    key: str, problem: str, tmp_path: Path
) -> None:
    path = tmp_path / "expect.toml"
    path.write_text(f'[expect]\n"{key}" = "FAIL"\n', encoding="utf-8")
    with pytest.raises(expectations.ExpectationsError, match=problem):
        expectations.load(path)
    profile = tmp_path / "profile.toml"
    profile.write_text(f'name = "p"\n[expect]\n"{key}" = "FAIL"\n', encoding="utf-8")
    with pytest.raises(profiles.ProfileError, match=problem):
        profiles.load(str(profile))
