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

    @property
    def token(self) -> str:
        """The token (a secret: the client's redactor hides it wherever it is shown)."""
        return self._token

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
        on_token: Callable[[str], None] = lambda token: None,
    ) -> None:
        self._on_token = on_token
        self._credential = credential
        self._scope = scope
        self._clock = clock
        self._token: AccessTokenLike | None = None
        self._lock = threading.Lock()

    def token(self) -> str:
        with self._lock:
            if self._token is None or self._token.expires_on - self._clock() < REFRESH_MARGIN:
                self._token = self._credential.get_token(self._scope)
                self._on_token(self._token.token)
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
    on_token: Callable[[str], None] = lambda token: None,
) -> AuthBase | None:
    """The requests auth object for the settings (None for auth=none).

    ``on_token`` learns every token the auth will send, so the evidence can hide it.
    """
    if settings.auth == "basic":
        return HTTPBasicAuth(settings.username or "", settings.password or "")
    if settings.auth == "bearer":
        token = read_token(settings)
        on_token(token)
        return BearerAuth(token)
    if settings.auth == "azure":
        return AzureAuth(azure_credential(), settings.azure_scope, on_token=on_token)
    return None


def read_token(settings: Settings) -> str:
    if settings.token:
        return settings.token
    assert settings.token_file is not None
    token = settings.token_file.read_text(encoding="utf-8").strip()
    if not token:
        raise SettingsError(f"token file {settings.token_file} is empty")
    return token
