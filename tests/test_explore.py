"""How a property explores its examples (conformance/explore.py): asked first together, then
judged and shrunk by hypothesis, it reports the failure asking one at a time reports, and a
server that gives no answer meets no more requests than before. No server: ``holds`` here is a
function of the value, as a server's answer is of the query."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator

import pytest
from hypothesis import settings
from hypothesis import strategies as st

from conformance.client import Client
from conformance.errors import NoAnswer
from conformance.explore import explore

VALUES = st.integers(0, 1000)


@pytest.fixture
def ci_profile() -> Iterator[None]:
    """The suite's --dicomweb-hypothesis=ci (conformance/run/session.py), then what was loaded."""
    from conformance.run import session

    previous = settings.default
    session._load_hypothesis_profile("ci")
    yield
    settings.register_profile("explore-test-restore", previous)
    settings.load_profile("explore-test-restore")


class Server:
    """Answers each value by ``rule`` (it raises for a failing one), and records what was asked
    and how many at once."""

    def __init__(self, rule: Callable[[int], None]) -> None:
        self.rule = rule
        self.asked: list[int] = []
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def holds(self, value: int) -> None:
        with self.lock:
            self.asked.append(value)
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            threading.Event().wait(0.002)  # an answer takes time: let the pool overlap them
            self.rule(value)
        finally:
            with self.lock:
                self.now -= 1


def over_100(value: int) -> None:
    assert value <= 100, f"{value} is over 100"


def failure(server: Server, client: Client | None, name: str = "over 100") -> str:
    with pytest.raises(AssertionError) as raised:
        explore(name, VALUES, server.holds, ask_first=client)
    return str(raised.value)


def _traced() -> bool:
    """Whether something follows every line this thread runs (sys.settrace, or on Python 3.12
    and later a sys.monitoring tool)."""
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is not None:
        return any(monitoring.get_tool(tool) is not None for tool in range(6))
    return sys.gettrace() is not None


def test_shrinking_does_not_trace_the_property(ci_profile: None) -> None:
    """While shrinking, hypothesis would follow every line the property runs for its explain
    phase (which tells what varies freely in the smallest failure, and asks variants of it):
    about a second of a run's CPU, and more requests. The suite's profile runs no explain."""
    traced: list[bool] = []

    def holds(value: list[int]) -> None:
        traced.append(_traced())
        assert sum(value) <= 100, "over 100 in all"

    with pytest.raises(AssertionError, match="over 100 in all"):
        explore("a list over 100", st.lists(VALUES), holds)
    assert traced.count(False) > 2 and not any(traced)


def test_asked_first_the_smallest_failure_is_the_one_asking_in_turn_finds(
    ci_profile: None,
) -> None:
    in_turn, together = Server(over_100), Server(over_100)
    found_in_turn = failure(in_turn, None)
    assert found_in_turn.startswith("101 is over 100")  # hypothesis shrank it all the way
    assert failure(together, Client("http://127.0.0.1:9", concurrency=4)) == found_in_turn
    # Every value asked in turn before shrinking began was asked ahead, once.
    first = in_turn.asked.index(next(v for v in in_turn.asked if v > 100))
    assert set(in_turn.asked[: first + 1]) <= set(together.asked)
    assert len(together.asked) == len(set(together.asked))


def test_a_property_that_holds_asks_the_same_values_either_way(ci_profile: None) -> None:
    in_turn, together = Server(lambda v: None), Server(lambda v: None)
    explore("holds", VALUES, in_turn.holds)
    explore("holds", VALUES, together.holds, ask_first=Client("http://127.0.0.1:9", concurrency=4))
    assert sorted(together.asked) == sorted(set(in_turn.asked))
    assert together.peak > 1


def test_at_concurrency_1_or_unseeded_nothing_is_asked_ahead(ci_profile: None) -> None:
    server = Server(over_100)
    failure(server, Client("http://127.0.0.1:9", concurrency=1))
    assert server.peak == 1
    settings.register_profile(
        "explore-test-deep", max_examples=30, derandomize=False, database=None
    )
    settings.load_profile("explore-test-deep")
    random = Server(lambda v: None)
    explore("deep", VALUES, random.holds, ask_first=Client("http://127.0.0.1:9", concurrency=4))
    assert random.peak == 1


def test_an_outage_meets_one_request_as_asking_in_turn_does(ci_profile: None) -> None:
    def no_answer(value: int) -> None:
        raise NoAnswer("the server did not answer")

    server = Server(no_answer)
    with pytest.raises(NoAnswer):
        explore("outage", VALUES, server.holds, Client("http://127.0.0.1:9", concurrency=4))
    assert len(server.asked) == 1


def test_an_error_of_ours_surfaces_as_in_turn(ci_profile: None) -> None:
    def broken(value: int) -> None:
        if value > 500:
            raise KeyError(value)

    for client in (None, Client("http://127.0.0.1:9", concurrency=4)):
        with pytest.raises(KeyError):
            explore("broken", VALUES, Server(broken).holds, ask_first=client)


def test_before_writes_what_the_values_drawn_ahead_need_and_an_outage_there_stops_all(
    ci_profile: None,
) -> None:
    """The round trips store every value drawn ahead in one request (``before``), then read each
    back together; a store that meets no answer is the first value's outage, as in turn."""
    stored: list[list[int]] = []
    server = Server(lambda v: None)
    client = Client("http://127.0.0.1:9", concurrency=4)
    explore("written ahead", VALUES, server.holds, ask_first=client, before=stored.append)
    assert len(stored) == 1 and sorted(stored[0]) == sorted(server.asked)

    def no_answer(values: list[int]) -> None:
        raise NoAnswer("the store did not answer")

    unasked = Server(lambda v: None)
    with pytest.raises(NoAnswer):
        explore("written ahead", VALUES, unasked.holds, ask_first=client, before=no_answer)
    assert unasked.asked == []
