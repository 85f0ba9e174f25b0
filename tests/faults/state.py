"""Faults of the archive's state over time (see tests/faults/__init__.py): what a server
computes or caches about a study when it first answers, and does not refresh when a later store
adds instances or series to the same study.

Each answers the first read of a study as Orthanc does, and every later read as that first
answer was, so a check that reads once after one store cannot tell; only the stateful
properties, which store again into a study they have already read and read every level again,
can.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from . import Answer, Exchange, Forward, fault, is_search, json_answer, search_results

STATEFUL = "test_properties_stateful.py::"
SEARCHES = f"{STATEFUL}test_stores_retrieves_and_searches_agree_with_the_model"
METADATA = f"{STATEFUL}test_metadata_agrees_with_the_model_after_every_store"
# What a study search (Table 10.6.3-3) or series search (Table 10.6.3-4) says of the entity as
# a whole: counted or gathered from its instances, so they change with each store.
STUDY_AGGREGATES = ("00201206", "00201208", "00080061")
SERIES_AGGREGATES = ("00201209",)
STUDY_METADATA = re.compile(r"/studies/[^/]+(/series/[^/]+)?/metadata$")

_lock = threading.Lock()
_first_served: dict[str, dict[str, Any]] = {}  # study or series UID -> its aggregates, as first
_first_metadata: dict[tuple[str, str], Answer] = {}  # (path, Accept) -> its first 200 answer


def _frozen(row: dict[str, Any], uid_tag: str, aggregates: tuple[str, ...]) -> dict[str, Any]:
    """The result ``row`` with the aggregates first served for its entity (remembering them,
    the first time)."""
    uid = str(row.get(uid_tag, {}).get("Value", [""])[0])
    with _lock:
        first = _first_served.setdefault(uid, {t: row[t] for t in aggregates if t in row})
    return {**row, **first}


@fault("study-counts-computed-once", catches=[SEARCHES])
def study_counts_computed_once(request: Exchange, forward: Forward) -> Answer:
    """Number of Study Related Series and Instances, Modalities in Study and Number of Series
    Related Instances computed when a study or series is first searched, and served as they
    were after later stores add to it: study and series aggregates kept in columns of their
    own and not marked for recalculation on receipt of a further object
    (dcm4che/dcm4chee-arc-light#4249, "Size of Study/Series is not marked for recalculation on
    receive of another object of that Study/Series"; #4320, the study's ModalitiesInStudy not
    reflecting a series' changed Modality), or answered as constants before they were computed
    from what is stored (medplum/medplum#10150)."""
    answer = forward(request)
    results = search_results(answer)
    if not is_search(request) or not results:
        return answer
    if request.path.endswith("/studies"):
        rows = [_frozen(row, "0020000D", STUDY_AGGREGATES) for row in results]
    elif request.path.endswith("/series"):
        rows = [_frozen(row, "0020000E", SERIES_AGGREGATES) for row in results]
    else:
        return answer
    return json_answer(answer, rows)


@fault("metadata-cached-after-first-read", catches=[METADATA])
def metadata_cached_after_first_read(request: Exchange, forward: Forward) -> Answer:
    """The metadata of a study or series answered from what its first read gave, never
    refreshed when a later store adds an instance to it: a series' metadata document written
    once and not rewritten on receipt of a further instance (dcm4che/dcm4chee-arc-light#507,
    "Update Meta-data ZIP on storage for Series on receive of additional Instance of the
    Series"; #4640, which reads metadata only while the series' is not marked stale)."""
    if request.method != "GET" or not STUDY_METADATA.search(request.path):
        return forward(request)
    # Per media type asked for (the cache honours Vary: Accept): stale, never of another kind.
    key = (request.path, request.headers.get("accept", ""))
    with _lock:
        cached = _first_metadata.get(key)
    if cached is not None:
        return cached
    answer = forward(request)
    if answer.status == 200:
        with _lock:
            _first_metadata.setdefault(key, answer)
    return answer
