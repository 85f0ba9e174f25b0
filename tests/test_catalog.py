"""The catalog and the checks stay in step: every check names known requirements, every
requirement has a check or says why not, IDs are unique, and every shipped profile is sound."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest

from conformance import catalog, profiles

CATALOG = catalog.default()


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
        'binds = "origin server"\npart = "PS3.18"\nsection = "1"\nedition = "2024c"\n'
        'text = "it shall"\n'
    )
    (tmp_path / "a.toml").write_text(entry)
    (tmp_path / "b.toml").write_text(entry)
    with pytest.raises(catalog.CatalogError, match="X-ONE is defined twice"):
        catalog.load(tmp_path)


ENTRY = {
    "id": "X-ONE",
    "title": "t",
    "level": "MUST",
    "binds": "origin server",
    "capability": "store",
    "part": "PS3.18",
    "section": "8.7.5",
    "edition": "2024c",
    "text": "The response to a request without an Accept header field shall be 406",
}


def write_entry(tmp_path: Path, extra: str = "", /, **fields: str | None) -> Path:
    """A catalog folder with one requirement: ENTRY with ``fields`` changed (None: left out)."""
    entry = {k: v for k, v in {**ENTRY, **fields}.items() if v is not None}
    body = "[[requirement]]\n" + "".join(f'{k} = "{v}"\n' for k, v in entry.items()) + extra
    (tmp_path / "a.toml").write_text(body)
    return tmp_path


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"level": "SHALL"}, "level must be one of"),
        ({"capability": "teleport"}, "unknown capability"),
        ({"id": "lower-case"}, "UPPER-CASE"),
        ({"binds": None}, "missing binds"),
        ({"binds": "the server"}, "binds is one of 'origin server', 'user agent'"),
        ({"text": None}, "missing text"),
        ({"text": " "}, "missing text"),
        ({"edition": None}, "missing edition"),
        ({"level": None}, "missing level"),
        ({"edition": "c. 2021 (undated RST transcription)"}, "is not an edition of PS3.18"),
        ({"part": "RFC 9110", "edition": "RFC 9110 (June 2022)"}, "is not an edition of RFC"),
        # The level is the verb's: a MUST quoting no "shall", a MAY quoting a "shall".
        ({"text": "The origin server is expected to return 406"}, "its quote has no"),
        ({"level": "MAY"}, "level MAY, but its quote has no 'may|optional'"),
        ({"part": "Vendor guide", "edition": "v1"}, "says how it takes levels"),
    ],
)
def test_malformed_entries_are_refused_in_one_line_naming_file_and_id(
    tmp_path: Path, fields: dict[str, str | None], message: str
) -> None:
    with pytest.raises(catalog.CatalogError, match=re.escape(message)) as refused:
        catalog.load(write_entry(tmp_path, **fields))
    text = str(refused.value)
    assert "\n" not in text
    assert text.startswith("a.toml, requirement")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('request_breaks = "PS3.18 8.6.1.2: a part shall have a Content-Type"\n', "as a MUST"),
        ('readings = [{ id = "406", text = "q", source = "s" }]\n', "two or more"),
        (
            'readings = [{ id = "406", text = "q", source = "s" }, { id = "406", text = "r", '
            'source = "t" }]\n',
            "reading ids repeat",
        ),
        ('readings = [{ id = "A", text = "q", source = "s" }, { id = "b" }]\n', "lower-case"),
        ('explained_by = ["X-NOWHERE"]\n', "explained_by names X-NOWHERE"),
        ('explained_by = ["X-ONE"]\n', "explained_by names X-ONE"),
    ],
)
def test_inconsistent_entries_are_refused(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(catalog.CatalogError, match=re.escape(message)):
        catalog.load(write_entry(tmp_path, extra))


def test_a_well_formed_entry_with_readings_loads(tmp_path: Path) -> None:
    extra = (
        'readings = [{ id = "406", text = "return a 406", source = "PS3.18 2024c 8.7.8.1" },'
        ' { id = "default-media-type", text = "the default", source = "PS3.18 2024c 8.7.3.1" }]\n'
        'later = "unchanged through 2026a"\n'
    )
    loaded = catalog.load(write_entry(tmp_path, extra))["X-ONE"]
    assert [g.id for g in loaded.readings] == ["406", "default-media-type"]
    assert loaded.judged and loaded.reading("406") is not None


def test_a_vendor_file_says_how_it_takes_levels(tmp_path: Path) -> None:
    (tmp_path / "v.toml").write_text(
        'levels = "what the vendor documents is the rule for a server offering it"\n'
        "[[requirement]]\n"
        + "".join(
            f'{k} = "{v}"\n'
            for k, v in {
                **ENTRY,
                "part": "Vendor guide",
                "edition": "v1",
                "text": "returns 204",
            }.items()
        )
    )
    assert catalog.load(tmp_path)["X-ONE"].level == "MUST"


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


def test_a_profile_expecting_a_reading_the_requirement_does_not_list_is_refused(
    tmp_path: Path,
) -> None:
    rid = next(r.id for r in CATALOG.values() if r.readings)
    path = tmp_path / "p.toml"
    path.write_text(
        f'[expect]\n"{rid}" = {{ verdict = "INFO", reading = "no-such-reading", '
        'reason = "r", source = "s" }\n'
    )
    with pytest.raises(profiles.ProfileError, match="expects reading 'no-such-reading'") as no:
        profiles.load(str(path))
    assert "\n" not in str(no.value) and "p.toml" in str(no.value)
