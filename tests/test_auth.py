"""Tests for conformance.auth: Azure token caching and refresh, and build_auth for each mode."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from requests.auth import HTTPBasicAuth

from conformance.auth import REFRESH_MARGIN, AzureAuth, BearerAuth, TokenCredential, build_auth
from conformance.evidence import Redactor
from conformance.settings import AZURE_SCOPE, Settings, SettingsError

URL = "https://pacs.example/dicom-web"
LIFETIME = 3600  # seconds a stand-in token lives, as Azure's do
START = 1_700_000_000.0


@dataclass(frozen=True)
class FakeToken:
    token: str
    expires_on: int


@dataclass
class FakeClock:
    now: float = START

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeCredential:
    """Stands in for an azure-identity credential: numbered tokens, calls and scopes recorded."""

    clock: FakeClock = field(default_factory=FakeClock)
    scopes: list[tuple[str, ...]] = field(default_factory=list)
    delay: float = 0.0

    @property
    def calls(self) -> int:
        return len(self.scopes)

    def get_token(self, *scopes: str, **kwargs: Any) -> FakeToken:
        if self.delay:
            time.sleep(self.delay)
        self.scopes.append(scopes)
        return FakeToken(f"token-{self.calls}", int(self.clock.now + LIFETIME))


def authorization(auth: requests.auth.AuthBase) -> str:
    """The Authorization header the auth object puts on a request."""
    prepared = auth(requests.Request("GET", URL + "/studies").prepare())
    return prepared.headers["Authorization"]


# --- AzureAuth -------------------------------------------------------------------------------


def test_an_azure_token_is_fetched_once_and_reused() -> None:
    clock = FakeClock()
    credential = FakeCredential(clock)
    auth = AzureAuth(credential, AZURE_SCOPE, clock=clock)
    assert [auth.token(), auth.token(), auth.token()] == ["token-1"] * 3
    assert credential.calls == 1


@pytest.mark.parametrize(
    ("seconds_left", "expected"),
    [
        (LIFETIME - 1, "token-1"),
        (REFRESH_MARGIN + 1, "token-1"),
        (REFRESH_MARGIN, "token-1"),
        (REFRESH_MARGIN - 1, "token-2"),
        (1, "token-2"),
        (-60, "token-2"),
    ],
    ids=[
        "fresh",
        "just-outside-margin",
        "exactly-margin",
        "inside-margin",
        "last-second",
        "expired",
    ],
)
def test_an_azure_token_is_refreshed_only_when_fewer_than_the_margin_seconds_remain(
    seconds_left: float, expected: str
) -> None:
    clock = FakeClock()
    credential = FakeCredential(clock)
    auth = AzureAuth(credential, AZURE_SCOPE, clock=clock)
    auth.token()
    clock.now = START + LIFETIME - seconds_left
    assert auth.token() == expected
    assert credential.calls == int(expected.removeprefix("token-"))


def test_a_refreshed_azure_token_is_then_reused() -> None:
    clock = FakeClock()
    credential = FakeCredential(clock)
    auth = AzureAuth(credential, AZURE_SCOPE, clock=clock)
    auth.token()
    clock.now += LIFETIME - REFRESH_MARGIN + 1
    assert [auth.token(), auth.token()] == ["token-2", "token-2"]
    assert credential.calls == 2


def test_the_azure_header_is_bearer_and_the_token() -> None:
    clock = FakeClock()
    auth = AzureAuth(FakeCredential(clock), AZURE_SCOPE, clock=clock)
    assert authorization(auth) == "Bearer token-1"


def test_concurrent_requests_share_one_azure_token_fetch() -> None:
    clock = FakeClock()
    credential = FakeCredential(clock, delay=0.05)
    auth = AzureAuth(credential, AZURE_SCOPE, clock=clock)
    tokens: list[str] = []
    threads = [threading.Thread(target=lambda: tokens.append(auth.token())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert tokens == ["token-1"] * 8
    assert credential.calls == 1


# --- build_auth ------------------------------------------------------------------------------


def test_build_auth_for_azure_asks_for_the_dicom_scope_by_default() -> None:
    credential = FakeCredential(FakeClock(time.time()))
    auth = build_auth(Settings(base_url=URL, auth="azure"), azure_credential=lambda: credential)
    assert isinstance(auth, AzureAuth)
    assert authorization(auth) == "Bearer token-1"
    assert credential.scopes == [("https://dicom.healthcareapis.azure.com/.default",)]


def test_build_auth_for_azure_uses_the_configured_scope() -> None:
    credential = FakeCredential(FakeClock(time.time()))
    settings = Settings(base_url=URL, auth="azure", azure_scope="api://my-dicom/.default")
    auth = build_auth(settings, azure_credential=lambda: credential)
    assert auth is not None
    authorization(auth)
    assert credential.scopes == [("api://my-dicom/.default",)]


def test_build_auth_for_basic_gives_http_basic_auth() -> None:
    settings = Settings(base_url=URL, auth="basic", username="alice", password="s3cret")
    auth = build_auth(settings)
    assert isinstance(auth, HTTPBasicAuth)
    assert (auth.username, auth.password) == ("alice", "s3cret")
    assert authorization(auth).startswith("Basic ")


def test_build_auth_for_bearer_uses_the_token_from_settings() -> None:
    auth = build_auth(Settings(base_url=URL, auth="bearer", token="tok-123"))
    assert isinstance(auth, BearerAuth)
    assert authorization(auth) == "Bearer tok-123"


def test_build_auth_for_bearer_reads_the_token_file_without_surrounding_whitespace(
    tmp_path: Path,
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("\n  tok-from-file \t\n", encoding="utf-8")
    auth = build_auth(Settings(base_url=URL, auth="bearer", token_file=token_file))
    assert isinstance(auth, BearerAuth)
    assert authorization(auth) == "Bearer tok-from-file"


def test_build_auth_for_bearer_prefers_the_token_to_the_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("tok-from-file", encoding="utf-8")
    settings = Settings(base_url=URL, auth="bearer", token="tok-direct", token_file=token_file)
    auth = build_auth(settings)
    assert auth is not None
    assert authorization(auth) == "Bearer tok-direct"


@pytest.mark.parametrize("content", ["", " \n\t\n"], ids=["empty", "whitespace"])
def test_build_auth_for_bearer_refuses_an_empty_token_file(tmp_path: Path, content: str) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(content, encoding="utf-8")
    with pytest.raises(SettingsError, match=re.escape(f"token file {token_file} is empty")):
        build_auth(Settings(base_url=URL, auth="bearer", token_file=token_file))


def never_called() -> TokenCredential:
    raise AssertionError("the Azure credential was created for a non-azure mode")


def test_build_auth_for_none_gives_none() -> None:
    assert build_auth(Settings(base_url=URL, auth="none"), azure_credential=never_called) is None


@pytest.mark.parametrize("mode", ["basic", "bearer"])
def test_build_auth_creates_no_azure_credential_for_other_modes(mode: str) -> None:
    settings = Settings(base_url=URL, auth=mode, username="alice", password="pw", token="tok")
    assert build_auth(settings, azure_credential=never_called) is not None


def test_every_token_sent_is_handed_to_the_redactor(tmp_path: Path) -> None:
    """Tokens from a file or from Azure are not in Settings.secrets: the redactor learns them."""
    token_file = tmp_path / "token"
    token_file.write_text("file-token-123\n", encoding="utf-8")
    redactor = Redactor()
    build_auth(Settings(base_url=URL, auth="bearer", token_file=token_file), on_token=redactor.add)
    credential = FakeCredential(FakeClock())
    azure = build_auth(
        Settings(base_url=URL, auth="azure"),
        azure_credential=lambda: credential,
        on_token=redactor.add,
    )
    assert azure is not None
    sent = authorization(azure).removeprefix("Bearer ")
    text = redactor.text(f"echoed: file-token-123 and {sent}")
    assert "file-token-123" not in text and sent not in text
