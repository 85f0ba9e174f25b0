"""A connection kept alive from an earlier exchange may be closed by the server while idle, at
any time (RFC 9112 9.5), and a request sent on it just then gets no answer: the close and the
request cross on the way (Orthanc closes one idle for a second; 50 ms away, a read in every few
hundred met one). A read so met is asked again on another connection (RFC 9112 9.3.1); a write is
not, nor a read that gets no answer on a connection of its own. Against a real socket server
whose every connection answers ``answered`` requests, then closes on reading the next."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from conformance.client import Client
from conformance.errors import NoAnswer

OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


class ClosingServer:
    """Answers ``answered`` requests per connection, keeping it alive, and closes it on reading
    the next; records each request as (connection number, request line)."""

    def __init__(self, answered: int) -> None:
        self.answered = answered
        self.received: list[tuple[int, str]] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/dicom-web"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        number = 0
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            number += 1
            threading.Thread(target=self._serve, args=(connection, number), daemon=True).start()

    def _serve(self, connection: socket.socket, number: int) -> None:
        with connection, connection.makefile("rb") as reader:
            for served in range(self.answered + 1):
                line = reader.readline().decode().strip()
                if not line:
                    return
                length = 0
                while (header := reader.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                reader.read(length)
                self.received.append((number, line))
                if served == self.answered:
                    return  # read, never answered: closed
                connection.sendall(OK)

    def close(self) -> None:
        self._listener.close()


@pytest.fixture
def closes_after_one() -> Iterator[ClosingServer]:
    server = ClosingServer(answered=1)
    yield server
    server.close()


def test_a_read_on_a_connection_closed_while_idle_is_asked_again_on_another(
    closes_after_one: ClosingServer,
) -> None:
    client = Client(closes_after_one.url)
    assert client.get("first").text == "ok"
    assert client.get("second").text == "ok"  # met the close on connection 1, answered on 2
    assert [n for n, _ in closes_after_one.received] == [1, 1, 2]
    crossed, answered = client.exchanges[1:]
    assert crossed.error is not None and "kept open" in crossed.error
    assert answered.status == 200 and answered.error is None


def test_a_write_on_a_connection_closed_while_idle_is_not_sent_again(
    closes_after_one: ClosingServer,
) -> None:
    client = Client(closes_after_one.url)
    client.get("first")
    with pytest.raises(NoAnswer, match="no complete answer"):
        client.post("studies", body=b"x", headers={"Content-Type": "application/dicom"})
    assert [line.split()[0] for _, line in closes_after_one.received] == ["GET", "POST"]


def test_a_read_without_an_answer_on_a_connection_of_its_own_is_no_answer() -> None:
    server = ClosingServer(answered=0)  # closes every connection on its first request
    try:
        with pytest.raises(NoAnswer, match="no complete answer") as raised:
            Client(server.url).get("first")
        assert "kept open" not in str(raised.value)
        assert len(server.received) == 1
    finally:
        server.close()
