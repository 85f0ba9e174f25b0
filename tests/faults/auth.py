"""Faults of the authentication checks: gateways in front of a server that demands credentials
(see tests/faults/__init__.py), each letting through what a real deployment let through.

None is in the catalog run (the catalog's Orthanc has no users). tests/test_http_auth_orthanc.py
proves them in front of Orthanc with basic auth, tests/test_tinypacs_auth.py in front of
tiny-pacs with a bearer token and tests/test_azure_standin_auth.py in front of the Azure
stand-in with a bearer token. The checks are one per service; each fault names every service
it opens, and a test expects a catch where the server offers that service (the others are
NOT-IMPLEMENTED there): the store and delete cells are caught on the stand-in, which has DELETE
and a change feed, and on Orthanc for store.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable

from proof import AUTH_GATEWAY

from . import Answer, Exchange, Forward, behaviour, fault

AUTH = "test_http_auth.py::"
WITHOUT = f"{AUTH}test_request_without_credentials_is_refused"
WRONG = f"{AUTH}test_request_with_wrong_credentials_is_refused"
CHALLENGE = f"{AUTH}test_401_answers_carry_a_challenge"
READS = ("search", "metadata", "retrieve", "frames", "bulkdata", "rendered", "changefeed")
WRITES = ("store", "delete")
SERVICES = (*READS, *WRITES)
PIXELS = ("frames", "bulkdata", "rendered")

# The credentials of the orthanc_with_auth fixture (tests/conftest.py). The gateway forwards
# what it lets through with the service's own credentials: the tests in front of a server with a
# bearer token set SERVICE_AUTHORIZATION to it.
ORTHANC_USER, ORTHANC_PASSWORD = "alice", "s3cret-pw"
SERVICE_AUTHORIZATION = (
    "Basic " + base64.b64encode(f"{ORTHANC_USER}:{ORTHANC_PASSWORD}".encode()).decode()
)


def cells(check: str, services: Iterable[str] = SERVICES) -> list[str]:
    """The check's parameter of each service: test_x.py::test_y[frames]."""
    return [f"{check}[{service}]" for service in services]


def authorized_as(request: Exchange) -> Exchange:
    """The request with the service's own credentials, as a faulty gateway forwards it."""
    headers = {**request.headers, "authorization": SERVICE_AUTHORIZATION}
    return Exchange(request.method, request.path, request.query, headers, request.body)


def given_secret(request: Exchange) -> tuple[str | None, str] | None:
    """(user, password) of a Basic Authorization, (None, token) of a Bearer one, else None."""
    value = request.headers.get("authorization", "")
    scheme, _, credentials = value.partition(" ")
    if scheme.lower() == "bearer":
        return None, credentials
    if scheme.lower() != "basic":
        return None
    user, _, password = base64.b64decode(credentials).decode(errors="replace").partition(":")
    return user, password


def service_secret() -> tuple[str | None, str]:
    found = given_secret(Exchange("GET", "/", "", {"authorization": SERVICE_AUTHORIZATION}, b""))
    assert found is not None
    return found


@fault(
    "auth-not-enforced",
    cells(WITHOUT),
    test="test_http_auth_orthanc.py",
    where=AUTH_GATEWAY,
)
def auth_not_enforced(request: Exchange, forward: Forward) -> Answer:
    """A gateway that lets anonymous requests through with a service account's credentials."""
    return forward(request if "authorization" in request.headers else authorized_as(request))


@fault(
    "auth-accepts-any-credentials",
    cells(WRONG),
    test="test_http_auth_orthanc.py",
    where=AUTH_GATEWAY,
)
def auth_accepts_any_credentials(request: Exchange, forward: Forward) -> Answer:
    """A gateway that checks that credentials are present, not that they are right."""
    return forward(authorized_as(request) if "authorization" in request.headers else request)


# The gateway faults of a user name and password: a bearer token has neither part.
BASIC_ONLY = frozenset({"auth-ignores-the-password", "auth-ignores-the-user-name"})


@fault(
    "auth-ignores-the-password",
    cells(WRONG),
    test="test_http_auth_orthanc.py",
    where=AUTH_GATEWAY,
)
def auth_ignores_the_password(request: Exchange, forward: Forward) -> Answer:
    """A gateway that lets a known user in whatever the password (codeigniter-restserver#332:
    "Authentication passes with any password"; apache/brooklyn-server#1419: "the password is
    never checked"). An unknown user with a random password is still refused."""
    given = given_secret(request)
    known = given is not None and given[0] == ORTHANC_USER
    return forward(authorized_as(request) if known else request)


@fault(
    "auth-ignores-the-user-name",
    cells(WRONG),
    test="test_http_auth_orthanc.py",
    where=AUTH_GATEWAY,
)
def auth_ignores_the_user_name(request: Exchange, forward: Forward) -> Answer:
    """A gateway that checks the password and not whose it is (gevorg/http-auth#7: "the
    username seems to be ignored", curl -u mi:supergirl let in)."""
    given = given_secret(request)
    right = given is not None and given[0] is not None and given[1] == ORTHANC_PASSWORD
    return forward(authorized_as(request) if right else request)


@fault(
    "auth-compares-a-prefix",
    cells(WRONG),
    test="test_http_auth_orthanc.py",
    where=AUTH_GATEWAY,
)
def auth_compares_a_prefix(request: Exchange, forward: Forward) -> Answer:
    """A gateway that compares the secret only as far as the shorter of the two reaches: a
    password or token that is a prefix of the real one, or starts with it, is let in (the
    right user's, for basic). Real bugs: a custom token's prefixes accepted
    (TykTechnologies/tyk#2516: for the token "ilijaaa", "ilij", "ilija" and "ilijaa" passed),
    and a secret checked with startsWith (exa-labs/exa-mcp-server#246: "any string beginning
    with the secret token passes"). Only the variants with a character added or taken away
    show it; an unrelated secret is still refused."""
    given, real = given_secret(request), service_secret()
    if given is None or given[0] != real[0] or not given[1]:
        return forward(request)
    shorter = min(len(given[1]), len(real[1]))
    return forward(authorized_as(request) if given[1][:shorter] == real[1][:shorter] else request)


def on_a_search_path(request: Exchange) -> bool:
    return request.path.rstrip("/").rsplit("/", 1)[-1] in ("studies", "series", "instances")


@fault(
    "auth-only-on-search",
    [
        *cells(WITHOUT, (s for s in SERVICES if s not in ("search", "store"))),
        *cells(WRONG, (s for s in SERVICES if s not in ("search", "store"))),
    ],
    test="test_http_auth_orthanc.py",
    where=AUTH_GATEWAY,
)
def auth_only_on_search(request: Exchange, forward: Forward) -> Answer:
    """A gateway that guards the paths of searches (GET or POST /studies, /series, /instances:
    a store is a POST to /studies) and lets the rest through with the service's own credentials:
    a deployment that opens WADO without authentication while its searches need it
    (nroduit/Weasis#200: "WADO retrieve without authentication combined with C-FIND")."""
    return forward(request if on_a_search_path(request) else authorized_as(request))


# The resources of a frame, a bulk data element and a rendering, as the servers spell them.
PIXEL_PATH = re.compile(r"/(frames/[\d,]+|bulk[^/]*/[^?]*|rendered|thumbnail)$")


@fault(
    "auth-not-on-pixel-routes",
    [*cells(WITHOUT, PIXELS), *cells(WRONG, PIXELS)],
    test="test_http_auth_orthanc.py",
    where=AUTH_GATEWAY,
)
def auth_not_on_pixel_routes(request: Exchange, forward: Forward) -> Answer:
    """A gateway whose rules guard the study, series, instance and metadata resources and not
    what a viewer loads from them: frames, bulk data and renderings are served to anyone, as
    thumbnails were (OvenMediaLabs/OvenMediaEngine#1055: "thumbnails are accessible to anonymous
    users"; Meeds-io/social#5531: no access control on an existing thumbnail)."""
    return forward(authorized_as(request) if PIXEL_PATH.search(request.path) else request)


@fault(
    "auth-only-on-reads",
    [*cells(WITHOUT, WRITES), *cells(WRONG, WRITES)],
    test="test_http_auth_orthanc.py",
    where=AUTH_GATEWAY,
)
def auth_only_on_reads(request: Exchange, forward: Forward) -> Answer:
    """A gateway that guards GET and lets every other method through with the service's own
    credentials, so a store or a delete needs none: as an upload route left without the
    authentication its reads had (DICOM-RST had none on any route and advised a proxy,
    UMEssen/DICOM-RST#15; a proxy configured per method is where a write slips past)."""
    return forward(request if request.method in ("GET", "HEAD") else authorized_as(request))


@fault(
    "auth-refuses-after-applying",
    cells(WITHOUT, WRITES),
    test="test_http_auth_orthanc.py",
    where=AUTH_GATEWAY,
)
def auth_refuses_after_applying(request: Exchange, forward: Forward) -> Answer:
    """A gateway that answers a write without credentials with 401 (and its challenge) only
    after passing it on: the refusal sent, the handler not returned (rtcstats/rtcstats#260,
    "return after http upload was not authorized"; MG-RAST/Shock#179, "auth check done after
    upload"). Only reading back shows the store or delete was applied."""
    if "authorization" in request.headers or request.method not in ("POST", "DELETE"):
        return forward(request)
    forward(authorized_as(request))
    challenge = {"WWW-Authenticate": 'Basic realm="gateway"', "Content-Type": "text/plain"}
    return Answer(401, challenge, b"Unauthorized")


@fault(
    "401-without-challenge",
    cells(CHALLENGE),
    test="test_http_auth_orthanc.py",
    where=AUTH_GATEWAY,
)
def challenge_dropped(request: Exchange, forward: Forward) -> Answer:
    """A gateway that answers 401 but drops the server's WWW-Authenticate (a reverse proxy
    whose error pages replace the upstream answer), so a client cannot learn how to
    authenticate."""
    answer = forward(request)
    if answer.status != 401:
        return answer
    headers = {k: v for k, v in answer.headers.items() if k.lower() != "www-authenticate"}
    return Answer(answer.status, headers, answer.body)


# A reading, not a fault: the refusal PS3.18 8.5 allows instead of a 401. A repair of the auth
# gateway, asserted by tests/test_http_auth_orthanc.py (the catalog's Orthanc has no users).
@behaviour(
    "auth-refused-404",
    [],
    test="test_http_auth_orthanc.py",
    where=AUTH_GATEWAY,
    kind="repair",
    readings={cell: "404" for cell in (*cells(WITHOUT), *cells(WRONG))},
)
def auth_refused_404(request: Exchange, forward: Forward) -> Answer:
    """A gateway whose local policy answers 404 rather than 401 to a request it does not
    authenticate, "to avoid allowing the user agent to infer the existence of a resource"
    (PS3.18 8.5)."""
    answer = forward(request)
    if answer.status != 401:
        return answer
    return Answer(404, {"Content-Type": "text/plain"}, b"Not Found")
