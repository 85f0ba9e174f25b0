"""The deadlines of a process's requests (conformance/deadline.py): one thread watches them all,
each passes at its own time (an earlier one added later too), and a cancelled one never does.
The whole-answer bound itself is shown against servers in tests/test_client.py."""

from __future__ import annotations

import threading
import time

from conformance.deadline import Deadline


def passed_within(deadlines: list[Deadline], seconds: float) -> list[Deadline]:
    ends = time.monotonic() + seconds
    while time.monotonic() < ends and not all(d.expired or d.cancelled for d in deadlines):
        time.sleep(0.005)
    return [d for d in deadlines if d.expired]


def test_many_requests_are_watched_by_one_thread() -> None:
    Deadline(60, "first").start().cancel()  # the watcher, made once per process
    before = threading.active_count()
    started = [Deadline(60, f"request {n}").start() for n in range(200)]
    assert threading.active_count() == before
    for deadline in started:
        deadline.cancel()


def test_each_deadline_passes_at_its_own_time_and_a_cancelled_one_never() -> None:
    late = Deadline(0.6, "late").start()
    cancelled = Deadline(0.2, "cancelled").start()
    early = Deadline(0.1, "early").start()  # earlier than any before it: the watcher wakes
    cancelled.cancel()
    started = time.monotonic()
    assert passed_within([early], 0.45) == [early] and time.monotonic() - started < 0.45
    assert not late.expired
    assert passed_within([late, cancelled], 2) == [late] and not cancelled.expired


def test_a_deadline_past_what_a_wait_can_take_leaves_the_others_watched() -> None:
    """The settings take any finite timeout (1e20 s among them), longer than a thread can wait
    for (threading.TIMEOUT_MAX): the watcher waits its longest and goes on, and a deadline
    added after still passes (a dead watcher would leave every later request unbounded)."""
    far = Deadline(1e20, "far").start()
    time.sleep(0.05)  # the watcher now waits for it
    near = Deadline(0.05, "near").start()
    assert passed_within([near], 2) == [near]
    far.cancel()
