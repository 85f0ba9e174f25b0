"""Which checks start first (conformance/run/schedule.py): the long ones by rank, each followed
by a short one, the rest in their order."""

from __future__ import annotations

from typing import Any, cast

import pytest

from conformance.run.schedule import LONGEST, longest_first


class Item:
    def __init__(self, name: str) -> None:
        self.name = self.originalname = self.nodeid = name


def names(items: list[Any]) -> list[str]:
    return [i.name for i in items]


def test_the_longest_start_first_each_beside_a_short_one() -> None:
    short = [f"test_short_{n}" for n in range(5)]
    order = [*short[:2], LONGEST[2], *short[2:], LONGEST[0]]
    items = cast(list[pytest.Item], [Item(n) for n in order])
    longest_first(items)
    assert names(items) == [LONGEST[0], short[0], LONGEST[2], short[1], *short[2:]]


def test_without_long_checks_the_order_stays() -> None:
    items = cast(list[pytest.Item], [Item(f"test_{n}") for n in range(4)])
    longest_first(items)
    assert names(items) == [f"test_{n}" for n in range(4)]
