"""What the client sends is what ``requests.Session.request`` would send (conformance/client.py
``prepared``: made without its per-request merging, which cost a tenth of a run's CPU): the same
method, URL, headers (a header given as None left out, even a default one), body and
credentials, and the session's cookies, for a session that does not read the environment."""

from __future__ import annotations

import pytest
import requests
from requests.auth import HTTPBasicAuth

from conformance.client import Client, prepared

CASES = [
    ("GET", "http://pacs.example/dicom-web/studies?PatientID=X%2A&limit=2", {"Accept": None}, None),
    (
        "GET",
        "http://pacs.example/dicom-web/studies/1.2",
        {"Accept": "application/dicom+json"},
        None,
    ),
    (
        "POST",
        "http://pacs.example/dicom-web/studies",
        {"Content-Type": "multipart/related"},
        b"\x00x",
    ),
    (
        "POST",
        "http://pacs.example/dicom-web/studies",
        {"user-agent": "other", "Connection": None},
        None,
    ),
    ("DELETE", "http://pacs.example/dicom-web/studies/1.2", {}, None),
]


def session(auth: bool, cookie: bool) -> requests.Session:
    made = Client(
        "http://pacs.example/dicom-web", auth=HTTPBasicAuth("u", "p") if auth else None
    ).session
    if cookie:
        made.cookies.set("affinity", "a1", domain="pacs.example", path="/")
    return made


@pytest.mark.parametrize(("method", "url", "headers", "body"), CASES)
@pytest.mark.parametrize(("auth", "cookie"), [(False, False), (True, True)])
def test_what_is_sent_is_what_requests_would_send(
    method: str,
    url: str,
    headers: dict[str, str | None],
    body: bytes | None,
    auth: bool,
    cookie: bool,
) -> None:
    ours = prepared(session(auth, cookie), method, url, headers, body)
    theirs = session(auth, cookie).prepare_request(
        requests.Request(method, url, headers=headers, data=body)
    )
    assert (ours.method, ours.url, ours.body) == (theirs.method, theirs.url, theirs.body)
    assert dict(ours.headers) == dict(theirs.headers)
    assert ("Authorization" in ours.headers, "Cookie" in ours.headers) == (auth, cookie)


def test_a_request_writes_no_cookie_into_the_sessions_jar() -> None:
    """A redirect writes the cookies it meets into the request's jar: a copy of the session's."""
    made = session(auth=False, cookie=True)
    request = prepared(made, "GET", "http://pacs.example/dicom-web/studies", {}, None)
    request._cookies.set("other", "b2", domain="pacs.example", path="/")  # type: ignore[attr-defined]
    assert [c.name for c in made.cookies] == ["affinity"]
