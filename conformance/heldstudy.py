"""What a read-only run knows of a study the server holds: a bounded sample of it, read through
the server's own answers (a search of its series, a search of each sampled series' instances,
each sampled instance's metadata).

So a check asks the same questions of "the data" in either mode: the run's stored study
(samples.SampleStudy) or this one. What it knows is what the server says it holds, by its
metadata: a check comparing a search's answer with it compares two answers of the server, which
is what can be judged without the stored bytes. A check that needs those bytes is write-only.

A production study can hold thousands of instances: the sample is at most ``SERIES_SAMPLED``
series of at most ``INSTANCES_SAMPLED`` instances each, and says whether it is the whole study
(counts can only be judged then). A failed read while building it leaves the checks that need
it unjudged (ERROR), never FAIL: the search and metadata checks judge those answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from . import expect
from .client import Client
from .dicomweb import SERIES_UID, SOP_UID, ProtocolError, json_array, metadata, search
from .samples import Instance, SampleStudy

# Three series of three instances: enough for a check to see several results of each level
# (a series search that answers more than one, instances of more than one series) and one
# instance under "another series", while a study of thousands of instances costs a run at most
# 1 + 3 searches and 9 metadata reads, once per process.
SERIES_SAMPLED = 3
INSTANCES_SAMPLED = 3


@dataclass(frozen=True)
class HeldInstance:
    """One sampled instance: where the server lists it, and its metadata as a Dataset (bulk
    data left out). No bytes: a check that needs them needs a study of the run's own."""

    name: str  # "held-1", in the order sampled
    study_uid: str
    series_uid: str
    sop_uid: str
    dataset: Dataset

    def __repr__(self) -> str:
        return f"HeldInstance({self.name!r}, {self.sop_uid})"


@dataclass(frozen=True)
class HeldStudy:
    """A study the server holds, as sampled: its instances in the order sampled."""

    study_uid: str
    instances: tuple[HeldInstance, ...]
    series_listed: int  # series the series search listed (at most SERIES_SAMPLED + 1)
    whole_series: frozenset[str]  # sampled series whose every instance is in the sample

    def __iter__(self) -> Iterator[HeldInstance]:
        return iter(self.instances)

    def __len__(self) -> int:
        return len(self.instances)

    @property
    def sop_uids(self) -> set[str]:
        return {i.sop_uid for i in self.instances}

    @property
    def series_uids(self) -> list[str]:
        """Every sampled series once, in the order sampled."""
        return list(dict.fromkeys(i.series_uid for i in self.instances))

    def in_series(self, series_uid: str) -> list[HeldInstance]:
        """The sampled instances of a series (all of them if ``is_whole(series_uid)``)."""
        return [i for i in self.instances if i.series_uid == series_uid]

    def is_whole(self, series_uid: str | None = None) -> bool:
        """Whether the sample holds every instance of a series, or of the study (None)."""
        if series_uid is not None:
            return series_uid in self.whole_series
        return self.series_listed <= SERIES_SAMPLED and set(self.series_uids) <= self.whole_series

    @property
    def sampled(self) -> str:
        """What was sampled, for messages: "2 series, 3 instances (the whole study)"."""
        whole = (
            "the whole study"
            if self.is_whole()
            else f"a sample: at most {SERIES_SAMPLED} series of at most {INSTANCES_SAMPLED} "
            "instances each"
        )
        return f"{len(self.series_uids)} series, {len(self)} instances ({whole})"


StudyData = SampleStudy | HeldStudy  # "the data": what the run stored, or what the server holds
DataInstance = Instance | HeldInstance


def first_instance(study: StudyData) -> DataInstance:
    """An instance of the data: red-triangle of the article's study (the one its checks have
    always named), else the first sampled."""
    return study.red if isinstance(study, SampleStudy) else study.instances[0]


def is_whole(study: StudyData, series_uid: str | None = None) -> bool:
    """Whether the data holds every instance of the study (or of a series): always for a study
    the run stored, for a held one only if the sample is the whole of it."""
    return study.is_whole(series_uid) if isinstance(study, HeldStudy) else True


def path_of(instance: DataInstance) -> str:
    """The instance's resource path (dicomweb.instance_path, for either kind of instance)."""
    return f"studies/{instance.study_uid}/series/{instance.series_uid}/instances/{instance.sop_uid}"


def read(client: Client, study_uid: str) -> HeldStudy:
    """Sample a study the server holds: raises PreconditionFailed if an answer it needs is not
    one (a check that needs the sample cannot judge its rule)."""
    listed = _listed(client, f"studies/{study_uid}/series", SERIES_UID, SERIES_SAMPLED)
    expect.precondition(bool(listed), f"a search of study {study_uid}'s series lists none")
    instances: list[HeldInstance] = []
    whole: set[str] = set()
    for series_uid in listed[:SERIES_SAMPLED]:
        path = f"studies/{study_uid}/series/{series_uid}/instances"
        sops = _listed(client, path, SOP_UID, INSTANCES_SAMPLED)
        if len(sops) <= INSTANCES_SAMPLED:
            whole.add(series_uid)
        for sop_uid in sops[:INSTANCES_SAMPLED]:
            dataset = _metadata(client, f"{path}/{sop_uid}", sop_uid)
            name = f"held-{len(instances) + 1}"
            instances.append(HeldInstance(name, study_uid, series_uid, sop_uid, dataset))
    expect.precondition(bool(instances), f"the searches of study {study_uid} list no instance")
    return HeldStudy(study_uid, tuple(instances), len(listed), frozenset(whole))


def _listed(client: Client, path: str, tag: str, bound: int) -> list[str]:
    """The unique keys a search lists, asking for one more than ``bound`` (so that "more than
    the bound" is known without reading them all), in the order listed, each once."""
    response = search(client, path, ("limit", str(bound + 1)))
    expect.answered(response, 200, 204)
    try:
        objects = [] if response.status_code == 204 else json_array(response)
    except ProtocolError as exc:
        raise expect.PreconditionFailed(f"{expect.request_line(response)}: {exc}") from None
    found = [_uid(o.get(tag)) for o in objects]
    expect.precondition(
        None not in found, f"{expect.request_line(response)}: a result lacks its {tag}"
    )
    return list(dict.fromkeys(str(uid) for uid in found))


def _uid(attribute: Any) -> str | None:
    value = attribute.get("Value") if isinstance(attribute, dict) else None
    first = value[0] if isinstance(value, list) and value else None
    return first if isinstance(first, str) and first else None


def _metadata(client: Client, path: str, sop_uid: str) -> Dataset:
    """An instance's metadata as a Dataset, without the attributes it gives as bulk data."""
    response = metadata(client, path)
    expect.answered(response, 200)
    line = expect.request_line(response)
    try:
        objects = json_array(response)
    except ProtocolError as exc:
        raise expect.PreconditionFailed(f"{line}: {exc}") from None
    expect.precondition(len(objects) == 1, f"{line}: {len(objects)} objects, not one")
    try:
        dataset = Dataset.from_json(_without_bulk_data(objects[0]))
    except Exception as exc:  # pydicom raises many types for JSON it cannot read
        raise expect.PreconditionFailed(f"{line}: not readable DICOM JSON: {exc}") from None
    expect.precondition(
        str(dataset.get("SOPInstanceUID", "")) == sop_uid,
        f"{line}: describes SOP instance {dataset.get('SOPInstanceUID')!r}",
    )
    return dataset


def _without_bulk_data(obj: dict[str, Any]) -> dict[str, Any]:
    """A DICOM JSON object without its BulkDataURI attributes (nothing is fetched for them)."""
    kept: dict[str, Any] = {}
    for tag, attribute in obj.items():
        if isinstance(attribute, dict) and "BulkDataURI" in attribute:
            continue
        if isinstance(attribute, dict) and attribute.get("vr") == "SQ":
            items = attribute.get("Value")
            if isinstance(items, list):
                items = [_without_bulk_data(i) if isinstance(i, dict) else i for i in items]
                attribute = {**attribute, "Value": items}
        kept[tag] = attribute
    return kept
