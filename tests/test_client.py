"""Tests for conformance.client: redaction, evidence, query encoding, and retries over real HTTP."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest
import requests
from scriptedserver import Answer, Clients, ScriptedServer

from conformance.auth import build_auth
from conformance.client import Client, build_query, no_answer_kind, retry_after_seconds
from conformance.errors import DeadlineExceeded, NoAnswer, Throttled, UnsafeRequestError
from conformance.evidence import COMPACT_BYTES, EXCERPT_CHARS, Exchange, Redactor, describe_body
from conformance.guard import Guard, Registry
from conformance.multipart import encode_related
from conformance.settings import REDACTED, Settings

PASSWORD = "s3cret-pw"

# --- Redactor --------------------------------------------------------------------------------


def test_a_secret_is_replaced_wherever_it_appears() -> None:
    redactor = Redactor([PASSWORD])
    text = f"pw={PASSWORD}&again={PASSWORD}, and inside:x{PASSWORD}y"
    assert redactor.text(text) == "pw=***&again=***, and inside:x***y"


def test_the_longest_secret_is_replaced_first() -> None:
    # Were "abc" replaced first, "abcdef" would leave "def" behind.
    assert Redactor(["abc", "abcdef"]).text("token abcdef") == "token ***"
    assert Redactor(["abcdef", "abc"]).text("token abcdef") == "token ***"


def test_empty_secrets_are_ignored() -> None:
    assert Redactor(["", PASSWORD]).text("plain text") == "plain text"


def test_text_without_secrets_is_unchanged() -> None:
    assert Redactor([PASSWORD]).text('{"status": "ok"}') == '{"status": "ok"}'


@pytest.mark.parametrize(
    "name",
    ["Authorization", "authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key"],
)
def test_secret_headers_are_replaced_whole(name: str) -> None:
    assert Redactor().headers({name: "anything at all"}) == {name: REDACTED}


def test_other_headers_keep_their_value_but_lose_secrets() -> None:
    headers = {"Content-Type": "application/json", "X-Note": f"user alice pw {PASSWORD}"}
    assert Redactor([PASSWORD]).headers(headers) == {
        "Content-Type": "application/json",
        "X-Note": "user alice pw ***",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("token was Bearer eyJhbGciOi.J9-x_y~z+/= end", "token was Bearer *** end"),
        ("bearer xyz", "bearer ***"),
        ("BEARER xyz", "BEARER ***"),
        ("Basic YWxpY2U6czNjcmV0LXB3", "Basic ***"),
        ('{"auth": "Bearer  abc123"}', '{"auth": "Bearer ***"}'),
    ],
)
def test_bearer_and_basic_credentials_are_scrubbed_without_being_known(
    text: str, expected: str
) -> None:
    assert Redactor().text(text) == expected


# --- describe_body ---------------------------------------------------------------------------


@pytest.mark.parametrize("body", [None, b""])
def test_no_body_is_described_as_nothing(body: bytes | None) -> None:
    assert describe_body(body, "application/json") == ""


@pytest.mark.parametrize(
    "content_type",
    ["application/dicom+xml; charset=utf-8", "text/plain", "text/html"],
)
def test_a_text_body_is_shown_as_text(content_type: str) -> None:
    assert describe_body(b"<e>no such study:  1.2.3</e>", content_type) == (
        "<e>no such study:  1.2.3</e>"
    )


# Orthanc writes its JSON one value per line: 15 lines for one attribute of one result.
ORTHANC_STYLE = json.dumps(
    [{"0020000D": {"vr": "UI", "Value": [f"2.25.{n}"]}} for n in range(3)], indent=3
).encode()


@pytest.mark.parametrize("content_type", ["application/json", "application/dicom+json", None])
def test_a_json_body_is_kept_compact_one_result_per_line(content_type: str | None) -> None:
    assert describe_body(ORTHANC_STYLE, content_type) == (
        "[\n"
        '{"0020000D":{"vr":"UI","Value":["2.25.0"]}},\n'
        '{"0020000D":{"vr":"UI","Value":["2.25.1"]}},\n'
        '{"0020000D":{"vr":"UI","Value":["2.25.2"]}}\n'
        "]"
    )


def test_a_compact_json_body_holds_more_of_the_answer_in_the_same_excerpt() -> None:
    results = [{"00100020": {"vr": "LO", "Value": [f"patient {n}"]}} for n in range(40)]
    body = json.dumps(results, indent=3).encode()
    excerpt = describe_body(body, "application/dicom+json")
    assert len(excerpt) <= EXCERPT_CHARS + len(f" … ({len(body)} bytes)")
    assert excerpt.endswith(f" … ({len(body)} bytes)")
    as_sent = body[:EXCERPT_CHARS].decode()
    assert excerpt.count("patient ") > 2 * as_sent.count("patient ")


def test_a_json_body_too_large_to_parse_for_evidence_is_cut_as_it_came() -> None:
    body = json.dumps([{"x": "y" * 100}] * (COMPACT_BYTES // 100), indent=3).encode()
    assert describe_body(body, "application/json") == (
        body[:EXCERPT_CHARS].decode() + f" … ({len(body)} bytes)"
    )


def test_a_body_that_only_looks_like_json_is_shown_as_it_came() -> None:
    assert describe_body(b"[not json", "application/json") == "[not json"


def test_a_rendered_exchange_shows_the_first_lines_of_each_body() -> None:
    body = "\n".join(f"line {n}" for n in range(20))
    exchange = Exchange("POST", "http://h/studies", {}, body, 200, "OK", {}, body)
    rendered = exchange.render()
    assert rendered.count("line 7") == 2 and "line 8" not in rendered
    assert rendered.count("… (12 more lines in results.json)") == 2


def test_a_long_text_body_is_cut_and_its_size_given() -> None:
    body = b"x" * (EXCERPT_CHARS + 10)
    assert describe_body(body, "text/plain") == "x" * EXCERPT_CHARS + f" … ({len(body)} bytes)"


def test_a_binary_body_is_described_by_its_size_and_type() -> None:
    body = b"\x00DICM" * 100
    assert describe_body(body, "application/dicom") == "[500 bytes of application/dicom]"


def test_a_text_body_without_content_type_is_shown_as_text() -> None:
    assert describe_body(b"Unknown resource\r\n", None) == "Unknown resource\r\n"
    assert describe_body("Étude inconnue".encode(), None) == "Étude inconnue"


def test_a_binary_body_without_content_type_is_described_by_its_size() -> None:
    assert describe_body(b"\x00\x01\x02\xff", None) == "[4 bytes of unknown type]"


def test_a_long_text_body_without_content_type_is_text_wherever_the_cut_falls() -> None:
    body = ("a" * (EXCERPT_CHARS - 1) + "é and more").encode()
    assert describe_body(body, None).startswith("a" * (EXCERPT_CHARS - 1))


# --- build_query -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "wire"),
    [
        ([("PatientName", "Doe^John")], "PatientName=Doe%5EJohn"),
        ([("PatientName", "Doe John")], "PatientName=Doe%20John"),
        ([("PatientName", "Müller")], "PatientName=M%C3%BCller"),
        ([("PatientName", "山田")], "PatientName=%E5%B1%B1%E7%94%B0"),
        ([("PatientName", "Do*?")], "PatientName=Do*?"),
        ([("ModalitiesInStudy", "CT,MR")], "ModalitiesInStudy=CT,MR"),
        ([("StudyDate", "20200101-20201231")], "StudyDate=20200101-20201231"),
        ([("StudyInstanceUID", "1.2.840.10008.1")], "StudyInstanceUID=1.2.840.10008.1"),
        (
            [("00081115.0020000E", "1.2.3")],
            "00081115.0020000E=1.2.3",
        ),
        ([("PatientID", "a&b=c+d/e#f")], "PatientID=a%26b%3Dc%2Bd%2Fe%23f"),
        (
            [("includefield", "PatientName"), ("includefield", "StudyDate"), ("limit", "5")],
            "includefield=PatientName&includefield=StudyDate&limit=5",
        ),
        ([], ""),
    ],
    ids=[
        "caret",
        "space",
        "latin",
        "cjk",
        "wildcards",
        "list",
        "range",
        "uid",
        "dotted-key",
        "reserved",
        "order-and-repeats",
        "empty",
    ],
)
def test_a_query_goes_on_the_wire_exactly_so(params: list[tuple[str, str]], wire: str) -> None:
    assert build_query(params) == wire


def test_a_key_keeps_its_dots_but_not_other_reserved_characters() -> None:
    assert build_query([("a.b c&d", "x")]) == "a.b%20c%26d=x"


# --- retry_after_seconds ---------------------------------------------------------------------

NOW = datetime(2015, 10, 21, 7, 27, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("value", "seconds"), [("1", 1.0), ("0", 0.0), (" 120 ", 120.0)])
def test_retry_after_in_delta_seconds(value: str, seconds: float) -> None:
    assert retry_after_seconds(value, NOW) == seconds


def test_retry_after_as_an_http_date_counts_from_now() -> None:
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", NOW) == 60.0


def test_retry_after_as_a_past_http_date_means_now() -> None:
    assert retry_after_seconds("Wed, 21 Oct 2015 07:00:00 GMT", NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "1.5", "-1", "Someday, 99 Foo 20xx"])
def test_retry_after_that_means_nothing_is_none(value: str | None) -> None:
    assert retry_after_seconds(value, NOW) is None


def test_retry_after_with_a_superscript_digit_is_none() -> None:
    assert retry_after_seconds("²", NOW) is None


# --- Client.url ------------------------------------------------------------------------------


@pytest.fixture
def offline_client() -> Iterator[Client]:
    client = Client("https://pacs.example/dicom-web/")
    yield client
    client.session.close()


def test_the_client_base_url_loses_its_trailing_slash(offline_client: Client) -> None:
    assert offline_client.base_url == "https://pacs.example/dicom-web"


@pytest.mark.parametrize("path", ["studies", "/studies"])
def test_a_path_is_put_under_the_base_url(offline_client: Client, path: str) -> None:
    assert offline_client.url(path) == "https://pacs.example/dicom-web/studies"


def test_an_absolute_url_passes_through(offline_client: Client) -> None:
    assert offline_client.url("http://orthanc.example:8042/system") == (
        "http://orthanc.example:8042/system"
    )


def test_a_query_is_appended_in_wire_form(offline_client: Client) -> None:
    url = offline_client.url("studies", [("PatientName", "Doe^J*"), ("limit", "1")])
    assert url == "https://pacs.example/dicom-web/studies?PatientName=Doe%5EJ*&limit=1"


def test_a_503_with_retry_after_is_retried_once_after_that_wait(
    server: ScriptedServer, clients: Clients
) -> None:
    server.script(
        Answer(503, {"Retry-After": "1"}, b"busy"),
        Answer(200, {"Content-Type": "application/json"}, b"[]"),
    )
    client = clients(retries=2)
    response = client.get("studies")
    assert response.status_code == 200
    assert clients.sleeps == [1.0]
    assert [e.status for e in client.exchanges] == [503, 200]
    assert len(server.received) == 2


def test_a_429_that_never_ends_is_tried_retries_plus_one_times_then_throttles(
    server: ScriptedServer, clients: Clients
) -> None:
    """Throttling is the server's state, not an answer to the rule: the check is ERROR."""
    server.script(Answer(429, {"Retry-After": "0"}, b"slow down"))
    client = clients(retries=3)
    with pytest.raises(Throttled, match="429"):
        client.get("studies")
    assert len(server.received) == 4
    assert len(client.exchanges) == 4
    assert clients.sleeps == [0.0, 0.0, 0.0]


def test_without_retry_after_the_client_backs_off_exponentially(
    server: ScriptedServer, clients: Clients
) -> None:
    server.script(Answer(503))
    with pytest.raises(Throttled):
        clients(retries=3).get("studies")
    assert clients.sleeps == [1.0, 2.0, 4.0]


def test_no_retries_means_a_single_attempt(server: ScriptedServer, clients: Clients) -> None:
    server.script(Answer(503, {"Retry-After": "1"}))
    with pytest.raises(Throttled):
        clients(retries=0).get("studies")
    assert len(server.received) == 1
    assert clients.sleeps == []


@pytest.mark.parametrize(
    "retry_after",
    ["120", format_datetime(datetime.fromtimestamp(time.time() + 3600, UTC), usegmt=True)],
    ids=["seconds", "http-date"],
)
def test_a_retry_after_past_max_retry_wait_is_not_waited_for(
    server: ScriptedServer, clients: Clients, retry_after: str
) -> None:
    """Waiting less than asked would only be refused again: say so at once."""
    server.script(Answer(503, {"Retry-After": retry_after}), Answer(200))
    with pytest.raises(Throttled, match="max-retry-wait"):
        clients(retries=1, max_retry_wait=5.0).get("studies")
    assert clients.sleeps == []


def test_a_retry_after_within_max_retry_wait_is_honoured_in_full(
    server: ScriptedServer, clients: Clients
) -> None:
    server.script(Answer(429, {"Retry-After": "120"}), Answer(200))
    assert clients(retries=1, max_retry_wait=180.0).get("studies").status_code == 200
    assert clients.sleeps == [120.0]


def test_a_retry_after_past_the_checks_deadline_is_not_waited_for(
    server: ScriptedServer, clients: Clients
) -> None:
    server.script(Answer(429, {"Retry-After": "60"}), Answer(200))
    client = clients(retries=1, max_retry_wait=120.0)
    client.check_deadline = (time.monotonic() + 10, "the check's deadline of 10 s")
    with pytest.raises(Throttled, match="check's deadline"):
        client.get("studies")
    assert clients.sleeps == []


def test_a_500_is_not_retried(server: ScriptedServer, clients: Clients) -> None:
    server.script(Answer(500, {}, b"boom"), Answer(200))
    client = clients(retries=2)
    assert client.get("studies").status_code == 500
    assert len(server.received) == 1
    assert clients.sleeps == []
    assert len(client.exchanges) == 1


def test_every_request_is_bounded_by_the_timeout(server: ScriptedServer, clients: Clients) -> None:
    server.script(Answer(hang=True))
    client = clients(timeout=0.3, retries=2)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        client.get("studies")
    assert time.monotonic() - started < 3.0
    assert len(client.exchanges) == 1  # a timeout is not retried
    exchange = client.exchanges[0]
    assert exchange.status is None
    assert exchange.error is not None and "request deadline of 0.3 s" in exchange.error
    assert "< no complete answer: " in exchange.render()


@pytest.mark.parametrize("stream", [False, True], ids=["read at once", "streamed"])
def test_a_dripped_answer_is_bounded_as_a_whole_not_per_read(
    server: ScriptedServer, clients: Clients, stream: bool
) -> None:
    """One byte every 0.1 s never trips a per-read timeout; 200 bytes would take 20 s."""
    body, content_type = encode_related([b"x" * 100, b"y" * 100])
    server.script(Answer(200, {"Content-Type": content_type}, body, drip=0.1))
    client = clients(timeout=1.0)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        response = client.get("studies/1", stream=stream)
        list(client.iter_parts(response))
    assert time.monotonic() - started < 3.0
    assert "request deadline of 1 s" in str(client.exchanges[0].error)


def test_nothing_is_sent_once_the_checks_deadline_has_passed(
    server: ScriptedServer, clients: Clients
) -> None:
    client = clients()
    client.check_deadline = (time.monotonic() - 1, "the check's deadline of 5 s")
    with pytest.raises(DeadlineExceeded, match="check's deadline"):
        client.get("studies")
    assert server.received == []
    assert "not sent" in str(client.exchanges[0].error)


def test_an_answer_cut_short_is_no_answer_and_says_where_it_broke(
    server: ScriptedServer, clients: Clients
) -> None:
    body, content_type = encode_related([b"DICM1", b"DICM-two"])
    server.script(Answer(200, {"Content-Type": content_type}, body, cut_after=len(body) - 20))
    client = clients()
    response = client.get("studies/1", stream=True)
    with pytest.raises(NoAnswer) as raised:
        list(client.iter_parts(response))
    assert raised.value.kind == "broken"
    rendered = client.exchanges[0].render()
    assert "< 200 OK" in rendered
    assert "< no complete answer: after 0 part(s): GET " in rendered


def test_a_refused_request_is_recorded_and_never_sent(
    server: ScriptedServer, clients: Clients
) -> None:
    client = clients()
    client.guard = Guard(server.url, Registry())
    with pytest.raises(UnsafeRequestError, match="not created by this run"):
        client.delete("studies/2.25.1")
    assert server.received == []
    assert "not sent: refused DELETE" in str(client.exchanges[0].error)


def test_a_request_is_recorded_as_sent(server: ScriptedServer, clients: Clients) -> None:
    server.script(Answer(200, {"Content-Type": "application/json"}, b'{"ok": true}'))
    client = clients()
    client.post(
        "studies",
        query=[("PatientName", "Doe^J")],
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        body=b'{"q": 1}',
    )
    assert server.received[0].path == "/dicom-web/studies?PatientName=Doe%5EJ"
    assert server.received[0].body == b'{"q": 1}'
    exchange = client.exchanges[0]
    assert (exchange.method, exchange.url) == ("POST", server.url + "/studies?PatientName=Doe%5EJ")
    assert exchange.request_headers["Accept"] == "application/json"
    assert exchange.request_body == '{"q":1}'
    assert (exchange.status, exchange.reason) == (200, "OK")
    assert exchange.response_body == '{"ok":true}'


def test_basic_auth_is_sent_but_never_shown(server: ScriptedServer, clients: Clients) -> None:
    settings = Settings(base_url=server.url, auth="basic", username="alice", password=PASSWORD)
    credentials = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    server.script(
        Answer(
            401,
            {
                "Content-Type": "application/json",
                "X-Echo-Authorization": f"Basic {credentials}",
                "X-Echo-Password": PASSWORD,
            },
            f'{{"error": "wrong password {PASSWORD} for alice"}}'.encode(),
        )
    )
    client = clients(auth=build_auth(settings), redactor=Redactor(settings.secrets), retries=0)
    client.get("studies", query=[("note", PASSWORD)])
    assert server.received[0].headers["Authorization"] == f"Basic {credentials}"
    exchange = client.exchanges[0]
    assert exchange.request_headers["Authorization"] == REDACTED
    rendered = exchange.render()
    assert "> Authorization: ***" in rendered
    assert PASSWORD not in rendered
    assert credentials not in rendered
    assert "wrong password *** for alice" in rendered


def test_a_streamed_error_answer_still_records_its_body(
    server: ScriptedServer, clients: Clients
) -> None:
    server.script(Answer(404, {"Content-Type": "application/json"}, b'{"message": "no study"}'))
    client = clients()
    response = client.get("studies/1.2.3", stream=True)
    assert response.status_code == 404
    assert client.exchanges[0].response_body == '{"message":"no study"}'


def test_a_streamed_success_is_left_for_the_caller_to_read(
    server: ScriptedServer, clients: Clients
) -> None:
    server.script(Answer(200, {"Content-Type": "application/dicom"}, b"\x00" * 64))
    client = clients()
    response = client.get("studies/1.2.3", stream=True)
    assert client.exchanges[0].response_body == "[streamed]"
    assert response.content == b"\x00" * 64


def test_iter_parts_records_what_arrived(server: ScriptedServer, clients: Clients) -> None:
    body, content_type = encode_related([b"DICM1", b"DICM-two"])
    server.script(Answer(200, {"Content-Type": content_type}, body))
    client = clients()
    response = client.get("studies/1.2.3", stream=True)
    parts = list(client.iter_parts(response))
    assert [p.body for p in parts] == [b"DICM1", b"DICM-two"]
    assert client.exchanges[0].response_body == (
        "[2 part(s): application/dicom 5 B; application/dicom 8 B]"
    )


def test_a_header_given_as_none_is_not_sent(server: ScriptedServer, clients: Clients) -> None:
    """headers={"Accept": None} sends no Accept at all, not even requests' default */*."""
    client = clients()
    client.get("studies", headers={"Accept": None})
    client.get("studies")
    assert "Accept" not in server.received[0].headers
    assert server.received[1].headers["Accept"] == "*/*"
    assert "Accept" not in client.exchanges[0].request_headers


def test_the_environments_proxy_is_used_and_netrc_is_not(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The client reads the environment once (requests would at every request): HTTP_PROXY
    still carries its requests, NO_PROXY still exempts a host, and ~/.netrc (NETRC) never adds
    credentials no --dicomweb-auth asked for."""
    host, port = server.server_address[:2]
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine {host!s} login alice password {PASSWORD}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HTTP_PROXY", f"http://{host!s}:{port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    proxied = Client("http://dicomweb.invalid/dicom-web", retries=0)
    assert proxied.get("studies").status_code == 200  # the unresolvable host, via the proxy
    assert server.received[-1].path == "http://dicomweb.invalid/dicom-web/studies"
    monkeypatch.setenv("NO_PROXY", str(host))
    direct = Client(server.url, retries=0)
    assert direct.get("studies").status_code == 200
    assert server.received[-1].path == "/dicom-web/studies"  # not through the proxy
    assert all("Authorization" not in r.headers for r in server.received)
    for client in (proxied, direct):
        client.session.close()


# --- where a request without an answer broke -----------------------------------------------


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests go where their URL says: no proxy of the environment answers for a host."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def no_answer(url: str, verify: bool = True) -> NoAnswer:
    client = Client(url, retries=0, timeout=10, verify=verify)
    try:
        with pytest.raises(NoAnswer) as raised:
            client.get("studies")
    finally:
        client.session.close()
    return raised.value


@pytest.mark.parametrize("verify", [True, False], ids=["verified", "insecure"])
def test_https_to_a_plain_http_port_is_told_apart(
    server: ScriptedServer, no_proxy: None, verify: bool
) -> None:
    url = server.url.replace("http://", "https://")
    assert no_answer(url, verify).kind == "plain"


def test_a_host_name_that_does_not_resolve_is_told_apart(no_proxy: None) -> None:
    assert no_answer("http://no-such-host.invalid/dicom-web").kind == "dns"


def test_a_refused_connection_is_told_apart(no_proxy: None) -> None:
    assert no_answer(f"http://127.0.0.1:{closed_port()}/dicom-web").kind == "refused"


def test_an_answer_that_breaks_off_is_not_a_connection_failure() -> None:
    broken = requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead")
    assert no_answer_kind(broken) == "broken"


def test_a_brief_question_is_sent_once_and_bounded(
    server: ScriptedServer, clients: Clients
) -> None:
    server.script(Answer(503, {"Retry-After": "0"}, b"busy"))
    client = clients(retries=3, timeout=30.0)
    with client.brief(2.0):
        assert (client.timeout, client.retries) == (2.0, 0)
        with pytest.raises(Throttled):
            client.get("system")
    assert (client.timeout, client.retries) == (30.0, 3)
    assert len(server.received) == 1
