"""The read budget (--dicomweb-read-budget): parsed once, split between the processes of a run,
and held to by the client: past it no request is sent and no answer read further (BudgetSpent,
which the judge turns into DISABLED), and what was read is counted whether or not there is a
budget."""

from __future__ import annotations

import pytest
from scriptedserver import Answer, Clients, ScriptedServer

from conformance.budget import DEFAULT_READ_ONLY, Budget, Meter, parse, size
from conformance.client import Client
from conformance.errors import BudgetSpent
from conformance.multipart import Part, encode_related
from conformance.settings import SettingsError, resolve

URL = "https://pacs.example/dicom-web"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2000,250MB", Budget(2000, 250 * 10**6)),
        ("10, 1.5 GB", Budget(10, 1_500_000_000)),
        ("1,4096", Budget(1, 4096)),
        ("3,2kb", Budget(3, 2000)),
        ("none", None),
    ],
)
def test_a_budget_is_requests_and_a_size(given: str, expected: Budget | None) -> None:
    assert parse(given) == expected


@pytest.mark.parametrize("given", ["2000", "MB,2000", "0,1MB", "5,0", "-1,2MB", "2,3PB"])
def test_a_malformed_budget_is_one_clear_settings_error(given: str) -> None:
    with pytest.raises(SettingsError, match="--dicomweb-read-budget takes REQUESTS,SIZE"):
        resolve(URL, {"read_budget": given})


def test_a_read_only_run_has_the_default_budget_and_a_writing_run_none() -> None:
    read_only = resolve(URL, {"read_only": True, "studies": "1.2.3"}, env={})
    assert read_only.budget == DEFAULT_READ_ONLY
    assert resolve(URL, {}, env={}).budget is None
    given = resolve(URL, {"read_budget": "10,1MB"}, env={})
    assert given.budget == Budget(10, 10**6)
    lifted = resolve(URL, {"read_only": True, "studies": "1.2.3", "read_budget": "none"}, env={})
    assert lifted.budget is None
    assert given.redacted()["read_budget"] == "10 requests and 1.0 MB"


def test_each_process_of_a_run_reads_its_share() -> None:
    assert Budget(5000, 500 * 10**6).share(3) == Budget(1666, 166_666_666)
    assert Budget(2, 10).share(8) == Budget(1, 1)  # never nothing at all
    assert Budget(7, 7).share(0) == Budget(7, 7)


def test_sizes_read_as_people_write_them() -> None:
    assert [size(n) for n in (512, 3_100_000, 2 * 10**9)] == ["512 B", "3.1 MB", "2.0 GB"]


def budgeted(client: Client, requests: int, nbytes: int) -> Client:
    client.meter = Meter(Budget(requests, nbytes), "--dicomweb-read-budget")
    return client


def test_past_the_requests_budget_nothing_is_sent(server: ScriptedServer, clients: Clients) -> None:
    server.script(Answer(200, {"Content-Type": "application/json"}, b"[]"))
    client = budgeted(clients(), 2, 10**6)
    client.get("studies")
    client.get("studies")
    with pytest.raises(BudgetSpent, match=r"was not sent.*2 requests and 1\.0 MB"):
        client.get("studies")
    assert len(server.received) == 2  # the third never reached the server
    assert client.exchanges[-1].error == "not sent: the read budget is spent"
    assert (client.meter.requests, client.meter.bytes) == (2, 4)


def test_an_answer_is_not_read_past_the_bytes_budget(
    server: ScriptedServer, clients: Clients
) -> None:
    big = b"\x00" * 3_000_000
    server.script(Answer(200, {"Content-Type": "application/octet-stream"}, big))
    client = budgeted(clients(), 10, 1_000_000)
    with pytest.raises(BudgetSpent, match="was not read past"):
        client.get("studies/1/bulk")  # not streamed: the whole body is read at once
    assert client.meter.bytes < 1_000_000 + (1 << 20)  # stopped within a chunk of the budget
    assert str(client.exchanges[-1].error).startswith("the read budget is spent")


def test_a_streamed_multipart_answer_stops_at_the_budget(
    server: ScriptedServer, clients: Clients
) -> None:
    body, content_type = encode_related([b"\x01" * 600_000 for _ in range(5)])
    server.script(Answer(200, {"Content-Type": content_type}, body))
    client = budgeted(clients(), 10, 1_000_000)
    response = client.get("studies/1", stream=True)
    got: list[Part] = []
    with pytest.raises(BudgetSpent):
        got.extend(client.iter_parts(response))
    assert len(got) <= 1
    assert "the read budget is spent" in str(client.exchanges[-1].error)


def test_without_a_budget_reading_is_counted_and_never_refused(
    server: ScriptedServer, clients: Clients
) -> None:
    server.script(Answer(200, {"Content-Type": "application/json"}, b"[1]"))
    client = clients()
    for _ in range(3):
        client.get("studies")
    assert (client.meter.requests, client.meter.bytes) == (3, 9)


def test_another_identity_reads_from_the_same_budget(
    server: ScriptedServer, clients: Clients
) -> None:
    server.script(Answer(200, {"Content-Type": "application/json"}, b"[]"))
    client = budgeted(clients(), 1, 10**6)
    other = client.as_other(None)
    other.get("studies")
    with pytest.raises(BudgetSpent):
        client.get("studies")
    other.session.close()
