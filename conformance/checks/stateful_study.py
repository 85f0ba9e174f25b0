"""The stateful property's model of its whole study, and the look at every level of it.

The examples of test_properties_stateful.py store into one study, two fresh series each, and
an example's instances stay there after it. So what the study holds is the sum of every
example so far: the counts of Table 10.6.3-3 (Number of Study Related Series and Instances),
Modalities in Study, the series' counts of Table 10.6.3-4, and the study's metadata all change
with each store and delete, and a server that computed them once (or cached them on the first
read) answers what the study was, not what it is. The look asks each of them, and what is read
is held to the model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import requests

from conformance import expect
from conformance.checks.test_qido import as_number
from conformance.client import Client
from conformance.dicomweb import (
    SERIES_UID,
    SOP_UID,
    STUDY_UID,
    first_value,
    json_array,
    metadata,
    retrieve,
    search,
    uids,
    values,
)

MODALITY = "00080060"
MODALITIES_IN_STUDY = "00080061"
STUDY_SERIES_COUNT = "00201206"  # Number of Study Related Series
STUDY_INSTANCE_COUNT = "00201208"  # Number of Study Related Instances
SERIES_INSTANCE_COUNT = "00201209"  # Number of Series Related Instances
NAMES = {
    STUDY_SERIES_COUNT: "NumberOfStudyRelatedSeries (0020,1206)",
    STUDY_INSTANCE_COUNT: "NumberOfStudyRelatedInstances (0020,1208)",
    SERIES_INSTANCE_COUNT: "NumberOfSeriesRelatedInstances (0020,1209)",
}
# What a retrieve or a search of what was deleted (or never stored) may answer: 404 (Not
# Found), or 410 (Gone) from a server that knows it was deleted (PS3.18 Table 8.5-1).
GONE = (404, 410)

Diverged = Callable[[str], AssertionError]


@dataclass
class StudyModel:
    """Every instance still stored in the check's study, whichever example stored it: its
    series and its Modality."""

    instances: dict[str, tuple[str, str]] = field(default_factory=dict)  # SOP -> series, modality
    # A store or delete answered otherwise than the model expects, so what the study holds is
    # no longer known: the study-wide levels are not judged after that (the failure is).
    unsure: bool = False
    # Whether a metadata resource has answered 200: from then on, it has them.
    has_metadata: bool = False

    def add(self, sop_uid: str, series_uid: str, modality: str) -> None:
        self.instances[sop_uid] = (series_uid, modality)

    def remove(self, sop_uids: Iterable[str]) -> None:
        for uid in sop_uids:
            self.instances.pop(uid, None)

    def in_series(self, series_uid: str) -> set[str]:
        return {sop for sop, (series, _) in self.instances.items() if series == series_uid}

    def series(self) -> dict[str, str]:
        """The study's series that hold an instance, with their modality."""
        return {series: modality for series, modality in self.instances.values()}


@dataclass(frozen=True)
class Levels:
    """What a check reads back, each by the requirements it names: ``lists``, which entities
    the study and series searches list and a series retrieve sends; ``counts``, the study's and
    series' counts, Modalities in Study and each series' Modality; ``metadata``, which instances
    the study's and series' metadata describe. (A check naming the metadata requirements is
    NOT-IMPLEMENTED where a profile declares no metadata: the searches are judged apart.)"""

    lists: bool
    counts: bool
    metadata: bool


SEARCHES = Levels(lists=True, counts=True, metadata=False)
METADATA = Levels(lists=False, counts=False, metadata=True)


@dataclass
class Reads:
    """Reads of the study as it is between two writes, asked together (``ask``) before the next
    write, since a read changes nothing another read could see; so the model they are held to
    is still the one they were queued with. ``judged`` ask and judge, each raising its
    divergence; ``described``, the metadata resources to read and the instances each must
    describe, with what to raise when it does not."""

    judged: list[Callable[[], None]] = field(default_factory=list)
    described: list[tuple[str, set[str], Diverged]] = field(default_factory=list)


def ask(client: Client, reads: Reads, study: StudyModel) -> None:
    """Ask ``reads`` together (``Client.each``): the searches, lists and retrieves judged as
    they come, the first divergence in the order they were queued raised; the metadata judged
    after, in their order, since the first that answers tells how the others' absence reads."""
    client.each(reads.judged)
    answers = client.each([partial(metadata, client, path) for path, _, _ in reads.described])
    for (_, wanted, diverged), response in zip(reads.described, answers, strict=True):
        same_metadata(response, wanted, study, diverged)


def queue_every_level(
    client: Client,
    study_uid: str,
    study: StudyModel,
    own: Sequence[str],
    diverged: Diverged,
    levels: Levels,
    reads: Reads,
) -> None:
    """Queue in ``reads`` the study at each of ``levels``, each answer to be held to ``study``
    as it is now: the study search (its counts and Modalities in Study), the series search
    (every series' count and Modality), the study's metadata and, for each of ``own`` (the
    example's series), its instance list, its retrieve and its metadata. Counts and modalities
    are judged where the server returns them (that it returns them at all is
    test_qido_attributes.py's rule)."""
    if not study.unsure:  # else what the whole study holds is not known
        if levels.lists or levels.counts:
            reads.judged.append(
                partial(study_search, client, study_uid, study, diverged, levels.counts)
            )
            reads.judged.append(
                partial(series_search, client, study_uid, study, diverged, levels.counts)
            )
        if levels.metadata:
            reads.described.append((f"studies/{study_uid}", set(study.instances), diverged))
    for series in own:
        wanted = study.in_series(series)
        if not wanted:
            continue  # never stored, or all of it deleted: the example's own reads judge that
        path = f"studies/{study_uid}/series/{series}"
        if levels.lists:
            reads.judged.append(partial(same_list, client, path, wanted, diverged))
            reads.judged.append(partial(same_retrieve, client, path, wanted, diverged))
        if levels.metadata:
            reads.described.append((path, wanted, diverged))


def same_list(client: Client, path: str, wanted: set[str], diverged: Diverged) -> None:
    """The instance search of the series ``path`` lists exactly the instances ``wanted``."""
    response = search(client, f"{path}/instances")
    listed = uids(expect.results(response), SOP_UID)
    if sorted(map(str, listed)) != sorted(wanted):
        raise diverged(f"instance list: {_differs(response, listed, wanted)}")


def study_search(
    client: Client, study_uid: str, study: StudyModel, diverged: Diverged, counts: bool
) -> None:
    counted = (STUDY_SERIES_COUNT, STUDY_INSTANCE_COUNT, MODALITIES_IN_STUDY)
    response = search(
        client,
        "studies",
        ("StudyInstanceUID", study_uid),
        *(("includefield", tag) for tag in counted),
    )
    if not study.instances and response.status_code in GONE:
        return
    results = expect.results(response)
    found = [str(uid) for uid in uids(results, STUDY_UID)]
    wanted = [study_uid] if study.instances else []
    if found != wanted:
        raise diverged(f"study search: {_differs(response, found, wanted)}")
    if not results or not counts:
        return
    series = study.series()
    _same_count(response, results[0], STUDY_SERIES_COUNT, len(series), "series", diverged)
    _same_count(
        response, results[0], STUDY_INSTANCE_COUNT, len(study.instances), "instances", diverged
    )
    modalities = values(results[0], MODALITIES_IN_STUDY)
    if modalities and sorted(set(map(str, modalities))) != sorted(set(series.values())):
        raise diverged(
            f"study search: {expect.request_line(response)} gives ModalitiesInStudy "
            f"{modalities}, the study's series are {sorted(set(series.values()))}"
        )


def series_search(
    client: Client, study_uid: str, study: StudyModel, diverged: Diverged, counts: bool
) -> None:
    response = search(
        client, f"studies/{study_uid}/series", ("includefield", SERIES_INSTANCE_COUNT)
    )
    series = study.series()
    if not series and response.status_code in GONE:
        return
    results = expect.results(response)
    found = [str(uid) for uid in uids(results, SERIES_UID)]
    if sorted(found) != sorted(series):
        raise diverged(f"series search: {_differs(response, found, set(series))}")
    for row in results if counts else []:
        uid = str(first_value(row, SERIES_UID))
        count = len(study.in_series(uid))
        _same_count(response, row, SERIES_INSTANCE_COUNT, count, f"instances in {uid}", diverged)
        modality = first_value(row, MODALITY)
        if modality is not None and str(modality) != series[uid]:
            raise diverged(
                f"series search: {expect.request_line(response)} gives series {uid} the "
                f"Modality {modality!r}, its instances are {series[uid]}"
            )


def same_metadata(
    response: requests.Response, wanted: set[str], study: StudyModel, diverged: Diverged
) -> None:
    """The metadata answered describes exactly the instances ``wanted``, each once."""
    if not wanted and response.status_code in GONE:
        return  # nothing stored there yet (or all of it deleted): a fair answer
    if response.status_code in expect.ROUTE_ABSENT and not study.has_metadata:
        # As expect.get_metadata reads it: no metadata resources. Once one has answered, a
        # resource the model holds is there, and answers.
        expect.not_implemented(
            f"no metadata resource: {expect.request_line(response)} answered {response.status_code}"
        )
    if response.status_code != 200:
        raise diverged(
            f"metadata: {expect.request_line(response)} answered {response.status_code}, "
            f"the archive holds {len(wanted)} instance(s) there"
        )
    study.has_metadata = True
    described = uids(json_array(response), SOP_UID)
    if sorted(map(str, described)) != sorted(wanted):
        raise diverged(f"metadata: {_differs(response, described, wanted)}")


def same_retrieve(client: Client, path: str, wanted: set[str], diverged: Diverged) -> None:
    """A retrieve of ``path`` sends exactly the instances ``wanted``, each once (read as the
    parts arrive: nothing is held but their UIDs)."""
    response = retrieve(client, path)
    if response.status_code != 200:
        response.close()
        raise diverged(f"retrieve: {expect.request_line(response)} answered {response.status_code}")
    sent = [str(ds.get("SOPInstanceUID", "")) for ds in expect.iter_dicom_parts(client, response)]
    if sorted(sent) != sorted(wanted):
        raise diverged(f"retrieve: {_differs(response, sent, wanted)}")


def _same_count(
    response: requests.Response,
    obj: dict[str, Any],
    tag: str,
    wanted: int,
    what: str,
    diverged: Diverged,
) -> None:
    value = first_value(obj, tag)
    if value is None:
        return
    try:
        same = as_number(value) == wanted
    except ValueError:
        same = False
    if not same:
        level = "study search" if tag != SERIES_INSTANCE_COUNT else "series search"
        raise diverged(
            f"{level}: {expect.request_line(response)} gives {NAMES[tag]} {value!r}, "
            f"the study holds {wanted} {what}"
        )


def _differs(response: requests.Response, found: Sequence[Any], wanted: Iterable[str]) -> str:
    """What an answer names beside what the model holds: the counts, and the first few UIDs
    missing, named but not held, or named twice (the study grows long lists)."""
    named, held = [str(uid) for uid in found], set(wanted)
    differences = {
        "missing": sorted(held - set(named)),
        "not held": sorted(set(named) - held),
        "named twice": sorted({uid for uid in named if named.count(uid) > 1}),
    }
    shown = "; ".join(f"{what} {some[:3]}" for what, some in differences.items() if some)
    return (
        f"{expect.request_line(response)} names {len(named)}, the archive holds {len(held)}: "
        f"{shown}"
    )
