"""Tests for conformance.settings: where each setting comes from, validation, and redaction."""

from __future__ import annotations

import base64
import itertools
import re
from pathlib import Path
from typing import Any

import pytest

from conformance.settings import (
    AZURE_SCOPE,
    OPTIONS,
    REDACTED,
    Option,
    Settings,
    SettingsError,
    resolve,
)

URL = "https://pacs.example/dicom-web"
PASSWORD = "hunter2-Pa55word"
TOKEN = "eyJ0eXAi.tok3n-value"

# Highest precedence first.
SOURCES = ("cli", "env", "file", "ini")


def config_file(tmp_path: Path, text: str, name: str = "dicomweb.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def resolve_username(tmp_path: Path, given: dict[str, str]) -> Settings:
    """Resolve with the username set in each named source to the given value."""
    cli: dict[str, Any] = {}
    env: dict[str, str] = {}
    ini: dict[str, str] = {}
    for source, value in given.items():
        if source == "cli":
            cli["username"] = value
        elif source == "env":
            env["DICOMWEB_USERNAME"] = value
        elif source == "file":
            path = config_file(tmp_path, f'[dicomweb]\nusername = "{value}"\n')
            cli["config"] = str(path)
        elif source == "ini":
            ini["dicomweb_username"] = value
    return resolve(URL, cli, env=env, ini=ini)


# --- precedence ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("higher", "lower"),
    list(itertools.combinations(SOURCES, 2)),
    ids=[f"{a}-over-{b}" for a, b in itertools.combinations(SOURCES, 2)],
)
def test_a_higher_source_wins_over_a_lower_one(tmp_path: Path, higher: str, lower: str) -> None:
    settings = resolve_username(tmp_path, {higher: f"from-{higher}", lower: f"from-{lower}"})
    assert settings.username == f"from-{higher}"


@pytest.mark.parametrize("source", SOURCES)
def test_each_source_alone_is_used(tmp_path: Path, source: str) -> None:
    assert resolve_username(tmp_path, {source: "alice"}).username == "alice"


def test_an_empty_environment_variable_counts_as_not_set() -> None:
    settings = resolve(
        URL, {}, env={"DICOMWEB_USERNAME": ""}, ini={"dicomweb_username": "from-ini"}
    )
    assert settings.username == "from-ini"


def test_the_config_file_can_be_named_in_the_environment(tmp_path: Path) -> None:
    path = config_file(tmp_path, '[dicomweb]\nusername = "alice"\n')
    settings = resolve(URL, {}, env={"DICOMWEB_CONFIG": str(path)})
    assert settings.username == "alice"


def test_the_config_file_can_be_named_in_the_ini(tmp_path: Path) -> None:
    path = config_file(tmp_path, '[dicomweb]\nusername = "alice"\n')
    settings = resolve(URL, {}, env={}, ini={"dicomweb_config": str(path)})
    assert settings.username == "alice"


def test_a_config_file_on_the_command_line_wins_over_one_in_the_environment(
    tmp_path: Path,
) -> None:
    chosen = config_file(tmp_path, '[dicomweb]\nusername = "chosen"\n', "chosen.toml")
    other = config_file(tmp_path, '[dicomweb]\nusername = "other"\n', "other.toml")
    settings = resolve(URL, {"config": str(chosen)}, env={"DICOMWEB_CONFIG": str(other)})
    assert settings.username == "chosen"


def test_config_file_values_of_toml_types_are_parsed(tmp_path: Path) -> None:
    path = config_file(
        tmp_path,
        "[dicomweb]\ntimeout = 5\nretries = 0\ninsecure = true\narticle_uids = false\n",
    )
    settings = resolve(URL, {"config": str(path)}, env={})
    assert (settings.timeout, settings.retries) == (5.0, 0)
    assert settings.insecure is True
    assert settings.article_uids is False


def test_string_values_are_parsed_to_their_types(tmp_path: Path) -> None:
    env = {"DICOMWEB_TIMEOUT": "2.5", "DICOMWEB_RETRIES": "4", "DICOMWEB_INSECURE": "yes"}
    settings = resolve(URL, {}, env=env)
    assert (settings.timeout, settings.retries, settings.insecure) == (2.5, 4, True)


def test_a_switch_not_given_on_the_command_line_leaves_the_environment_value() -> None:
    # argparse gives False for a store_true flag that was not passed: that is "not given".
    settings = resolve(URL, {"insecure": False}, env={"DICOMWEB_INSECURE": "true"})
    assert settings.insecure is True


def test_a_switch_given_on_the_command_line_wins_over_the_environment() -> None:
    settings = resolve(URL, {"insecure": True}, env={"DICOMWEB_INSECURE": "false"})
    assert settings.insecure is True


def test_defaults_apply_when_no_source_sets_anything() -> None:
    settings = resolve(URL, {}, env={}, ini={})
    assert settings.auth == "none"
    assert settings.azure_scope == AZURE_SCOPE
    assert (settings.timeout, settings.retries, settings.cleanup) == (60.0, 2, "auto")
    assert settings.insecure is False
    assert settings.samples is None


# --- command-line flags ----------------------------------------------------------------------


def test_only_password_and_token_are_secret() -> None:
    assert {o.name for o in OPTIONS if o.secret} == {"password", "token"}


@pytest.mark.parametrize("option", [o for o in OPTIONS if not o.secret], ids=lambda o: o.name)
def test_every_non_secret_option_has_a_command_line_flag(
    pytestconfig: pytest.Config, option: Option
) -> None:
    assert option.cli == "--dicomweb-" + option.name.replace("_", "-")
    # The plugin is loaded in this session too: the flag must really be registered.
    pytestconfig.getoption(option.cli.lstrip("-").replace("-", "_"))


@pytest.mark.parametrize("option", [o for o in OPTIONS if o.secret], ids=lambda o: o.name)
def test_secrets_have_no_command_line_flag(pytestconfig: pytest.Config, option: Option) -> None:
    with pytest.raises(ValueError, match="no option named"):
        pytestconfig.getoption(option.cli.lstrip("-").replace("-", "_"))


def test_secrets_are_never_taken_from_the_cli_mapping() -> None:
    settings = resolve(
        URL,
        {"password": "from-cli", "token": "from-cli"},
        env={
            "DICOMWEB_AUTH": "basic",
            "DICOMWEB_USERNAME": "alice",
            "DICOMWEB_PASSWORD": PASSWORD,
        },
    )
    assert settings.password == PASSWORD
    assert settings.token is None


# --- validation ------------------------------------------------------------------------------


SECONDS = "a number of seconds greater than 0, e.g. 30 or 2.5"
WHOLE = "a whole number, 0 or more"


@pytest.mark.parametrize(
    ("cli", "env", "ini", "message"),
    [
        (
            {},
            {"DICOMWEB_AUTH": "kerberos"},
            {},
            "DICOMWEB_AUTH takes one of none, basic, bearer, azure, not 'kerberos'",
        ),
        ({"cleanup": "shred"}, {}, {}, "--dicomweb-cleanup takes one of auto, dicomweb, orthanc"),
        ({}, {}, {"dicomweb_timeout": "-1"}, f"ini dicomweb_timeout takes {SECONDS}, not '-1'"),
        ({}, {"DICOMWEB_TIMEOUT": "0"}, {}, f"DICOMWEB_TIMEOUT takes {SECONDS}, not '0'"),
        ({"timeout": "abc"}, {}, {}, f"--dicomweb-timeout takes {SECONDS}, not 'abc'"),
        ({}, {"DICOMWEB_TIMEOUT": "inf"}, {}, f"DICOMWEB_TIMEOUT takes {SECONDS}, not 'inf'"),
        ({"check_timeout": "5m"}, {}, {}, f"--dicomweb-check-timeout takes {SECONDS}, not '5m'"),
        ({"run_timeout": "nan"}, {}, {}, f"--dicomweb-run-timeout takes {SECONDS}, not 'nan'"),
        ({"max_retry_wait": ""}, {}, {}, f"--dicomweb-max-retry-wait takes {SECONDS}, not ''"),
        (
            {"max_retry_wait": "x"},
            {},
            {},
            f"--dicomweb-max-retry-wait takes {SECONDS}, not 'x'",
        ),
        (
            {"retries": "two"},
            {},
            {},
            "--dicomweb-retries takes a whole number, 0 or more, not 'two'",
        ),
        ({}, {"DICOMWEB_RETRIES": "1.5"}, {}, "DICOMWEB_RETRIES takes a whole number, 0 or more"),
        ({}, {"DICOMWEB_RETRIES": "-1"}, {}, "DICOMWEB_RETRIES takes a whole number, 0 or more"),
        (
            {},
            {"DICOMWEB_INSECURE": "maybe"},
            {},
            "DICOMWEB_INSECURE takes true or false, not 'maybe'",
        ),
        ({}, {}, {"dicomweb_article_uids": "2"}, "ini dicomweb_article_uids takes true or false"),
    ],
    ids=[
        "auth-choice",
        "cleanup-choice",
        "negative-timeout",
        "zero-timeout",
        "word-timeout-on-the-command-line",
        "infinite-timeout",
        "check-timeout-with-a-unit",
        "nan-run-timeout",
        "empty-max-retry-wait",
        "word-max-retry-wait",
        "word-retries",
        "fractional-retries",
        "negative-retries",
        "bad-boolean-env",
        "bad-boolean-ini",
    ],
)
def test_an_invalid_value_is_reported_with_its_source(
    cli: dict[str, Any], env: dict[str, str], ini: dict[str, str], message: str
) -> None:
    """One line in our words: which option (as it was given), the value, what it takes."""
    with pytest.raises(SettingsError) as raised:
        resolve(URL, cli, env=env, ini=ini)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_an_invalid_config_file_value_names_the_config_file_key(tmp_path: Path) -> None:
    path = config_file(tmp_path, '[dicomweb]\nretries = "two"\n')
    with pytest.raises(
        SettingsError, match=r"config file key retries takes a whole number, 0 or more, not 'two'"
    ):
        resolve(URL, {"config": str(path)}, env={})


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_timeout_that_is_not_a_finite_number_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="DICOMWEB_TIMEOUT"):
        resolve(URL, {}, env={"DICOMWEB_TIMEOUT": value})


# (The parameter is not called base_url: pytest-base-url owns a fixture of that name.)
@pytest.mark.parametrize("url", [None, ""])
def test_a_missing_base_url_is_refused(url: str | None) -> None:
    with pytest.raises(SettingsError, match="no server given: pass --base-url"):
        resolve(url, {}, env={})


@pytest.mark.parametrize(
    "url", ["ftp://pacs.example/dicom-web", "pacs.example/dicom-web", "https://", "file:///x"]
)
def test_a_base_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(SettingsError, match=r"--base-url .* is not an http\(s\) URL"):
        resolve(url, {}, env={})


def test_basic_auth_without_a_password_is_refused() -> None:
    env = {"DICOMWEB_AUTH": "basic", "DICOMWEB_USERNAME": "alice"}
    with pytest.raises(SettingsError, match=r"auth=basic needs .*DICOMWEB_PASSWORD"):
        resolve(URL, {}, env=env)


def test_basic_auth_without_a_username_is_refused() -> None:
    env = {"DICOMWEB_AUTH": "basic", "DICOMWEB_PASSWORD": PASSWORD}
    with pytest.raises(SettingsError, match="auth=basic needs DICOMWEB_USERNAME"):
        resolve(URL, {}, env=env)


def test_bearer_auth_without_a_token_is_refused() -> None:
    with pytest.raises(SettingsError, match="auth=bearer needs DICOMWEB_TOKEN"):
        resolve(URL, {}, env={"DICOMWEB_AUTH": "bearer"})


def test_bearer_auth_with_a_missing_token_file_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-token"
    env = {"DICOMWEB_AUTH": "bearer", "DICOMWEB_TOKEN_FILE": str(missing)}
    with pytest.raises(SettingsError, match=re.escape(f"token file not found: {missing}")):
        resolve(URL, {}, env=env)


def test_bearer_auth_with_an_existing_token_file_is_accepted(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN, encoding="utf-8")
    settings = resolve(URL, {"auth": "bearer", "token_file": str(token_file)}, env={})
    assert settings.token_file == token_file


@pytest.mark.parametrize("secret", ["DICOMWEB_PASSWORD", "DICOMWEB_TOKEN"])
def test_a_secret_set_while_auth_is_none_is_refused(secret: str) -> None:
    with pytest.raises(SettingsError, match="password or token is set but auth is none"):
        resolve(URL, {}, env={secret: PASSWORD})


def test_an_unknown_config_file_key_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    path = config_file(tmp_path, '[dicomweb]\nusername = "alice"\ncolour = "blue"\n')
    with pytest.raises(SettingsError, match=r"unknown key\(s\) colour; known: .*username") as info:
        resolve(URL, {"config": str(path)}, env={})
    assert str(path) in str(info.value)


def test_the_config_key_itself_is_not_allowed_in_a_config_file(tmp_path: Path) -> None:
    path = config_file(tmp_path, '[dicomweb]\nconfig = "other.toml"\n')
    with pytest.raises(SettingsError, match=r"unknown key\(s\) config"):
        resolve(URL, {"config": str(path)}, env={})


def test_a_config_file_that_is_not_toml_is_refused(tmp_path: Path) -> None:
    path = config_file(tmp_path, "[dicomweb\nusername = alice\n")
    with pytest.raises(SettingsError, match="is not valid TOML") as info:
        resolve(URL, {"config": str(path)}, env={})
    assert str(path) in str(info.value)


def test_a_missing_config_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(SettingsError, match=re.escape(f"config file not found: {path}")):
        resolve(URL, {}, env={"DICOMWEB_CONFIG": str(path)})


def test_a_dicomweb_entry_that_is_not_a_table_is_refused(tmp_path: Path) -> None:
    path = config_file(tmp_path, "dicomweb = 5\n")
    with pytest.raises(SettingsError, match=re.escape(str(path))):
        resolve(URL, {"config": str(path)}, env={})


def test_a_samples_directory_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    with pytest.raises(SettingsError, match=re.escape(f"{missing} is not a directory")):
        resolve(URL, {}, env={"DICOMWEB_SAMPLES": str(missing)})


def test_a_samples_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    a_file = tmp_path / "blue-circle.dcm"
    a_file.write_bytes(b"")
    with pytest.raises(SettingsError, match="is not a directory"):
        resolve(URL, {"samples": str(a_file)}, env={})


def test_an_existing_samples_directory_is_kept_as_a_path(tmp_path: Path) -> None:
    settings = resolve(URL, {"samples": str(tmp_path)}, env={})
    assert settings.samples == tmp_path


# --- base URL, redaction, run id -------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("https://pacs.example/dicom-web/", "https://pacs.example/dicom-web"),
        ("https://pacs.example/dicom-web//", "https://pacs.example/dicom-web"),
        ("http://127.0.0.1:8042/", "http://127.0.0.1:8042"),
        ("https://pacs.example/dicom-web", "https://pacs.example/dicom-web"),
    ],
)
def test_the_base_url_loses_its_trailing_slash(given: str, kept: str) -> None:
    assert resolve(given, {}, env={}).base_url == kept


def with_secrets() -> list[Settings]:
    return [
        Settings(base_url=URL, auth="basic", username="alice", password=PASSWORD),
        Settings(base_url=URL, auth="bearer", token=TOKEN),
        Settings(base_url=URL, auth="basic", username="alice", password=PASSWORD, token=TOKEN),
    ]


@pytest.mark.parametrize("settings", with_secrets(), ids=["password", "token", "both"])
def test_redacted_and_repr_never_show_the_secrets(settings: Settings) -> None:
    shown = [repr(settings), str(settings), str(settings.redacted()), f"{settings!r}"]
    for text in shown:
        assert PASSWORD not in text
        assert TOKEN not in text
    assert URL in repr(settings)  # the rest is still shown


def test_redacted_marks_the_secrets_that_are_set() -> None:
    settings = Settings(base_url=URL, auth="basic", username="alice", password=PASSWORD)
    shown = settings.redacted()
    assert shown["password"] == REDACTED
    assert shown["token"] is None
    assert shown["username"] == "alice"


def test_resolved_settings_do_not_show_an_environment_password() -> None:
    env = {
        "DICOMWEB_AUTH": "basic",
        "DICOMWEB_USERNAME": "alice",
        "DICOMWEB_PASSWORD": PASSWORD,
    }
    settings = resolve(URL, {}, env=env)
    assert settings.password == PASSWORD
    assert settings.secrets == (PASSWORD, base64.b64encode(f"alice:{PASSWORD}".encode()).decode())
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings.redacted())


def test_redacted_shows_paths_as_strings(tmp_path: Path) -> None:
    settings = Settings(base_url=URL, samples=tmp_path)
    assert settings.redacted()["samples"] == str(tmp_path)


def test_each_resolve_gets_a_fresh_run_id() -> None:
    first = resolve(URL, {}, env={})
    second = resolve(URL, {}, env={})
    assert first.run_id != second.run_id
    assert first.run_id and second.run_id


def test_a_given_run_id_is_kept() -> None:
    assert resolve(URL, {}, env={"DICOMWEB_RUN_ID": "run-42"}).run_id == "run-42"


def test_studies_auto_n_asks_for_the_n_most_recent() -> None:
    settings = resolve(URL, {"read_only": True, "studies": "auto:3"}, env={})
    assert settings.discover == 3
    named = resolve(URL, {"read_only": True, "studies": "1.2.3,1.2.4"}, env={})
    assert named.discover is None and named.studies == ("1.2.3", "1.2.4")


@pytest.mark.parametrize("value", ["auto:0", "auto:101", "auto:x", "auto", "auto:2,1.2.3"])
def test_studies_auto_takes_one_count_alone(value: str) -> None:
    with pytest.raises(SettingsError, match="UIDs or auto:N alone"):
        resolve(URL, {"read_only": True, "studies": value}, env={})
