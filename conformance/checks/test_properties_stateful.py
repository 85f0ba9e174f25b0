"""The stateful property: sequences of stores, deletes (where the server has DELETE), retrieves
and searches, held after each step to a model of the archive. The strategies and helpers are
test_properties.py's; the model of the whole study and the look at its every level (counts,
Modalities in Study, metadata, retrieve), stateful_study.py's.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from hypothesis import strategies as st

from conformance import expect, synthetic
from conformance.checks.stateful_study import (
    GONE,
    METADATA,
    SEARCHES,
    Diverged,
    Levels,
    Reads,
    StudyModel,
    ask,
    queue_every_level,
)
from conformance.client import Client
from conformance.dicomweb import (
    SERIES_UID,
    SOP_UID,
    STUDY_UID,
    first_value,
    instance_path,
    search,
    stow,
)
from conformance.explore import explore
from conformance.run.fixtures import EmptyStudy

# --- stateful: stores, retrieves and searches against a model of the archive -----------------

Action = tuple[str, int]  # ("store", series) / ("store again", k) / ("retrieve", k) / ...
ACTIONS = st.one_of(
    st.tuples(st.just("store"), st.integers(1, 2)),
    st.tuples(st.just("store again"), st.integers(0, 5)),
    st.tuples(st.just("retrieve"), st.integers(0, 5)),
    st.tuples(st.just("search series"), st.integers(1, 2)),
    st.tuples(st.just("list instances"), st.integers(1, 2)),
    st.tuples(st.just("search study"), st.just(0)),
    st.tuples(st.just("every level"), st.just(0)),
)
# The metadata check's: stores, and looks at the metadata (the searches are the other checks').
STORES = st.one_of(
    st.tuples(st.just("store"), st.integers(1, 2)),
    st.tuples(st.just("store again"), st.integers(0, 5)),
    st.tuples(st.just("every level"), st.just(0)),
)
DELETES = st.one_of(
    st.tuples(st.just("delete instance"), st.integers(0, 5)),
    st.tuples(st.just("delete series"), st.integers(1, 2)),
)
# The two series of an example differ in Modality, so that Modalities in Study changes when
# the first instance of one is stored in the study, or the last deleted.
MODALITIES = {1: "OT", 2: "XC"}
MODALITY_TAG = 0x00080060


class Archive:
    """One example's two series in the check's study, and the model of what they must hold:
    the instances stored so far. Storing one again changes nothing the model can see. (Fresh
    series rather than fresh studies: a run then has one study to clean up, not one per
    example.) ``model`` is the whole study's, shared by the examples: what an earlier one
    stored is still there, in the study's counts and metadata. ``levels``: what the check reads
    back (the levels whose requirements it names).

    The reads between two writes are asked together, just before the next write (``flush``):
    none changes what another could see, so each sees the study as it would one after another,
    and they are judged in the order they came, each failure saying what had been done before
    it. An example's chain of answers waited for in turn is then its writes and one round of
    reads after each, not one answer per read (at 50 ms away this check was a run's longest)."""

    def __init__(
        self, client: Client, study: EmptyStudy, example: int, model: StudyModel, levels: Levels
    ) -> None:
        self.client = client
        self.study = study
        self.example = example
        self.model = model
        self.levels = levels
        self.stored: list[Any] = []  # this example's instances there now, in the order stored
        self.deleted: list[Any] = []  # this example's instances deleted
        self.minted = 0  # instances made: a new one never takes a deleted one's UID
        self.done: list[str] = []  # the actions so far, for the failure message
        self.reads = Reads()  # queued since the last write

    def series_number(self, n: int) -> int:
        return self.example * 10 + n

    def series_uid(self, n: int) -> str:
        return f"{self.study.study_uid}.{self.series_number(n)}"

    def expected(self, n: int) -> set[str]:
        uid = self.series_uid(n)
        return {i.sop_uid for i in self.stored if str(i.dataset.SeriesInstanceUID) == uid}

    def diverged(self, what: str) -> AssertionError:
        return self.here()(what)

    def here(self) -> Diverged:
        """The divergence of a read queued now, raised when it is judged: after what has been
        done so far."""
        done, earlier = "; ".join(self.done), len(self.model.instances) - len(self.stored)

        def diverged(what: str) -> AssertionError:
            return AssertionError(
                f"after {done} (in a study holding {earlier} instance(s) of earlier examples): "
                f"{what}"
            )

        return diverged

    def flush(self) -> None:
        """Ask the reads queued since the last write (before the next, or at the end)."""
        reads, self.reads = self.reads, Reads()
        ask(self.client, reads, self.model)

    def do(self, action: Action) -> None:
        kind, n = action
        self.done.append(kind if kind in ("search study", "every level") else f"{kind} {n}")
        if kind == "store":
            self.minted += 1
            uid = f"{self.series_uid(n)}.{self.minted}"
            modality = [(MODALITY_TAG, "CS", MODALITIES[n])]
            instance = synthetic.generated_instance(
                self.study.patient_id,
                self.study.study_uid,
                uid,
                None,
                modality,
                self.series_number(n),
            )
            self.store(instance, n, first=True)
        elif kind in ("store again", "retrieve") and self.stored:
            instance = self.stored[n % len(self.stored)]
            if kind == "store again":
                self.store(instance, self.series_of(instance), first=False)
            else:
                self.reads.judged.append(
                    partial(expect.stored_and_retrievable, self.client, [instance])
                )
        elif kind == "search series":
            wanted = {self.series_uid(n)} if self.expected(n) else set()
            pair = ("SeriesInstanceUID", self.series_uid(n))
            self.listed("studies/{study}/series", SERIES_UID, wanted, pair)
        elif kind == "list instances":
            path = f"studies/{{study}}/series/{self.series_uid(n)}/instances"
            self.listed(path, SOP_UID, self.expected(n))
        elif kind == "search study" and not self.model.unsure:
            wanted = {self.study.study_uid} if self.model.instances else set()
            self.listed("studies", STUDY_UID, wanted, ("StudyInstanceUID", self.study.study_uid))
        elif kind == "every level":
            self.look()
        elif kind == "delete instance" and self.stored:
            instance = self.stored[n % len(self.stored)]
            self.delete(instance_path(instance), [instance])
        elif kind == "delete series" and self.expected(n):
            uid = self.series_uid(n)
            gone = [i for i in self.stored if str(i.dataset.SeriesInstanceUID) == uid]
            self.delete(f"studies/{self.study.study_uid}/series/{uid}", gone)

    def delete(self, path: str, gone: list[Any]) -> None:
        """Delete, then read back: its series no longer lists them, and a retrieve of each is
        answered 404 (Azure's documents) or 410 (PS3.18 Table 8.5-1: "If the origin server knows
        that the resource has been deleted, the 410 (Gone) status code shall be returned rather
        than 404")."""
        self.flush()
        response = self.client.delete(path)
        if response.status_code != 204:
            self.model.unsure = True
            raise self.diverged(f"DELETE {path} answered {response.status_code}, not 204")
        self.stored = [i for i in self.stored if i not in gone]
        self.deleted += gone
        self.model.remove(i.sop_uid for i in gone)
        for series in sorted({self.series_of(i) for i in gone}):
            path = f"studies/{{study}}/series/{self.series_uid(series)}/instances"
            self.listed(path, SOP_UID, self.expected(series))
        self.reads.judged += [partial(self.no_longer_retrieved, i, self.here()) for i in gone]

    def no_longer_retrieved(self, instance: Any, diverged: Diverged) -> None:
        answer = self.client.get(instance_path(instance))
        if answer.status_code not in GONE:
            raise diverged(
                f"GET {instance_path(instance)} of a deleted instance answers "
                f"{answer.status_code}, not 404 or 410"
            )

    def series_of(self, instance: Any) -> int:
        return 1 if str(instance.dataset.SeriesInstanceUID) == self.series_uid(1) else 2

    def store(self, instance: Any, n: int, first: bool) -> None:
        """Store, then read back: its series lists what the model holds."""
        self.flush()
        response = stow(self.client, [instance], self.study.study_uid)
        if first:
            if response.status_code != 200:
                self.model.unsure = True  # it may be stored all the same
                raise self.diverged(f"storing a new instance answered {response.status_code}")
            self.stored.append(instance)
            self.model.add(instance.sop_uid, instance.series_uid, MODALITIES[n])
        elif response.status_code >= 500:
            raise self.diverged(f"storing an instance again answered {response.status_code}")
        if self.levels.lists:
            path = f"studies/{{study}}/series/{self.series_uid(n)}/instances"
            self.listed(path, SOP_UID, self.expected(n))

    def look(self) -> None:
        """Every level of the study, held to the model (stateful_study.queue_every_level)."""
        own = [self.series_uid(1), self.series_uid(2)]
        study, model, levels = self.study.study_uid, self.model, self.levels
        queue_every_level(self.client, study, model, own, self.here(), levels, self.reads)

    def listed(self, path: str, tag: str, wanted: set[str], *pairs: tuple[str, str]) -> None:
        """Queue a search of ``path``: it must list exactly ``wanted``."""
        path = path.format(study=self.study.study_uid)
        self.reads.judged.append(partial(self.lists, path, tag, wanted, pairs, self.here()))

    def lists(
        self,
        path: str,
        tag: str,
        wanted: set[str],
        pairs: tuple[tuple[str, str], ...],
        diverged: Diverged,
    ) -> None:
        response = search(self.client, path, *pairs)
        if response.status_code in GONE and not wanted:
            return  # nothing stored there yet, or all of it deleted: a fair answer
        results = expect.results(response)
        found = [str(first_value(obj, tag)) for obj in results]
        if sorted(found) != sorted(wanted):  # a repeated result differs too
            raise diverged(
                f"{expect.request_line(response)} lists {len(found)} ({sorted(found)}), "
                f"the archive holds {len(wanted)} ({sorted(wanted)})"
            )


# What changes with each store and delete beside what a search finds: the study's counts and
# Modalities in Study (Table 10.6.3-3), the series' counts and Modality (Table 10.6.3-4), and
# which instances a series retrieve sends; and, read by a check of their own, which instances
# the study's and a series' metadata describe.
SEARCH_LEVELS = (
    "QIDO-RETURN-STUDY-COUNTS",
    "QIDO-RETURN-STUDY-ATTRIBUTES",
    "QIDO-RETURN-SERIES-COUNT",
    "QIDO-RETURN-SERIES-ATTRIBUTES",
    "WADO-SERIES-ONLY-ITS-INSTANCES",
)
METADATA_LEVELS = ("WADO-METADATA-STUDY", "WADO-METADATA-SERIES")


@pytest.mark.requirement("STOW-SEARCH-FINDS-STORED", *SEARCH_LEVELS)
def test_stores_retrieves_and_searches_agree_with_the_model(
    dicomweb: Client, empty_study: EmptyStudy
) -> None:
    """Sequences of stores (new instances, instances stored again), retrieves and searches at
    study, series and instance level, each example in two fresh series of one study that keeps
    every earlier example's: every answer agrees with a model of what the study must hold, and
    after each sequence (and wherever it asks) every level is read back: the study's and each
    series' counts and modalities, instance lists and retrieve. A divergence is shrunk to the
    shortest sequence."""
    run_sequences(dicomweb, empty_study, "stateful", ACTIONS, SEARCHES)


@pytest.mark.requirement(*METADATA_LEVELS)
def test_metadata_agrees_with_the_model_after_every_store(
    dicomweb: Client, empty_study: EmptyStudy
) -> None:
    """Sequences of stores into the study (new instances in new and existing series,
    instances stored again), its metadata and each series' read back after them: each
    describes every instance the model holds there, once, however many stores came after its
    first read (a metadata document written once, or cached, describes the study as it was)."""
    run_sequences(dicomweb, empty_study, "metadata", STORES, METADATA, longest=6)


def run_sequences(
    client: Client,
    study: EmptyStudy,
    name: str,
    actions: Any,
    levels: Levels,
    longest: int = 12,
) -> None:
    """Each generated sequence of ``actions`` (``longest`` at most), in two fresh series of
    ``study``, followed by a look at every level of ``levels``: a change is always read back
    everywhere it shows."""
    examples = iter(range(1, 1_000_000))
    model = StudyModel()  # the whole study's, across examples

    def holds(sequence: list[Action]) -> None:
        archive = Archive(client, study, next(examples), model, levels)
        for action in sequence:
            archive.do(action)
        archive.done.append("then every level")
        archive.look()
        archive.flush()

    explore(name, st.lists(actions, min_size=1, max_size=longest), holds)


# The search levels too (counts and modalities change with a delete as with a store); not the
# metadata requirements, whose capability a profile may deny while it has DELETE.
@pytest.mark.requirement("AZ-DELETE-INSTANCE", "AZ-DELETE-SERIES", *SEARCH_LEVELS)
def test_deletes_stores_and_searches_agree_with_the_model(
    dicomweb: Client, empty_study: EmptyStudy
) -> None:
    """The sequences of the property above with deletes of instances and series among them:
    what was deleted is listed and retrieved no more, what was not is still all there, in
    whatever order the deletes, stores and searches come (a search cached past a delete shows
    only after a search before it), at every level that lists, counts or sends it: the study
    and series searches with their counts and modalities, the instance lists, the series
    retrieves. (Without DELETE the check is NOT-IMPLEMENTED for want of delete, whatever the
    search requirements it also names.)"""
    probe = synthetic.generated_instance(
        empty_study.patient_id, empty_study.study_uid, f"{empty_study.study_uid}.9.1", None, [], 9
    )
    expect.answered(stow(dicomweb, [probe], empty_study.study_uid), 200)
    response = dicomweb.delete(instance_path(probe))
    if response.status_code in (404, 405, 501):
        expect.not_implemented(
            f"no DELETE of an instance: it answered {response.status_code}", capability="delete"
        )
    expect.status(response, 204)
    run_sequences(dicomweb, empty_study, "deletes", st.one_of(ACTIONS, DELETES), SEARCHES)
