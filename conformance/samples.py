"""The article's three sample instances, and copies of them with fresh UIDs for each use.

Every copy keeps the article's structure (one study; green-square and red-triangle in one series,
blue-circle in another) but gets UIDs derived from the run identifier and a label, and a PatientID
and StudyDescription carrying the run identifier. So parallel workers, repeated nightly runs and
other people's data never collide, and anyone browsing the archive can tell what the suite stored.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset

SAMPLE_NAMES = ("blue-circle", "green-square", "red-triangle")
# A fixed namespace, so the same run id and label always give the same UIDs (traceable in logs).
_UID_NAMESPACE = uuid.UUID("5c0a4cf4-6f1e-4f0e-9b8e-2d1c0b7e9a51")


class SampleError(ValueError):
    """The sample files are missing or are not the article's study."""


@dataclass(frozen=True)
class Instance:
    """One stored-or-to-be-stored DICOM file and the UIDs that identify it."""

    name: str
    data: bytes

    def __repr__(self) -> str:
        # Short on purpose: pytest shows fixture values in failure reports, and a repr of the
        # bytes was megabytes of text and most of a failing check's cost.
        return f"Instance({self.name!r}, {len(self.data)} bytes)"

    @cached_property
    def dataset(self) -> Dataset:
        return pydicom.dcmread(io.BytesIO(self.data))

    @property
    def study_uid(self) -> str:
        return str(self.dataset.StudyInstanceUID)

    @property
    def series_uid(self) -> str:
        return str(self.dataset.SeriesInstanceUID)

    @property
    def sop_uid(self) -> str:
        return str(self.dataset.SOPInstanceUID)


class Study:
    """A study's instances by name, and the UIDs that tie them together (shared by the
    article's study and the synthetic one)."""

    instances: tuple[Instance, ...]

    def __iter__(self) -> Iterator[Instance]:
        return iter(self.instances)

    def __len__(self) -> int:
        return len(self.instances)

    def __getitem__(self, name: str) -> Instance:
        for instance in self.instances:
            if instance.name == name:
                return instance
        raise KeyError(name)

    @property
    def study_uid(self) -> str:
        return self.instances[0].study_uid

    @property
    def sop_uids(self) -> set[str]:
        return {i.sop_uid for i in self.instances}

    @property
    def series_uids(self) -> list[str]:
        """Every series of the study once, in the order of the instances."""
        return list(dict.fromkeys(i.series_uid for i in self.instances))

    def in_series(self, series_uid: str) -> list[Instance]:
        return [i for i in self.instances if i.series_uid == series_uid]


@dataclass(frozen=True)
class SampleStudy(Study):
    """The article's study: blue-circle, green-square and red-triangle."""

    instances: tuple[Instance, ...]

    @property
    def blue(self) -> Instance:
        return self["blue-circle"]

    @property
    def green(self) -> Instance:
        return self["green-square"]

    @property
    def red(self) -> Instance:
        return self["red-triangle"]


def default_directory() -> Path:
    """The suite's own generated samples (fixtures/, installed as conformance.fixtures)."""
    return Path(str(resources.files("conformance.fixtures")))


def load(directory: Path | None = None) -> SampleStudy:
    """Read the three sample files and check they form the article's study."""
    directory = directory or default_directory()
    instances = []
    for name in SAMPLE_NAMES:
        path = directory / f"{name}.dcm"
        if not path.is_file():
            raise SampleError(f"sample file missing: {path}")
        instances.append(Instance(name, path.read_bytes()))
    study = SampleStudy(tuple(instances))
    try:
        study_uids = {i.study_uid for i in study}
        same_series = study.green.series_uid == study.red.series_uid != study.blue.series_uid
    except (AttributeError, pydicom.errors.InvalidDicomError) as exc:
        raise SampleError(f"sample files in {directory} are not readable DICOM: {exc}") from None
    if len(study_uids) != 1 or not same_series:
        raise SampleError(
            f"sample files in {directory} are not the article's study: all three must share one "
            "study, green-square and red-triangle one series, blue-circle another"
        )
    return study


def derive_uid(run_id: str, label: str, original: str) -> str:
    """A UID under 2.25 (UUID-derived, PS3.5 B.2), unique to the run, label and original UID."""
    return f"2.25.{uuid.uuid5(_UID_NAMESPACE, f'{run_id}/{label}/{original}').int}"


MARKER_PREFIX = "DWC-"


def run_patient_id(run_id: str) -> str:
    """The marker of a run's data: the PatientID of everything it stores."""
    return f"{MARKER_PREFIX}{run_id}"[:64]


LIGHT_SIZE = 8


def _crop(ds: pydicom.Dataset, size: int) -> None:
    """Keep the top left ``size`` x ``size`` pixels of a single-frame, uncompressed image with
    interleaved samples (the samples' own encoding)."""
    if ds.file_meta.TransferSyntaxUID.is_compressed or ds.get("PlanarConfiguration", 0) != 0:
        raise SampleError(f"{ds.SOPInstanceUID}: only interleaved, uncompressed pixels crop")
    pixel = int(ds.SamplesPerPixel) * int(ds.BitsAllocated) // 8
    stride, width = int(ds.Columns) * pixel, min(size, int(ds.Columns)) * pixel
    data = bytes(ds.PixelData)
    rows = min(size, int(ds.Rows))
    ds.PixelData = b"".join(data[r * stride : r * stride + width] for r in range(rows))
    ds.Rows, ds.Columns = rows, width // pixel


def fresh_copy(template: SampleStudy, run_id: str, label: str, light: bool = False) -> SampleStudy:
    """A copy of the study with UIDs of its own and the run's marker; ``light``: each image
    cropped to its top left LIGHT_SIZE x LIGHT_SIZE pixels (a few hundred bytes, not 2.9 MB),
    for checks of how a server stores rather than of the article's pictures."""
    copies = []
    for instance in template:
        ds = pydicom.dcmread(io.BytesIO(instance.data))
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
            setattr(ds, keyword, derive_uid(run_id, label, str(getattr(ds, keyword))))
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.PatientID = run_patient_id(run_id)
        ds.StudyDescription = f"dicomweb-conformance run {run_id}"
        if light:
            _crop(ds, LIGHT_SIZE)
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        copies.append(Instance(instance.name, buffer.getvalue()))
    return SampleStudy(tuple(copies))
