"""Authentication for requests: none, basic, bearer token and Azure (azure-identity)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import requests
from requests.auth import AuthBase, HTTPBasicAuth

from .settings import Settings, SettingsError

# Refresh an Azure token this many seconds before it expires, so a request never leaves with a
# token that dies in flight (Azure's tokens live about an hour; long runs outlive them).
REFRESH_MARGIN = 300.0


class AccessTokenLike(Protocol):
    @property
    def token(self) -> str: ...
    @property
    def expires_on(self) -> int: ...


class TokenCredential(Protocol):
    """The part of azure-identity's credential protocol the suite uses."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessTokenLike: ...


class BearerAuth(AuthBase):
    """A fixed bearer token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request


class AzureAuth(AuthBase):
    """Bearer tokens from an azure-identity credential, refreshed before they expire."""

    def __init__(
        self,
        credential: TokenCredential,
        scope: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._credential = credential
        self._scope = scope
        self._clock = clock
        self._token: AccessTokenLike | None = None
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if self._token is None or self._token.expires_on - self._clock() < REFRESH_MARGIN:
                self._token = self._credential.get_token(self._scope)
            return self._token.token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request


def _default_azure_credential() -> TokenCredential:
    from azure.identity import DefaultAzureCredential

    credential: TokenCredential = DefaultAzureCredential()
    return credential


def build_auth(
    settings: Settings,
    azure_credential: Callable[[], TokenCredential] = _default_azure_credential,
) -> AuthBase | None:
    """The requests auth object for the settings (None for auth=none)."""
    if settings.auth == "basic":
        assert settings.username is not None and settings.password is not None
        return HTTPBasicAuth(settings.username, settings.password)
    if settings.auth == "bearer":
        return BearerAuth(read_token(settings))
    if settings.auth == "azure":
        return AzureAuth(azure_credential(), settings.azure_scope)
    return None


def read_token(settings: Settings) -> str:
    if settings.token:
        return settings.token
    assert settings.token_file is not None
    token = settings.token_file.read_text(encoding="utf-8").strip()
    if not token:
        raise SettingsError(f"token file {settings.token_file} is empty")
    return token
