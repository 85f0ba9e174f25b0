"""The order checks start in: the longest first, so that a run's end is not one long property
running alone while the other workers wait.

A check's time against a server far away is its chain of answers waited for in sequence times
the latency (benchmarks/suite_time.py prints each check's chain). The property checks' chains
are the run's longest by far (a stateful sequence stores and reads back one step at a time):
under pytest-xdist each of them should start at once, each on a worker of its own, and the short
checks fill the workers around them. pytest-xdist's ``load`` scheduling hands each worker a chunk
of consecutive checks at the start, then more as it runs out; so the long checks go first, each
followed by one short one, and a chunk is made two checks long (``--maxschedchunk 1``: xdist
sends at least two) unless the command line says otherwise.
"""

from __future__ import annotations

import pytest

# The checks with the longest chains, longest first: measured with
# `benchmarks/suite_time.py --chains 20` against Orthanc (the Azure stand-in's deletes property
# measured on its own). A check not named keeps its place after these.
LONGEST = (
    "test_stores_retrieves_and_searches_agree_with_the_model",
    "test_deletes_stores_and_searches_agree_with_the_model",
    "test_metadata_agrees_with_the_model_after_every_store",
    "test_sequence_keys_match_within_one_item",
    "test_datetime_ranges_take_the_offset_from_utc_into_account",
    "test_datetime_ranges_at_positive_offsets_match_as_moments",
    "test_metadata_of_a_generated_instance_is_what_was_stored",
    "test_a_generated_instance_is_retrieved_as_it_was_stored",
    "test_a_retrieve_gives_the_transfer_syntax_asked_for_with_the_same_pixels",
    "test_metadata_keeps_numbers_of_every_size",
    "test_malformed_requests_get_client_errors_and_harm_nothing",
    "test_datetime_ranges_find_what_the_model_finds",
    "test_invalid_query_values_get_400_or_are_ignored",
    "test_pages_are_slices_of_the_whole_answer",
)
_RANK = {name: rank for rank, name in enumerate(LONGEST)}


def longest_first(items: list[pytest.Item]) -> None:
    """Reorder ``items`` in place: the long checks by rank, each followed by the next of the
    others (in their own order), then the rest of the others."""
    long = sorted(
        (i for i in items if _name(i) in _RANK), key=lambda i: (_RANK[_name(i)], i.nodeid)
    )
    if not long:
        return
    others = [i for i in items if _name(i) not in _RANK]
    ordered: list[pytest.Item] = []
    for n, item in enumerate(long):
        ordered += [item, *others[n : n + 1]]
    ordered += others[len(long) :]
    items[:] = ordered


def _name(item: pytest.Item) -> str:
    return getattr(item, "originalname", None) or item.name


def small_chunks(config: pytest.Config) -> None:
    """Let pytest-xdist hand out checks two at a time (the controller's scheduler reads it)."""
    if config.getoption("maxschedchunk", None) is None and hasattr(config.option, "maxschedchunk"):
        config.option.maxschedchunk = 1
