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

Some checks need an instance showing a feature (an image, a multi-frame image, one without pixel
data, one its metadata says is stored compressed: FEATURES). A sample lacking a multi-frame image
or an instance without pixel data looks once further: one search of at most FEATURE_SEARCHED of
the study's instances, and one metadata read per feature lacking (``extras``, never counted as
the sample's). A failed or empty search finds nothing, and the checks needing it are unjudged.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import UID

from . import expect
from .client import Client
from .dicomweb import SERIES_UID, SOP_UID, ProtocolError, json_array, metadata, search
from .model import level_of
from .samples import Instance, SampleStudy

# Three series of three instances: enough for a check to see several results of each level
# (a series search that answers more than one, instances of more than one series) and one
# instance under "another series", while a study of thousands of instances costs a run at most
# 1 + 3 searches and 9 metadata reads, once per process.
SERIES_SAMPLED = 3
INSTANCES_SAMPLED = 3
# A check of frames, of a compressed instance or of a non-image needs an instance showing it; a
# sample lacking one looks once further, in one search of at most this many of the study's
# instances, and reads the metadata of at most one instance per feature it lacks.
FEATURE_SEARCHED = 50
NUMBER_OF_FRAMES, ROWS = "00280008", "00280010"
AVAILABLE_TRANSFER_SYNTAX = "AvailableTransferSyntaxUID"  # (0008,3002), where the server says
# What a check may ask a held instance to show, as its messages name it.
FEATURES = {
    "image": "an image",
    "multiframe": "a multi-frame image",
    "no_pixels": "an instance without pixel data",
    "compressed": "an instance its metadata says is stored compressed",
}


@dataclass(frozen=True)
class HeldInstance:
    """One sampled instance: where the server lists it, and its metadata as a Dataset (bulk
    data left out). No bytes: a check that needs them needs a study of the run's own."""

    name: str  # "held-1", in the order sampled
    study_uid: str
    series_uid: str
    sop_uid: str
    dataset: Dataset
    # The top-level attributes the metadata gives as bulk data (BulkDataURI), left out of
    # ``dataset``: a retrieve of the instance must hold them, whatever their bytes.
    bulk: frozenset[str] = frozenset()
    # Described by its search result (the server has no metadata): ``dataset`` then holds what
    # a search says, of the study and series too, and only ``own()`` is the instance's.
    from_search: bool = False

    def __repr__(self) -> str:
        return f"HeldInstance({self.name!r}, {self.sop_uid})"

    def own(self) -> Dataset:
        """What the server says of this instance itself: its metadata, or of a search result
        the instance-level attributes (a server may keep one Patient's Name per patient where
        the instances differ) less those only a result carries (its character set, UTF-8
        whatever the instance's; RetrieveURL; availability)."""
        if not self.from_search:
            return self.dataset
        own = Dataset()
        for element in self.dataset:
            tag = f"{int(element.tag):08X}"
            if level_of(tag) == "instance" and tag not in RESULT_ONLY:
                own.add(element)
        return own


@dataclass(frozen=True)
class HeldStudy:
    """A study the server holds, as sampled: its instances in the order sampled."""

    study_uid: str
    instances: tuple[HeldInstance, ...]
    series_listed: int  # series the series search listed (at most SERIES_SAMPLED + 1)
    whole_series: frozenset[str]  # sampled series whose every instance is in the sample
    # Instances outside the sample, read because they show a feature the sample lacks (a
    # multi-frame image, an instance without pixel data): never counted as the sample's.
    extras: tuple[HeldInstance, ...] = ()

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


def has_feature(dataset: Dataset, feature: str) -> bool:
    """Whether an instance's metadata shows a feature of FEATURES."""
    image = "Rows" in dataset
    if feature == "image":
        return image
    if feature == "multiframe":
        return image and _frames(dataset) > 1
    if feature == "no_pixels":
        return not image and "SOPClassUID" in dataset
    if feature == "compressed":
        offered = UID(str(dataset.get(AVAILABLE_TRANSFER_SYNTAX, "")))
        return image and offered.is_transfer_syntax and offered.is_compressed
    raise ValueError(f"no feature {feature!r}: {sorted(FEATURES)}")


def _frames(dataset: Dataset) -> int:
    try:
        return int(dataset.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        return 1


def number_of_frames(instance: DataInstance) -> int:
    """The frames an instance's metadata (or the stored dataset) says it has: 1 unless more."""
    return _frames(instance.dataset)


def with_feature(study: HeldStudy, feature: str) -> HeldInstance | None:
    """The held instance showing ``feature`` with the fewest pixel bytes by its metadata (the
    checks that use it read it whole, and a production multi-frame image can be gigabytes):
    of the sample, else of its extras; the first of equals."""
    found = [i for i in (*study, *study.extras) if has_feature(i.dataset, feature)]
    return min(found, key=lambda i: _pixel_bytes(i.dataset), default=None)


def _pixel_bytes(dataset: Dataset) -> int:
    """The uncompressed pixel bytes an instance's metadata describes (0 where it cannot tell)."""
    try:
        values = [int(dataset.get(k, 1) or 1) for k in ("Rows", "Columns", "SamplesPerPixel")]
        bits = int(dataset.get("BitsAllocated", 8) or 8)
    except (TypeError, ValueError):
        return 0
    return math.prod(values) * _frames(dataset) * max(bits // 8, 1)


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
    whole: set[str] = set()
    wanted: list[tuple[str, str, dict[str, Any]]] = []  # (series, SOP instance, search result)
    for series_uid in listed[:SERIES_SAMPLED]:
        path = f"studies/{study_uid}/series/{series_uid}/instances"
        rows = _rows(client, path, SOP_UID, INSTANCES_SAMPLED)
        if len(rows) <= INSTANCES_SAMPLED:
            whole.add(series_uid)
        wanted += [
            (series_uid, sop_uid, rows[sop_uid]) for sop_uid in list(rows)[:INSTANCES_SAMPLED]
        ]
    # No metadata read depends on another's answer: up to 9 asked at once (Client.each).
    read = client.each(
        partial(_metadata, client, f"studies/{study_uid}/series/{s}/instances/{sop}", sop, row)
        for s, sop, row in wanted
    )
    instances = [
        HeldInstance(f"held-{n}", study_uid, series_uid, sop_uid, dataset, bulk, searched)
        for n, ((series_uid, sop_uid, _), (dataset, bulk, searched)) in enumerate(
            zip(wanted, read, strict=True), start=1
        )
    ]
    expect.precondition(bool(instances), f"the searches of study {study_uid} list no instance")
    sample = HeldStudy(study_uid, tuple(instances), len(listed), frozenset(whole))
    lacking = [f for f in SEARCHED_FOR if with_feature(sample, f) is None]
    if not lacking:
        return sample
    extras = tuple(_extras(client, study_uid, sample.sop_uids, lacking))
    return HeldStudy(study_uid, sample.instances, len(listed), frozenset(whole), extras)


# The features an instance search shows (Rows, Number of Frames): a held study lacking them in
# its sample is searched once for them. "compressed" needs the metadata's word, never guessed.
SEARCHED_FOR = ("multiframe", "no_pixels")


def _extras(
    client: Client, study_uid: str, sampled: set[str], lacking: list[str]
) -> list[HeldInstance]:
    """At most one instance per lacking feature, from one bounded search of the study's
    instances; a search or read that fails finds none (the checks needing it are unjudged, and
    the search checks judge such answers)."""
    response = search(
        client,
        f"studies/{study_uid}/instances",
        ("limit", str(FEATURE_SEARCHED)),
        ("includefield", NUMBER_OF_FRAMES),
        ("includefield", ROWS),
    )
    try:
        objects = json_array(response) if response.status_code == 200 else []
    except ProtocolError:
        objects = []
    found: list[HeldInstance] = []
    for feature in lacking:
        for obj in objects[:FEATURE_SEARCHED]:
            series_uid, sop_uid = _uid(obj.get(SERIES_UID)), _uid(obj.get(SOP_UID))
            if series_uid is None or sop_uid is None or sop_uid in sampled:
                continue
            if not _may_show(obj, feature):
                continue
            path = f"studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"
            try:
                dataset, bulk, _ = _metadata(client, path, sop_uid)
            except expect.PreconditionFailed:
                break
            if has_feature(dataset, feature):
                name = f"held-extra-{len(found) + 1}"
                found.append(HeldInstance(name, study_uid, series_uid, sop_uid, dataset, bulk))
                sampled = sampled | {sop_uid}
            break  # one metadata read per feature, whatever it shows
    return found


def _may_show(obj: dict[str, Any], feature: str) -> bool:
    """Whether a search result may be an instance with ``feature`` (its metadata decides)."""
    rows = obj.get(ROWS)
    frames = _number(obj.get(NUMBER_OF_FRAMES))
    if feature == "multiframe":
        return frames is not None and frames > 1
    return rows is None or _number(rows) is None


def _listed(client: Client, path: str, tag: str, bound: int) -> list[str]:
    """The unique keys a search lists, asking for one more than ``bound`` (so that "more than
    the bound" is known without reading them all), in the order listed, each once."""
    return list(_rows(client, path, tag, bound))


def _rows(client: Client, path: str, tag: str, bound: int) -> dict[str, dict[str, Any]]:
    """As ``_listed``, each key with its (first) result."""
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
    rows: dict[str, dict[str, Any]] = {}
    for uid, obj in zip(found, objects, strict=True):
        rows.setdefault(str(uid), obj)
    return rows


def _number(attribute: Any) -> int | None:
    value = attribute.get("Value") if isinstance(attribute, dict) else None
    first = value[0] if isinstance(value, list) and value else None
    try:
        return int(first) if first is not None else None
    except (TypeError, ValueError):
        return None


def _uid(attribute: Any) -> str | None:
    value = attribute.get("Value") if isinstance(attribute, dict) else None
    first = value[0] if isinstance(value, list) and value else None
    return first if isinstance(first, str) and first else None


# Metadata answers that say the server offers none (tiny-pacs: 404): the sample then describes
# each instance as its search result does, and the metadata checks judge the absence.
NO_METADATA = (404, 405, 406, 501)
UID_KEYWORDS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
RESULT_ONLY = frozenset({"00080005", "00080056", "00081190"})  # charset, availability, URL


def _metadata(
    client: Client, path: str, sop_uid: str, row: dict[str, Any] | None = None
) -> tuple[Dataset, frozenset[str], bool]:
    """An instance's metadata as a Dataset, without the attributes it gives as bulk data, and
    the tags of those (top level); where the server has no metadata to give, the instance as
    its search result ``row`` describes it (if given)."""
    response = metadata(client, path)
    line = expect.request_line(response)
    if row is not None and response.status_code in NO_METADATA:
        # An empty attribute of a search result says nothing of the instance (a search returns
        # the keys it was asked for, empty where the instance has no value): left out.
        valued = {tag: a for tag, a in row.items() if isinstance(a, dict) and a.get("Value")}
        try:
            dataset = Dataset.from_json(_without_bulk_data(valued))
        except Exception as exc:  # pydicom raises many types for JSON it cannot read
            raise expect.PreconditionFailed(f"{line}: and its search result: {exc}") from None
        # A search result need not repeat the UIDs its path names.
        parts = path.split("/")
        for keyword, value in zip(UID_KEYWORDS, parts[1::2], strict=True):
            if keyword not in dataset:
                setattr(dataset, keyword, value)
        return dataset, frozenset(), True
    expect.answered(response, 200)
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
    bulk = frozenset(
        tag
        for tag, attribute in objects[0].items()
        if isinstance(attribute, dict) and "BulkDataURI" in attribute
    )
    return dataset, bulk, False


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
