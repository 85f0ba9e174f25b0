"""A foreign archive: studies the suite's checks never stored, for the proof of read-only runs.

A read-only run judges an archive from the data it already holds (issue 23). To show it does,
our tests store this archive straight into a server (not through a run of the suite), then run
the catalog read-only on it. Built in code with pydicom, deterministic (the same label gives the
same bytes: no clock, no randomness, fixed implementation identifiers), synthetic (nobody real),
and with UIDs under 2.25 derived like the suite's own (``samples.derive_uid``) from a run id of
its own, "held-archive", so it never collides with what a run stores. Its Patient IDs are not the
suite's run marker (``DWC-...``): the suite's cleanup never takes it for a run's data.

Layout (study: patient, date, character set; series: modality, instances)::

    1  Müller^Jürgen   2024-03-15 14:30  ISO_IR 100 (Latin-1)
         1 MR  one multi-frame image (4 frames of 16x16)
         2 CT  two RLE Lossless images (32x32)
         3 SR  a Basic Text SR (no pixel data)
    2  Müller^Jürgen   2023-11-02 09:05  ISO_IR 100
         1 CT  three images (16x16)
    3  Yamada^Tarou    2023-06-20 08:00  ISO 2022 IR 87 (Japanese, Kanji and hiragana)
         1 US  one image (8x8)    2 OT  two images (8x8)
    4  Παπαδόπουλος    2022-12-01 23:59  ISO_IR 192 (UTF-8)
         1 DX  one image (16x16)
    5  Παπαδόπουλος    2021-04-05 00:00  ISO_IR 126 (Greek)
         1 MR  two images (8x8)

Study 1 is the most recent, so ``--dicomweb-studies=auto:N`` reads it first (it is what the
checks of "the data" sample: three series, each whole). Every image carries a Request Attributes
Sequence and a private creator with three private elements; every study but the first a
Referenced Study Sequence naming the study listed before it.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, RLELossless

from conformance.client import Client
from conformance.dicomweb import stow
from conformance.samples import Instance, derive_uid

RUN_ID = "held-archive"  # the run id its UIDs derive from: no run of the suite has it
LABEL = "v1"
IMPLEMENTATION_CLASS_UID = "2.25.312339037453443368415577357259864100805"  # as synthetic.py's
IMPLEMENTATION_VERSION_NAME = "DWCONF_HELD_1"

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
MULTIFRAME_GRAYSCALE_BYTE_SC = "1.2.840.10008.5.1.4.1.1.7.2"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
DETACHED_STUDY_MANAGEMENT = "1.2.840.10008.3.1.2.3.1"  # Referenced SOP Class of a study

PRIVATE_GROUP = 0x0011
PRIVATE_CREATOR = "DWCONF HELD ARCHIVE"
MULTIFRAME_FRAMES = 4


@dataclass(frozen=True)
class Patient:
    patient_id: str
    name: str  # with a caret: family^given
    birth_date: str
    sex: str


@dataclass(frozen=True)
class SeriesSpec:
    modality: str
    kind: str  # "image", "multiframe", "rle", "sr"
    count: int
    size: int = 8


@dataclass(frozen=True)
class StudySpec:
    patient: Patient
    date: str
    time: str
    charset: str  # Specific Character Set, as written ("\\" separates values)
    description: str
    series: tuple[SeriesSpec, ...]


LATIN = Patient("HELD-P1", "Müller^Jürgen", "19610412", "M")
JAPANESE = Patient("HELD-P2", "Yamada^Tarou=山田^太郎=やまだ^たろう", "19750830", "M")
GREEK = Patient("HELD-P3", "Παπαδόπουλος^Νίκος", "19880101", "F")

STUDIES = (
    StudySpec(
        LATIN,
        "20240315",
        "143000",
        "ISO_IR 100",
        "Schädel MR/CT und Befund",
        (
            SeriesSpec("MR", "multiframe", 1, 16),
            SeriesSpec("CT", "rle", 2, 32),
            SeriesSpec("SR", "sr", 1),
        ),
    ),
    StudySpec(
        LATIN, "20231102", "090500", "ISO_IR 100", "Thorax CT", (SeriesSpec("CT", "image", 3, 16),)
    ),
    StudySpec(
        JAPANESE,
        "20230620",
        "080000",
        "\\ISO 2022 IR 87",
        "Abdomen US",
        (SeriesSpec("US", "image", 1), SeriesSpec("OT", "image", 2)),
    ),
    StudySpec(
        GREEK, "20221201", "235959", "ISO_IR 192", "Θώρακας", (SeriesSpec("DX", "image", 1, 16),)
    ),
    StudySpec(
        GREEK, "20210405", "000000", "ISO_IR 126", "Εγκέφαλος", (SeriesSpec("MR", "image", 2),)
    ),
)


@dataclass(frozen=True)
class HeldArchive:
    """The archive's instances, study by study in the order of STUDIES (most recent first)."""

    instances: tuple[Instance, ...]

    @property
    def study_uids(self) -> list[str]:
        """Every study's UID, most recent first."""
        return list(dict.fromkeys(i.study_uid for i in self.instances))

    def of_study(self, study_uid: str) -> list[Instance]:
        return [i for i in self.instances if i.study_uid == study_uid]


def uid(*parts: object) -> str:
    return derive_uid(RUN_ID, LABEL, "/".join(str(p) for p in parts))


def _pixels(seed: int, size: int, frames: int = 0) -> npt.NDArray[np.uint8]:
    """A ramp unique to ``seed`` (frames stacked when ``frames``): values never the same image."""
    r, c = np.indices((size, size))
    if not frames:
        return ((r * 5 + c * 3 + seed * 29) % 256).astype(np.uint8)
    return np.stack([((r + c + k * 40 + seed * 29) % 256).astype(np.uint8) for k in range(frames)])


def _rle_friendly(seed: int, size: int) -> npt.NDArray[np.uint8]:
    """Runs on the left half (RLE shrinks them), a ramp on the right (literal runs)."""
    r, c = np.indices((size, size))
    return np.where(c < size // 2, (r // 4) * 30 + seed, (r * 7 + c * 3) % 256).astype(np.uint8)


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _base(
    study: int, spec: StudySpec, series: int, s: SeriesSpec, number: int, sop_class: str
) -> FileDataset:
    """Patient, General Study, Patient Study, General Series, Equipment and SOP Common."""
    sop_uid = uid("instance", study, series, number)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    ds = FileDataset(f"{sop_uid}.dcm", Dataset(), file_meta=meta, preamble=b"\0" * 128)
    # Set first: pydicom encodes every text value with the dataset's character set.
    ds.SpecificCharacterSet = spec.charset.split("\\") if "\\" in spec.charset else spec.charset
    ds.SOPClassUID = UID(sop_class)
    ds.SOPInstanceUID = UID(sop_uid)
    ds.PatientName = spec.patient.name
    ds.PatientID = spec.patient.patient_id
    ds.PatientBirthDate = spec.patient.birth_date
    ds.PatientSex = spec.patient.sex
    ds.StudyInstanceUID = UID(uid("study", study))
    ds.StudyDate, ds.StudyTime = spec.date, spec.time
    ds.ReferringPhysicianName = "Referrer^Held"
    ds.StudyID = f"H{study}"
    ds.AccessionNumber = f"HELD-{study:04d}"
    ds.StudyDescription = spec.description
    ds.PatientAge = f"{int(spec.date[:4]) - int(spec.patient.birth_date[:4]):03d}Y"
    if study > 1:  # the patient's earlier study, as a prior a report would reference
        ref = Dataset()
        ref.ReferencedSOPClassUID = UID(DETACHED_STUDY_MANAGEMENT)
        ref.ReferencedSOPInstanceUID = UID(uid("study", study - 1))
        ds.ReferencedStudySequence = Sequence([ref])
    ds.Modality = s.modality
    ds.SeriesInstanceUID = UID(uid("series", study, series))
    ds.SeriesNumber = series
    ds.SeriesDate, ds.SeriesTime = spec.date, spec.time
    ds.SeriesDescription = f"{s.modality} {s.kind} {series}"
    ds.Manufacturer = "dicomweb-conformance held archive"
    ds.InstanceNumber = number
    ds.ContentDate, ds.ContentTime = spec.date, spec.time
    return ds


def _image(
    ds: FileDataset, study: int, spec: StudySpec, pixels: npt.NDArray[np.uint8]
) -> FileDataset:
    """An 8-bit MONOCHROME2 Secondary Capture image, with a request and private elements."""
    ds.ConversionType = "WSD"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.PatientOrientation = ""
    ds.BurnedInAnnotation = "NO"
    ds.AcquisitionDateTime = f"{spec.date}{spec.time}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    request = Dataset()
    request.RequestedProcedureID = f"RP-H{study}"
    request.ScheduledProcedureStepID = f"SPS-H{study}"
    request.RequestedProcedureDescription = spec.description
    ds.RequestAttributesSequence = Sequence([request])
    block = ds.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    block.add_new(0x01, "LO", f"held study {study}")
    block.add_new(0x02, "US", study)
    block.add_new(0x03, "DS", "1.5")
    ds.PixelData = pixels.tobytes()
    ds["PixelData"].VR = "OB"
    return ds


def _instance(study: int, spec: StudySpec, series: int, s: SeriesSpec, number: int) -> Instance:
    seed = study * 100 + series * 10 + number
    if s.kind == "sr":
        ds = _base(study, spec, series, s, number, BASIC_TEXT_SR)
        ds.ReferencedPerformedProcedureStepSequence = Sequence()
        ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "UNVERIFIED"
        ds.PerformedProcedureCodeSequence = Sequence()
        ds.ValueType = "CONTAINER"
        ds.ConceptNameCodeSequence = Sequence([_code("18748-4", "LN", "Diagnostic Imaging Report")])
        ds.ContinuityOfContent = "SEPARATE"
        text = Dataset()
        text.RelationshipType, text.ValueType = "CONTAINS", "TEXT"
        text.ConceptNameCodeSequence = Sequence([_code("121071", "DCM", "Finding")])
        text.TextValue = "Synthetischer Befund: unauffällig."
        ds.ContentSequence = Sequence([text])
    elif s.kind == "multiframe":
        ds = _base(study, spec, series, s, number, MULTIFRAME_GRAYSCALE_BYTE_SC)
        ds = _image(ds, study, spec, _pixels(seed, s.size, MULTIFRAME_FRAMES))
        ds.NumberOfFrames = MULTIFRAME_FRAMES
        ds.FrameIncrementPointer = 0x00189219  # Page Number Vector (SC Multi-frame Vector)
        ds.PageNumberVector = list(range(1, MULTIFRAME_FRAMES + 1))
        ds.PresentationLUTShape = "IDENTITY"
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
    else:
        ds = _base(study, spec, series, s, number, SECONDARY_CAPTURE)
        pixels = _rle_friendly(seed, s.size) if s.kind == "rle" else _pixels(seed, s.size)
        ds = _image(ds, study, spec, pixels)
        if s.kind == "rle":
            # pydicom's own encoder (numpy only), keeping the SOP Instance UID.
            ds.compress(RLELossless, encoding_plugin="pydicom", generate_instance_uid=False)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return Instance(f"held-{study}.{series}.{number}", buffer.getvalue())


def held_archive() -> HeldArchive:
    """The archive (see the module doc); the same bytes every time."""
    return HeldArchive(
        tuple(
            _instance(study, spec, series, s, number)
            for study, spec in enumerate(STUDIES, start=1)
            for series, s in enumerate(spec.series, start=1)
            for number in range(1, s.count + 1)
        )
    )


class NotStored(Exception):
    """The server did not take the archive whole."""


def store(client: Client, archive: HeldArchive | None = None) -> list[str]:
    """Store the archive into the server (one STOW-RS request per study, straight, not through
    a run of the suite) and return its study UIDs, most recent first. Raises NotStored unless
    every request is answered 200."""
    archive = archive or held_archive()
    for study_uid in archive.study_uids:
        response = stow(client, archive.of_study(study_uid))
        if response.status_code != 200:
            raise NotStored(f"study {study_uid}: {response.status_code} {response.text[:500]}")
    return archive.study_uids


def stored_files(archive: HeldArchive) -> Iterable[tuple[str, str, str]]:
    """(study, series, instance) UIDs of every instance, to read each back."""
    return ((i.study_uid, i.series_uid, i.sop_uid) for i in archive.instances)


def main(argv: list[str]) -> int:
    """``python tests/heldarchive.py store``: store the archive into the server at
    $PYTEST_BASE_URL (as a launcher of conformance.local sets it) and print its study UIDs,
    comma-separated, most recent first (for --dicomweb-studies)."""
    if argv != ["store"] or not os.environ.get("PYTEST_BASE_URL"):
        print("usage: PYTEST_BASE_URL=... python tests/heldarchive.py store", file=sys.stderr)
        return 2
    print(",".join(store(Client(os.environ["PYTEST_BASE_URL"]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
