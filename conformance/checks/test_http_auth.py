"""Authentication, service by service: where the profile declares that the server demands it,
each service the server offers refuses a request without credentials and with each credential
that differs from the run's own in one part, and every 401 carries its challenge.

RFC 9110 11.4 says how to refuse (SHOULD: 401), PS3.18 8.5 allows 404 by local policy, and
PS3.18 Table 8.5-1 makes a 401's WWW-Authenticate a "shall". A server that guards its searches
and not its frames, or its reads and not its stores, must not pass: each check is one service
(a parameter), so one unguarded service is one failure and hides nothing of another's.

A service is judged where the run's own credential is served; elsewhere the check is
NOT-IMPLEMENTED. Store and delete are asked only of a new study of the run's own: a wrong
credential let through writes or deletes only what this run made (and the cleanup removes), and
every such request passes the client's guard like any other. Each is read back with the run's
own credential: a store or delete refused yet applied counts as served (RFC 9110 15.5.2: a 401
"indicates that the request has not been applied").
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import requests
from requests.auth import AuthBase, HTTPBasicAuth

from conformance import expect
from conformance.auth import BearerAuth
from conformance.client import Client
from conformance.dicomweb import (
    ACCEPT_FRAMES_ANY_TS,
    instance_path,
    metadata,
    retrieve,
    search,
    stow,
)
from conformance.run.fixtures import NewSynthetic
from conformance.samples import Instance, SampleStudy
from conformance.settings import Settings

PIXEL_DATA = "7FE00010"
Ask = Callable[[Client], requests.Response]


@dataclass
class Service:
    """One service of the server, asked with other credentials.

    ``ask`` sends its request with a given client; ``own`` sends it with the run's own
    credential (for a read before the others, to know it is offered; for a write after them, as
    it would change what they are asked of); ``changed`` reads back with the run's credential
    what a refused write must have left alone (None: nothing changed)."""

    ask: Ask
    own: Callable[[], requests.Response]
    writes: bool = False
    changed: Callable[[], str | None] = lambda: None


def reading(path: str, accept: str) -> Ask:
    """A GET of a resource whose body is never read (the status is the answer)."""
    return lambda client: client.get(path, headers={"Accept": accept}, stream=True)


def read_service(dicomweb: Client, ask: Ask) -> Service:
    return Service(ask, lambda: ask(dicomweb))


def still_there(dicomweb: Client, path: str, what: str) -> Callable[[], str | None]:
    def changed() -> str | None:
        response = retrieve(dicomweb, path)
        response.close()
        if response.status_code == 200:
            return None
        return f"{what} is gone (GET {path} answers {response.status_code} to the run's own)"

    return changed


def not_there(dicomweb: Client, path: str, what: str) -> Callable[[], str | None]:
    def changed() -> str | None:
        response = retrieve(dicomweb, path)
        response.close()
        if response.status_code != 200:
            return None
        return f"{what} was stored (GET {path} answers 200 to the run's own credential)"

    return changed


def service_of(
    name: str, dicomweb: Client, study: SampleStudy, new_synthetic: NewSynthetic
) -> Service:
    """The request of each service: on the stored sample study for a read (its red instance),
    on a new study of the run's own for a write."""
    red = study.red
    if name == "search":
        return read_service(
            dicomweb, lambda c: search(c, "studies", StudyInstanceUID=study.study_uid)
        )
    if name == "metadata":
        return read_service(dicomweb, lambda c: metadata(c, f"studies/{study.study_uid}"))
    if name == "retrieve":
        return read_service(dicomweb, lambda c: retrieve(c, instance_path(red)))
    if name == "frames":
        path = f"{instance_path(red)}/frames/1"
        return read_service(dicomweb, reading(path, ACCEPT_FRAMES_ANY_TS))
    if name == "rendered":
        path = f"{instance_path(red)}/rendered"
        return read_service(dicomweb, reading(path, "*/*"))  # any rendering will do
    if name == "bulkdata":
        return read_service(dicomweb, reading(bulkdata_uri(dicomweb, red), "*/*"))
    if name == "changefeed":
        return read_service(
            dicomweb,
            lambda c: c.get("changefeed", query=[("limit", "1")], headers={"Accept": "*/*"}),
        )
    mine = new_synthetic().sequence
    path = instance_path(mine)
    if name == "store":
        return Service(
            ask=lambda c: stow(c, [mine]),
            own=lambda: stow(dicomweb, [mine]),
            writes=True,
            changed=not_there(dicomweb, path, "the run's new instance"),
        )
    if name == "delete":
        expect.answered(stow(dicomweb, [mine]), 200)
        return Service(
            ask=lambda c: c.delete(path),
            own=lambda: dicomweb.delete(path),
            writes=True,
            changed=still_there(dicomweb, path, "the run's new instance"),
        )
    raise ValueError(name)


def bulkdata_uri(dicomweb: Client, instance: Instance) -> str:
    """The BulkDataURI the instance's metadata gives Pixel Data (NOT-IMPLEMENTED without one)."""
    response = metadata(dicomweb, instance_path(instance))
    objects = response.json() if response.status_code == 200 else None
    first = objects[0] if isinstance(objects, list) and objects else {}
    attribute = first.get(PIXEL_DATA) if isinstance(first, dict) else None
    uri = attribute.get("BulkDataURI") if isinstance(attribute, dict) else None
    if not isinstance(uri, str):
        expect.not_implemented("the instance's metadata gives Pixel Data no BulkDataURI")
    return uri


SERVICES = [
    "search",
    "metadata",
    "retrieve",
    "frames",
    "bulkdata",
    "rendered",
    "store",
    "delete",
    "changefeed",
]


# The services every DICOMweb server has (PS3.18 10.3-10.6): the run's own credential must be
# served there, or the check cannot judge. The others are capabilities of their own.
CORE = {"search", "retrieve", "store"}


def offered(name: str, response: requests.Response) -> None:
    """Whether the run's own credential is served: for a core service a precondition (ERROR),
    for another NOT-IMPLEMENTED, naming the service's capability, not the requirement's (auth):
    where the profile declares the server has it, ERROR (nothing to judge), never an auth FAIL."""
    response.close()
    if 200 <= response.status_code < 300:
        return
    answered = f"with the run's own credential it answered {response.status_code}"
    expect.precondition(name not in CORE, f"{name}: {answered}")
    expect.not_implemented(f"{name} is not offered: {answered}", capability=name)


@dataclass
class Asked:
    answers: dict[str, requests.Response]  # "frames with an unknown user" -> its answer
    changed: str | None  # what a refused write changed, read back with the run's credential
    own: requests.Response | None  # a write's answer to the run's own credential


def asked(
    name: str,
    credentials: dict[str, AuthBase | None],
    dicomweb: Client,
    study: SampleStudy,
    new_synthetic: NewSynthetic,
) -> Asked:
    """The service asked with each credential; a read only where it is offered."""
    service = service_of(name, dicomweb, study, new_synthetic)
    if not service.writes:
        offered(name, service.own())
    answers = {}
    for who, auth in credentials.items():
        response = service.ask(dicomweb.as_other(auth))
        response.close()  # the status is the answer; a body served is not read
        answers[f"{name} {who}"] = response
    changed = service.changed()
    return Asked(answers, changed, service.own() if service.writes else None)


def refusal(response: requests.Response, who: str) -> None:
    """A request to the protected resource was refused: 401 (reading 401), or 404 by local
    policy (reading 404, PS3.18 8.5); anything else departs from RFC 9110 11.4's SHOULD."""
    status = response.status_code
    expect.status(response, 401, 404, why=f"{who}: 401 (RFC 9110 11.4), or 404 (PS3.18 8.5)")
    expect.chose(str(status))


def refused_everywhere(name: str, answered: Asked, scheme: str) -> None:
    """The core first (nothing served, nothing changed), then whether the service is offered at
    all (a write's own request comes last), then the detail of each refusal."""
    served = [
        f"{who} ({r.status_code})"
        for who, r in answered.answers.items()
        if 200 <= r.status_code < 300
    ]
    if answered.changed:
        served.append(f"{name}, refused, yet {answered.changed}")
    assert not served, (
        f"served: {'; '.join(served)}, although the profile declares that the server demands "
        f"{scheme} authentication (RFC 9110 11.4: 401)"
    )
    if answered.own is not None:
        offered(name, answered.own)
    for who, response in answered.answers.items():
        refusal(response, who)


NOBODY = "dicomweb-conformance-nobody"


def wrong_credentials(dicomweb: Client, settings: Settings) -> dict[str, AuthBase]:
    """Credentials that differ from the run's own in one part each, by what they are: what a
    server checking only the user name, only the password, or a prefix of either lets through
    (real bugs: any password passed for a known user, codeigniter-restserver#332 and
    apache/brooklyn-server#1419; the user name ignored, gevorg/http-auth#7; a token's prefixes
    accepted, TykTechnologies/tyk#2516), and one unrelated to it. None is ever shown: the
    Authorization header is redacted wherever it is recorded."""
    unrelated = secrets.token_urlsafe(16)
    real = dicomweb.session.auth
    if settings.auth == "basic" and settings.username and settings.password:
        user, password = settings.username, settings.password
        return {
            "an unknown user": HTTPBasicAuth(NOBODY, unrelated),
            "the real user with a wrong password": HTTPBasicAuth(user, unrelated),
            "the real password with a character added": HTTPBasicAuth(user, f"{password}x"),
            "the real password less its last character": HTTPBasicAuth(user, password[:-1]),
            "an unknown user with the real password": HTTPBasicAuth(NOBODY, password),
        }
    variants: dict[str, AuthBase] = {
        "an invalid token": BearerAuth(f"dicomweb-conformance-invalid-{unrelated}")
    }
    if isinstance(real, BearerAuth) and real.token:
        token = real.token
        # The first character, not the last: a base64url signature's last character carries
        # padding bits, which a lenient decoder ignores (then the token is rightly accepted).
        changed = ("B" if token[0] == "A" else "A") + token[1:]
        variants |= {
            "the real token with its first character changed": BearerAuth(changed),
            "the real token with a character added": BearerAuth(f"{token}A"),
            "the real token less its last character": BearerAuth(token[:-1]),
        }
    return variants


def hidden(dicomweb: Client, variants: dict[str, AuthBase]) -> dict[str, AuthBase]:
    """The variants, each also hidden wherever the run shows text: most of them are nearly the
    real secret (the Authorization header is redacted by name; this covers a server that echoes
    what it was sent). A part shorter than 4 characters would hide every such run of text."""
    for auth in variants.values():
        parts = [auth.password] if isinstance(auth, HTTPBasicAuth) else []
        parts += [auth.token] if isinstance(auth, BearerAuth) else []
        for part in parts:
            if isinstance(part, str) and len(part) >= 4:
                dicomweb.redactor.add(part)
    return variants


def with_wrong(dicomweb: Client, settings: Settings) -> dict[str, AuthBase | None]:
    variants = hidden(dicomweb, wrong_credentials(dicomweb, settings))
    return {f"with {what}": auth for what, auth in variants.items()}


WITHOUT: dict[str, AuthBase | None] = {"without credentials": None}


@pytest.mark.requirement("HTTP-AUTH-REQUIRED")
@pytest.mark.parametrize("service", SERVICES)
def test_request_without_credentials_is_refused(
    dicomweb: Client,
    dicomweb_settings: Settings,
    stored_study: SampleStudy,
    new_synthetic: NewSynthetic,
    service: str,
) -> None:
    answered = asked(service, WITHOUT, dicomweb, stored_study, new_synthetic)
    refused_everywhere(service, answered, dicomweb_settings.auth)


@pytest.mark.requirement("HTTP-AUTH-WRONG-CREDENTIALS")
@pytest.mark.parametrize("service", SERVICES)
def test_request_with_wrong_credentials_is_refused(
    dicomweb: Client,
    dicomweb_settings: Settings,
    stored_study: SampleStudy,
    new_synthetic: NewSynthetic,
    service: str,
) -> None:
    """Each wrong credential refused, not only one unrelated to the real one: the core (nothing
    served) judged over all of them before the detail (401, or 404 by local policy)."""
    credentials = with_wrong(dicomweb, dicomweb_settings)
    answered = asked(service, credentials, dicomweb, stored_study, new_synthetic)
    refused_everywhere(service, answered, dicomweb_settings.auth)


@pytest.mark.requirement("HTTP-401-CHALLENGE")
@pytest.mark.parametrize("service", SERVICES)
def test_401_answers_carry_a_challenge(
    dicomweb: Client,
    dicomweb_settings: Settings,
    stored_study: SampleStudy,
    new_synthetic: NewSynthetic,
    service: str,
) -> None:
    """The refused requests of the checks above (no credentials, each wrong one): each 401
    among their answers has a WWW-Authenticate header (PS3.18 Table 8.5-1: "shall send")."""
    credentials = WITHOUT | with_wrong(dicomweb, dicomweb_settings)
    answered = asked(service, credentials, dicomweb, stored_study, new_synthetic)
    served = any(200 <= r.status_code < 300 for r in answered.answers.values())
    # A write let through, or applied though refused, shows the service is offered (the run's
    # own request may then find it done: 409, 404).
    if answered.own is not None and not served and not answered.changed:
        offered(service, answered.own)
    unauthorized = {who: r for who, r in answered.answers.items() if r.status_code == 401}
    if not unauthorized:
        statuses = ", ".join(f"{who}: {r.status_code}" for who, r in answered.answers.items())
        expect.info(f"no 401 to judge ({statuses})")
    silent = [who for who, r in unauthorized.items() if not r.headers.get("WWW-Authenticate")]
    assert not silent, f"401 without a WWW-Authenticate challenge to the requests {silent}"
