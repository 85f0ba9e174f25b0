"""The catalog and the checks stay in step: every check names known requirements, every
requirement has a check or says why not, IDs are unique, and every shipped profile is sound."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from paths import CHECKS_DIR

from conformance import catalog, profiles
from conformance.judge import check_name

CATALOG = catalog.default()


@pytest.fixture(scope="module")
def checks(pytestconfig: pytest.Config) -> dict[str, list[str]]:
    """Check name -> the requirement IDs it names, for every check the suite collects."""
    found: dict[str, list[str]] = {}

    class Collector:
        def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
            for item in items:
                ids = [i for mark in item.iter_markers("requirement") for i in mark.args]
                found[check_name(item.nodeid)] = ids

    code = pytest.main(
        [str(CHECKS_DIR), "--collect-only", "-q", "-p", "no:cacheprovider", "--base-url=http://x"],
        plugins=[Collector()],
    )
    assert code == pytest.ExitCode.OK
    return found


def test_every_check_names_known_requirements(checks: dict[str, list[str]]) -> None:
    unnamed = [c for c, ids in checks.items() if not ids]
    unknown = {c: [i for i in ids if i not in CATALOG] for c, ids in checks.items()}
    assert not unnamed, f"checks without @pytest.mark.requirement: {unnamed}"
    assert not {c: u for c, u in unknown.items() if u}


def test_every_requirement_has_a_check_or_says_why_not(checks: dict[str, list[str]]) -> None:
    covered: dict[str, list[str]] = defaultdict(list)
    for check, ids in checks.items():
        for rid in ids:
            covered[rid].append(check)
    orphans = [r.id for r in CATALOG.values() if r.id not in covered and not r.untested]
    both = [r.id for r in CATALOG.values() if r.id in covered and r.untested]
    assert not orphans, f"requirements with no check and no 'untested' reason: {orphans}"
    assert not both, f"requirements marked untested that have checks: {both}"


def test_catalog_size_meets_the_mark(checks: dict[str, list[str]]) -> None:
    checked = {rid for ids in checks.values() for rid in ids}
    assert len(CATALOG) >= 150
    assert len(checked) >= 130


def test_every_entry_is_complete() -> None:
    for r in CATALOG.values():
        assert r.title and r.text and r.part and r.section and r.edition, r.id
        if r.untested:
            assert len(r.untested) > 20, f"{r.id}: say why it is untested and what would test it"


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    entry = (
        '[[requirement]]\nid = "X-ONE"\ntitle = "t"\nlevel = "MUST"\ncapability = "store"\n'
        'part = "PS3.18"\nsection = "1"\nedition = "2025b"\ntext = "q"\n'
    )
    (tmp_path / "a.toml").write_text(entry)
    (tmp_path / "b.toml").write_text(entry)
    with pytest.raises(catalog.CatalogError, match="X-ONE is defined twice"):
        catalog.load(tmp_path)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("level", "SHALL", "level must be one of"),
        ("capability", "teleport", "unknown capability"),
        ("id", "lower-case", "UPPER-CASE"),
    ],
)
def test_malformed_entries_are_refused(
    tmp_path: Path, field: str, value: str, message: str
) -> None:
    fields = {
        "id": "X-ONE",
        "title": "t",
        "level": "MUST",
        "capability": "store",
        "part": "PS3.18",
        "section": "1",
        "edition": "2025b",
        "text": "q",
        field: value,
    }
    body = "[[requirement]]\n" + "".join(f'{k} = "{v}"\n' for k, v in fields.items())
    (tmp_path / "a.toml").write_text(body)
    with pytest.raises(catalog.CatalogError, match=message):
        catalog.load(tmp_path)


@pytest.mark.parametrize("name", profiles.shipped())
def test_shipped_profiles_load_and_name_only_known_things(
    name: str, checks: dict[str, list[str]]
) -> None:
    profile = profiles.load(name)
    unknown = [k for k in profile.expectations.entries if k not in CATALOG and k not in checks]
    assert not unknown, f"profile {name} departs from unknown requirements or checks: {unknown}"


def test_the_seven_profiles_the_issue_names_are_shipped() -> None:
    assert set(profiles.shipped()) >= {
        "standard",
        "azure-v2",
        "azure-v1",
        "google",
        "dcm4chee",
        "orthanc",
        "tiny-pacs",
    }


def test_a_profile_cannot_declare_a_core_capability_absent(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[capabilities]\nsearch = { supported = false, source = "x" }\n')
    with pytest.raises(profiles.ProfileError, match="core capability"):
        profiles.load(str(path))


def test_a_departure_needs_its_reason_and_source(tmp_path: Path) -> None:
    rid = next(iter(CATALOG))
    path = tmp_path / "p.toml"
    path.write_text(f'[expect]\n"{rid}" = "FAIL"\n')
    with pytest.raises(profiles.ProfileError, match="needs a reason and source"):
        profiles.load(str(path))
