"""How a property check explores its examples (``explore``): hypothesis generates them, each is
asked once, a failure is shrunk within a bound, an outage stops the asking.

Under ``--dicomweb-hypothesis=ci`` the examples are fixed in advance (derandomized by a seed made
of the property's name), so a property that only reads can **ask first and shrink later**: the
examples hypothesis tries when every one passes are drawn without asking (hypothesis's own
engine, run on a test that records them), asked together on the client's pool
(``Client.each``; the first alone, so that a server that gives no answer meets one request as
before), and then hypothesis runs as before on those answers (or not at all where every one
holds: it would draw the same values again, each passing). Until the first failure
it draws exactly the examples drawn ahead, so it finds the same first failure; from there it
shrinks, asking each smaller example it tries one after another (those drawn ahead already
answered). The verdict and the smallest example are those of asking one at a time; only the
waiting is shorter (30 examples at 50 ms: 1.5 s one after another, 0.4 s four at a time). A
property that writes (the round trips store each example) is asked one example at a time.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from hypothesis import given, seed, settings
from hypothesis import strategies as st

from .errors import NoAnswer, Throttled

if TYPE_CHECKING:
    from .client import Client

T = TypeVar("T")

# Shrinking a failure asks the server again for every smaller example hypothesis tries, up to
# hundreds of times. Past this many seconds after the first failure, shrinking ends: the failure
# reported is the last (so the smallest) one a real answer showed by then.
SHRINK_SECONDS = 1.5

# What asking one example gave: None (it holds), the failure, or the outage that stopped it.
Answer = AssertionError | NoAnswer | Throttled | None


class _ShrinkingOver(BaseException):
    """Ends hypothesis's search from inside the property: hypothesis lets a BaseException
    through, where it would shrink on after an Exception, or try other examples after a
    rejected one (for as long as five minutes of them, each rejected unasked)."""


def explore(
    name: str,
    values: st.SearchStrategy[T],
    holds: Callable[[T], None],
    ask_first: Client | None = None,
    before: Callable[[list[T]], None] | None = None,
) -> None:
    """``holds(value)`` for the values hypothesis generates; it re-raises the failure of the
    smallest value it found.

    Under ``--dicomweb-hypothesis=ci`` (derandomized) the values come from a seed made of
    ``name``, so that every run, from any folder, asks the same questions and a verdict changes
    only when the server does (hypothesis's own derandomizing was seen to differ between
    working directories); ``ask_first``: ``holds`` only reads, and the values are asked together
    on this client's pool before hypothesis judges them (the module's doc); ``before``, given
    the values drawn ahead, writes what asking them needs (the round trips store them all in
    one request), and raises NoAnswer or Throttled as the first value's own write would have.
    Each value is asked
    once: hypothesis replays the smallest failure, and gets the same answer again. Once the
    server gives no answer at all (a timeout, throttling), every later value fails the same way
    without asking: hypothesis must not spend the check's deadline shrinking an outage."""
    answers: dict[str, Answer] = {}  # asked ahead, or in turn
    seen: set[str] = set()  # the values hypothesis has been given an answer for
    failures: list[AssertionError] = []  # in the order found: shrinking finds smaller ones
    first_failure: list[float] = []
    outage: list[NoAnswer | Throttled] = []

    @given(value=values)
    def prop(value: T) -> None:
        key = repr(value)
        if key not in seen:
            # A value new to hypothesis: what asking it in turn would do now, asked ahead or not.
            if outage:
                raise outage[0]
            if first_failure and time.monotonic() - first_failure[0] > SHRINK_SECONDS:
                raise _ShrinkingOver
            if key not in answers:
                answers[key] = _ask(holds, value)
            seen.add(key)
            answer = answers[key]
            if isinstance(answer, NoAnswer | Throttled):
                outage.append(answer)
            elif answer is not None:
                failures.append(answer)
                first_failure[:] = first_failure or [time.monotonic()]
        answer = answers[key]
        if answer is not None:
            raise answer

    derandomized = settings.default is not None and settings.default.derandomize
    if derandomized:
        prop = seed(_seed_of(name))(prop)
        if ask_first is not None and ask_first.concurrency > 1:
            ahead, drawn = _asked_together(name, values, holds, ask_first, before)
            if len(ahead) == drawn and all(answer is None for answer in ahead.values()):
                # Every value drawn ahead holds: hypothesis would draw exactly these again,
                # each passing, and end there. Its second run is saved.
                return
            answers.update(ahead)
    try:
        prop()
    except _ShrinkingOver:
        raise failures[-1] from None


def _seed_of(name: str) -> int:
    return zlib.crc32(name.encode())


def _ask(holds: Callable[[T], None], value: T) -> Answer:
    """What asking ``value`` gives."""
    try:
        holds(value)
    except (AssertionError, NoAnswer, Throttled) as answer:
        return answer
    return None


def _drawn(name: str, values: st.SearchStrategy[T]) -> list[T]:
    """The values hypothesis tries, in order, when every one holds: the same seed and strategy
    as ``explore``'s, on a test that only records them."""
    drawn: list[T] = []

    @seed(_seed_of(name))
    @given(value=values)
    def record(value: T) -> None:
        drawn.append(value)

    record()
    return drawn


def _asked_together(
    name: str,
    values: st.SearchStrategy[T],
    holds: Callable[[T], None],
    client: Client,
    before: Callable[[list[T]], None] | None,
) -> tuple[dict[str, Answer], int]:
    """The answers to the values drawn ahead, and how many were drawn: the first alone (a
    server that does not answer it meets no more requests than asking in turn would send),
    then the rest on the client's pool. Once one meets an outage, those not yet started are
    left unasked. A value whose asking raised anything else (a bug of ours, a refused request,
    a skip) is left out too: ``explore`` asks it again in turn, where the error surfaces as it
    would have."""
    unique = {repr(v): v for v in _drawn(name, values)}
    keys = list(unique)
    if not keys:
        return {}, 0
    if before is not None:
        try:
            before(list(unique.values()))
        except (NoAnswer, Throttled) as outage:
            return {keys[0]: outage}, len(keys)
    stop: list[bool] = []  # set once an asking meets an outage
    asked = [_answer_or_error(holds, unique[keys[0]], stop)]
    if not stop:
        rest = [partial(_answer_or_error, holds, unique[key], stop) for key in keys[1:]]
        asked += client.each(rest)
    answered = {key: a for key, a in zip(keys, asked, strict=False) if not isinstance(a, _Left)}
    return answered, len(keys)


class _Left:
    """A value asked ahead whose asking raised something other than an answer, or that was
    not asked (an outage came first)."""


def _answer_or_error(holds: Callable[[T], None], value: T, stop: list[bool]) -> Answer | _Left:
    if stop:
        return _Left()
    try:
        answer = _ask(holds, value)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # pytest's outcomes too (a skip): left to explore's own asking
        return _Left()
    if isinstance(answer, NoAnswer | Throttled):
        stop.append(True)
    return answer
