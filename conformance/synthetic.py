"""Synthetic DICOM instances for the checks the article's three samples cannot exercise.

``catalog_study`` builds, entirely in code, one study of small instances: a multi-frame image,
an RLE Lossless compressed image, a Structured Report without pixel data, three instances whose
names need other character sets, and one with a Request Attributes Sequence. ``implicit_vr_copy``,
``without_attribute`` and ``with_attribute`` derive variants of any instance (another transfer
syntax, a missing attribute, an invalid value) for the store and search checks.

Everything is deterministic: the same run id and label give the same bytes (no clock, no
randomness, fixed implementation identifiers), and every UID is derived with
``samples.derive_uid`` under ``2.25.``, so runs and labels never collide. Nothing here is a real
person: the data carries the run's PatientID and StudyDescription like the samples' copies.

Layout of the study (series number: instances)::

    1 OT  multiframe                  Multi-frame Grayscale Byte SC, 4 frames of 16x16
    2 OT  compressed                  SC 32x32, RLE Lossless
    3 SR  no_pixels                   Basic Text SR
    4 OT  charset_latin, charset_ideographic, charset_greek   SC 8x8 each
    5 OT  sequence                    SC 8x8 with a Request Attributes Sequence

One study holds one patient, so the three charset instances give it three different
PatientNames; a server keeps one of them at the patient (and study) level.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
from pydicom import config
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless

from conformance.samples import Instance, Study, derive_uid, run_patient_id

# Our own file meta identifiers, fixed so the bytes never depend on the pydicom version; the UID
# is the one fixtures/generate.py uses (UUID eafa4f7d-2462-56b1-9f20-80a032cd4fc5 as 2.25).
IMPLEMENTATION_CLASS_UID = "2.25.312339037453443368415577357259864100805"
IMPLEMENTATION_VERSION_NAME = "DWCONF_SYN_1"

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
MULTIFRAME_GRAYSCALE_BYTE_SC = "1.2.840.10008.5.1.4.1.1.7.2"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"

CATALOG_NAMES = (
    "multiframe",
    "compressed",
    "no_pixels",
    "charset_latin",
    "charset_ideographic",
    "charset_greek",
    "sequence",
)

MULTIFRAME_FRAMES = 4
MULTIFRAME_SIZE = 16
COMPRESSED_SIZE = 32
SMALL_SIZE = 8

PATIENT_NAME = "Conformance^Synthetic"
LATIN_NAME = "Müller^Jürgen"
IDEOGRAPHIC_NAME = "Yamada^Tarou=山田^太郎=やまだ^たろう"
GREEK_NAME = "Διονυσιος"
# PS3.3 C.12.1.1.2 defined term -> the Python codec pydicom uses for it.
GREEK_CHARSET, GREEK_CODEC = "ISO_IR 126", "iso8859_7"

# The run id and label of copies are not known from an instance; copies derive their SOP
# Instance UID from the original UID (already unique to its run and label) under this marker.
_COPY_MARKER = "copy"

# name -> (series key, series number, instance number)
_LAYOUT: dict[str, tuple[str, int, int]] = {
    "multiframe": ("multiframe", 1, 1),
    "compressed": ("compressed", 2, 1),
    "no_pixels": ("report", 3, 1),
    "charset_latin": ("charset", 4, 1),
    "charset_ideographic": ("charset", 4, 2),
    "charset_greek": ("charset", 4, 3),
    "sequence": ("request", 5, 1),
}
_SERIES_DESCRIPTIONS = {
    "multiframe": "synthetic multi-frame",
    "compressed": "synthetic RLE lossless",
    "report": "synthetic text report",
    "charset": "synthetic character sets",
    "request": "synthetic request attributes",
}


# ---------------------------------------------------------------------------------- pixels


def _frame_array(k: int) -> npt.NDArray[np.uint8]:
    """Frame ``k`` (1-based) of ``multiframe``: k*48 + row + column, so frames never overlap."""
    if not 1 <= k <= MULTIFRAME_FRAMES:
        raise IndexError(f"frame {k} out of 1..{MULTIFRAME_FRAMES}")
    r, c = np.indices((MULTIFRAME_SIZE, MULTIFRAME_SIZE))
    return (k * 48 + r + c).astype(np.uint8)


def _compressed_array() -> npt.NDArray[np.uint8]:
    """Runs on the left (RLE shrinks them), a ramp on the right (literal runs)."""
    r, c = np.indices((COMPRESSED_SIZE, COMPRESSED_SIZE))
    half = COMPRESSED_SIZE // 2
    return np.where(c < half, (r // 4) * 30, (r * 7 + c * 3) % 256).astype(np.uint8)


def _small_array(seed: int) -> npt.NDArray[np.uint8]:
    r, c = np.indices((SMALL_SIZE, SMALL_SIZE))
    return ((r * SMALL_SIZE + c) * 3 + seed * 17).astype(np.uint8)


def frame_bytes(k: int) -> bytes:
    """The exact uncompressed bytes of frame ``k`` (1-based) of ``multiframe``."""
    return _frame_array(k).tobytes()


def compressed_pixels() -> bytes:
    """The uncompressed pixel bytes that ``compressed`` decodes to."""
    return _compressed_array().tobytes()


# ---------------------------------------------------------------------------------- values


def _short_hash(run_id: str, label: str) -> str:
    return hashlib.sha256(f"{run_id}/{label}".encode()).hexdigest()[:10].upper()


def scheduled_procedure_step_id(run_id: str, label: str) -> str:
    return f"SPS-{_short_hash(run_id, label)}"  # SH: at most 16 characters


def requested_procedure_id(run_id: str, label: str) -> str:
    return f"RP-{_short_hash(run_id, label)}"


def accession_number(run_id: str, label: str) -> str:
    return f"ACC-{_short_hash(run_id, label)}"


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


# ---------------------------------------------------------------------------------- building


def _file_meta(sop_class: str, sop_uid: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return meta


def _base(run_id: str, label: str, name: str, sop_class: str, modality: str) -> FileDataset:
    """Patient, General Study, General Series, General Equipment and SOP Common modules."""
    series_key, series_number, instance_number = _LAYOUT[name]
    sop_uid = derive_uid(run_id, label, name)
    ds = FileDataset(
        f"{name}.dcm", Dataset(), file_meta=_file_meta(sop_class, sop_uid), preamble=b"\0" * 128
    )
    # SOP Common
    ds.SOPClassUID = UID(sop_class)
    ds.SOPInstanceUID = UID(sop_uid)
    # Patient
    ds.PatientName = PATIENT_NAME
    ds.PatientID = run_patient_id(run_id)
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    # General Study
    ds.StudyInstanceUID = UID(derive_uid(run_id, label, "study"))
    ds.StudyDate = "20200922"
    ds.StudyTime = "120000"
    ds.ReferringPhysicianName = "Doctor^Synthetic"
    ds.StudyID = "DWC1"
    ds.AccessionNumber = accession_number(run_id, label)  # a study attribute: on every instance
    ds.StudyDescription = f"dicomweb-conformance run {run_id}"
    # General Series (or SR Document Series)
    ds.Modality = modality
    ds.SeriesInstanceUID = UID(derive_uid(run_id, label, f"series/{series_key}"))
    ds.SeriesNumber = series_number
    ds.SeriesDescription = _SERIES_DESCRIPTIONS[series_key]
    # General Equipment
    ds.Manufacturer = "dicomweb-conformance"
    # General Image / SR Document General
    ds.InstanceNumber = instance_number
    ds.ContentDate = "20200922"
    ds.ContentTime = "120000"
    return ds


def _secondary_capture(
    run_id: str, label: str, name: str, pixels: npt.NDArray[np.uint8], sop_class: str
) -> FileDataset:
    """An 8-bit MONOCHROME2 Secondary Capture image; ``pixels`` is (rows, cols) or (frames, ...)."""
    ds = _base(run_id, label, name, sop_class, "OT")
    # SC Equipment, General Image, SC Image
    ds.ConversionType = "WSD"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.PatientOrientation = ""
    ds.Laterality = ""
    ds.BurnedInAnnotation = "NO"
    # Image Pixel
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    ds["PixelData"].VR = "OB"
    return ds


def _multiframe(run_id: str, label: str) -> FileDataset:
    frames = np.stack([_frame_array(k) for k in range(1, MULTIFRAME_FRAMES + 1)])
    ds = _secondary_capture(run_id, label, "multiframe", frames, MULTIFRAME_GRAYSCALE_BYTE_SC)
    # Multi-frame, SC Multi-frame Image and SC Multi-frame Vector modules
    ds.NumberOfFrames = MULTIFRAME_FRAMES
    ds.FrameIncrementPointer = tag_for_keyword("PageNumberVector")
    ds.PageNumberVector = list(range(1, MULTIFRAME_FRAMES + 1))
    ds.PresentationLUTShape = "IDENTITY"
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.RescaleType = "US"
    return ds


def _compressed(run_id: str, label: str) -> FileDataset:
    ds = _secondary_capture(run_id, label, "compressed", _compressed_array(), SECONDARY_CAPTURE)
    # pydicom's own RLE encoder (numpy only); it must not invent a random SOP Instance UID.
    ds.compress(RLELossless, encoding_plugin="pydicom", generate_instance_uid=False)
    return ds


def _no_pixels(run_id: str, label: str) -> FileDataset:
    ds = _base(run_id, label, "no_pixels", BASIC_TEXT_SR, "SR")
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    # SR Document General
    ds.CompletionFlag = "COMPLETE"
    ds.VerificationFlag = "UNVERIFIED"
    ds.PerformedProcedureCodeSequence = Sequence()
    # SR Document Content: a CONTAINER root holding one TEXT item
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = Sequence([_code("18748-4", "LN", "Diagnostic Imaging Report")])
    ds.ContinuityOfContent = "SEPARATE"
    text = Dataset()
    text.RelationshipType = "CONTAINS"
    text.ValueType = "TEXT"
    text.ConceptNameCodeSequence = Sequence([_code("121071", "DCM", "Finding")])
    text.TextValue = f"Synthetic report of dicomweb-conformance run {run_id}; no findings."
    ds.ContentSequence = Sequence([text])
    return ds


def _charset(run_id: str, label: str, name: str, charset: str, patient_name: str) -> FileDataset:
    seed = _LAYOUT[name][2]
    ds = _secondary_capture(run_id, label, name, _small_array(seed), SECONDARY_CAPTURE)
    # Set before the name: pydicom encodes text with the dataset's character set when writing.
    ds.SpecificCharacterSet = charset
    ds.PatientName = patient_name
    return ds


def _sequence(run_id: str, label: str) -> FileDataset:
    ds = _secondary_capture(run_id, label, "sequence", _small_array(4), SECONDARY_CAPTURE)
    request = Dataset()
    request.RequestedProcedureID = requested_procedure_id(run_id, label)
    request.ScheduledProcedureStepID = scheduled_procedure_step_id(run_id, label)
    ds.RequestAttributesSequence = Sequence([request])
    return ds


def _encode(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------- the study


@dataclass(frozen=True)
class CatalogStudy(Study):
    """The synthetic instances of one run and label, all in one study (see the module doc)."""

    run_id: str
    label: str
    instances: tuple[Instance, ...]

    @property
    def multiframe(self) -> Instance:
        return self["multiframe"]

    @property
    def compressed(self) -> Instance:
        return self["compressed"]

    @property
    def no_pixels(self) -> Instance:
        return self["no_pixels"]

    @property
    def charset_latin(self) -> Instance:
        return self["charset_latin"]

    @property
    def charset_ideographic(self) -> Instance:
        return self["charset_ideographic"]

    @property
    def charset_greek(self) -> Instance:
        return self["charset_greek"]

    @property
    def charsets(self) -> tuple[Instance, Instance, Instance]:
        return self.charset_latin, self.charset_ideographic, self.charset_greek

    @property
    def sequence(self) -> Instance:
        return self["sequence"]

    def frame_bytes(self, k: int) -> bytes:
        """The exact uncompressed bytes of frame ``k`` (1-based) of ``multiframe``."""
        return frame_bytes(k)

    def compressed_pixels(self) -> bytes:
        """The uncompressed pixel bytes ``compressed`` decodes to."""
        return compressed_pixels()

    @property
    def scheduled_procedure_step_id(self) -> str:
        return scheduled_procedure_step_id(self.run_id, self.label)

    @property
    def requested_procedure_id(self) -> str:
        return requested_procedure_id(self.run_id, self.label)

    @property
    def accession_number(self) -> str:
        return accession_number(self.run_id, self.label)


def catalog_study(run_id: str, label: str) -> CatalogStudy:
    """The synthetic study of ``run_id`` and ``label``; the same pair gives the same bytes."""
    datasets = {
        "multiframe": _multiframe(run_id, label),
        "compressed": _compressed(run_id, label),
        "no_pixels": _no_pixels(run_id, label),
        "charset_latin": _charset(run_id, label, "charset_latin", "ISO_IR 192", LATIN_NAME),
        "charset_ideographic": _charset(
            run_id, label, "charset_ideographic", "ISO_IR 192", IDEOGRAPHIC_NAME
        ),
        "charset_greek": _charset(run_id, label, "charset_greek", GREEK_CHARSET, GREEK_NAME),
        "sequence": _sequence(run_id, label),
    }
    instances = tuple(Instance(name, _encode(datasets[name])) for name in CATALOG_NAMES)
    return CatalogStudy(run_id, label, instances)


# ---------------------------------------------------------------------------------- variants


def copy_uid(original: str, label: str) -> str:
    """The UID a copy labelled ``label`` of the instance with SOP Instance UID ``original`` gets."""
    return derive_uid(_COPY_MARKER, label, original)


def _read(instance: Instance) -> FileDataset:
    """A private, fully decoded dataset of ``instance`` (never the cached ``instance.dataset``).

    Every element is converted from its raw form, so that a sequence read in one transfer syntax
    is re-encoded, not copied byte for byte, when written in another.
    """
    ds = pydicom.dcmread(io.BytesIO(instance.data))
    for _ in ds.iterall():
        pass
    return ds


def _set_sop_uid(ds: FileDataset, uid: str, *, in_dataset: bool = True) -> None:
    if in_dataset:
        ds.SOPInstanceUID = UID(uid)
    ds.file_meta.MediaStorageSOPInstanceUID = UID(uid)


def _dataset_tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(f"{keyword!r} is not a DICOM keyword")
    if tag >> 16 == 0x0002:
        raise ValueError(f"{keyword} is file meta information, not a dataset attribute")
    return tag


def implicit_vr_copy(instance: Instance) -> Instance:
    """``instance`` in Implicit VR Little Endian, with a SOP Instance UID labelled "implicit".

    Raises ValueError for compressed (encapsulated) instances: they need explicit VR.
    """
    ds = _read(instance)
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        raise ValueError(
            f"{instance.name} is compressed: encapsulated pixel data needs explicit VR"
        )
    _set_sop_uid(ds, copy_uid(instance.sop_uid, "implicit"))
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    return Instance(f"{instance.name}-implicit", _encode(ds))


def without_attribute(instance: Instance, keyword: str, new_sop: bool = True) -> Instance:
    """A copy of ``instance`` lacking the top-level attribute ``keyword``.

    With ``new_sop`` the copy gets a SOP Instance UID labelled ``without-<keyword>``. Without
    SOPInstanceUID (or SOPClassUID) the file meta's MediaStorageSOPInstanceUID (or
    MediaStorageSOPClassUID) stays: the fresh UID with ``new_sop``, else the original.
    Raises KeyError if the instance has no such attribute.
    """
    tag = _dataset_tag(keyword)
    ds = _read(instance)
    if tag not in ds:
        raise KeyError(f"{instance.name} has no {keyword}")
    if new_sop:
        _set_sop_uid(
            ds,
            copy_uid(instance.sop_uid, f"without-{keyword}"),
            in_dataset=keyword != "SOPInstanceUID",
        )
    del ds[tag]
    return Instance(f"{instance.name}-without-{keyword}", _encode(ds))


def with_attribute(instance: Instance, keyword: str, value: Any, relabel: str) -> Instance:
    """A copy of ``instance`` with ``keyword`` set to ``value``, written as given.

    The value is not validated, so an invalid one (StudyDate "NotAValidDate", a too-long CS) is
    written raw, exactly as a careless client would send it. The copy gets a SOP Instance UID
    labelled ``relabel``; setting SOPInstanceUID itself overrides that one (file meta follows).
    """
    tag = _dataset_tag(keyword)
    ds = _read(instance)
    _set_sop_uid(ds, copy_uid(instance.sop_uid, relabel))
    # Keep the VR the instance already has; for a new attribute take the dictionary's (the
    # first of an ambiguous "US or SS").
    vr = ds[tag].VR if tag in ds else dictionary_VR(tag).split(" or ")[0]
    ds[tag] = DataElement(tag, vr, value, validation_mode=config.IGNORE)
    return Instance(f"{instance.name}-{relabel}", _encode(ds))


# ---------------------------------------------------------------------------------- the archive

# The search archive: one-instance studies whose study attributes are drawn from small pools, so
# that searches meet ties (the same date on several studies), boundaries (the last day of a year,
# a time of 23:59:59), shared prefixes and case variants. Its dates are in the 1990s, which no
# other study of the suite has. Every study carries the archive's token as its Study ID: a search
# scoped by PatientID and that Study ID sees this archive and nothing else.
ARCHIVE_DATES = ("19940101", "19940102", "19941231", "19950101", "19951231")
ARCHIVE_TIMES = ("000000", "075959", "080000", "120000", "235959")
ARCHIVE_ACCESSIONS = ("AB1", "AB12", "AB21", "Ab1", "XAB1", "AB", "B1", "AB1")
ARCHIVE_NAMES = ("Doe^John", "DOE^JOHN", "Roe^Jane", "Doe^Jo", "Doe^John", "Ro^Jane", "Roe", "Doe")
ARCHIVE_SIZE = len(ARCHIVE_ACCESSIONS)
# Each series' Request Attributes Sequence has two items whose Requested Procedure ID and
# Scheduled Procedure Step ID are crossed: a match that takes its keys from different items
# finds series that no single item matches (PS3.4 C.2.2.2.6).
ARCHIVE_PROCEDURES = ("RP0", "RP1", "RP2")
ARCHIVE_STEPS = ("S0", "S1", "S2")
# Descriptions at three levels, for includefield: each with a space, a caret or a digit a
# careless server could mangle, none in the default attributes of any level.
ARCHIVE_STUDY_DESCRIPTIONS = ("Head^CT", "chest  x", "Chest")
ARCHIVE_SERIES_DESCRIPTIONS = ("Axial 1", "axial", "Axial")
ARCHIVE_BODY_PARTS = ("HEAD", "CHEST")
ARCHIVE_COMMENTS = ("first  comment", "Second.", " leading")
# Acquisition Date Times (an instance attribute): five at offsets from UTC (11:00 at +0100;
# 11:30 at -0500, and half a second later at +0530; a year end at -0100 that is the same moment
# as midnight UTC at +0000), and three without an offset (11:00, 11:30, the year's last second).
ARCHIVE_DATETIMES = (
    "20200101120000+0100", "20200101113000", "20200101063000-0500", "20200101110000",
    "20191231230000-0100", "20200101000000+0000", "20200101170000.5+0530", "20191231235959",
)  # fmt: skip
LEVEL_UIDS = {
    "study": "StudyInstanceUID",
    "series": "SeriesInstanceUID",
    "instance": "SOPInstanceUID",
}


@dataclass(frozen=True)
class SearchArchive(Study):
    """One run's search archive: ARCHIVE_SIZE studies of one instance each."""

    instances: tuple[Instance, ...]
    token: str  # the Study ID of every study in it

    @property
    def study_uids(self) -> list[str]:
        return [str(instance.dataset.StudyInstanceUID) for instance in self.instances]

    def datasets(self, level: str = "study") -> dict[str, Dataset]:
        """The level's UID (study, series or instance) -> what was stored. Each study holds one
        series of one instance, so the three levels name the same datasets."""
        keyword = LEVEL_UIDS[level]
        return {str(i.dataset[keyword].value): i.dataset for i in self.instances}

    def entities(self, level: str = "study") -> dict[str, dict[str, Any]]:
        """The level's UID -> every attribute stored but the pixels, as DICOM JSON (what the
        model searches)."""
        return {
            uid: {tag: v for tag, v in ds.to_json_dict().items() if tag != "7FE00010"}
            for uid, ds in self.datasets(level).items()
        }


def _request_item(procedure: str, step: str) -> Dataset:
    item = Dataset()
    item.RequestedProcedureID = procedure
    item.ScheduledProcedureStepID = step
    return item


def search_archive(run_id: str, label: str) -> SearchArchive:
    token = f"Q{_short_hash(run_id, label)[:9]}"
    instances = []
    for i in range(ARCHIVE_SIZE):
        name = f"archive-{i}"
        sop_uid = derive_uid(run_id, label, name)
        ds = FileDataset(
            f"{name}.dcm",
            Dataset(),
            file_meta=_file_meta(SECONDARY_CAPTURE, sop_uid),
            preamble=b"\0" * 128,
        )
        ds.SOPClassUID = UID(SECONDARY_CAPTURE)
        ds.SOPInstanceUID = UID(sop_uid)
        ds.PatientName = ARCHIVE_NAMES[i]
        ds.PatientID = run_patient_id(run_id)
        ds.StudyInstanceUID = UID(derive_uid(run_id, label, f"study/{i}"))
        ds.StudyDate = ARCHIVE_DATES[i % len(ARCHIVE_DATES)]
        ds.StudyTime = ARCHIVE_TIMES[(i * 3) % len(ARCHIVE_TIMES)]
        ds.ReferringPhysicianName = ""
        ds.StudyID = token
        ds.AccessionNumber = ARCHIVE_ACCESSIONS[i]
        ds.RequestAttributesSequence = Sequence(
            [
                _request_item(ARCHIVE_PROCEDURES[(i + k) % 3], ARCHIVE_STEPS[(i + 1 - k) % 3])
                for k in (0, 1)
            ]
        )
        ds.StudyDescription = ARCHIVE_STUDY_DESCRIPTIONS[i % 3]
        ds.Modality = ("OT", "SC")[i % 2]
        ds.SeriesInstanceUID = UID(derive_uid(run_id, label, f"series/{i}"))
        ds.SeriesNumber = i % 3 + 1
        ds.SeriesDescription = ARCHIVE_SERIES_DESCRIPTIONS[i % 3]
        ds.BodyPartExamined = ARCHIVE_BODY_PARTS[i % 2]
        ds.InstanceNumber = i % 2 + 1
        ds.ImageComments = ARCHIVE_COMMENTS[i % 3]
        ds.AcquisitionDateTime = ARCHIVE_DATETIMES[i]
        ds.ConversionType = "WSD"
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = 2, 2
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PixelData = bytes([i, 0, 0, i])
        ds["PixelData"].VR = "OB"
        instances.append(Instance(name, _encode(ds)))
    return SearchArchive(instances=tuple(instances), token=token)


# ---------------------------------------------------------------------------------- generated


def generated_instance(
    patient_id: str,
    study_uid: str,
    sop_uid: str,
    charset: str | None,
    elements: list[tuple[int, str, Any]],
    series: int = 1,
) -> Instance:
    """A 2x2 Secondary Capture instance in ``study_uid`` (series ``{study_uid}.{series}``) with
    ``elements`` (tag, VR, value) added, encoded in ``charset`` (its Specific Character Set;
    None: the default repertoire). Private tags come with their creator, (0099,0010)
    "DWCONF GENERATED"."""
    ds = FileDataset(
        "generated.dcm",
        Dataset(),
        file_meta=_file_meta(SECONDARY_CAPTURE, sop_uid),
        preamble=b"\0" * 128,
    )
    if charset is not None:
        ds.SpecificCharacterSet = charset.split("\\") if "\\" in charset else charset
    ds.SOPClassUID = UID(SECONDARY_CAPTURE)
    ds.SOPInstanceUID = UID(sop_uid)
    ds.PatientName = "Generated^Instance"
    ds.PatientID = patient_id
    ds.StudyInstanceUID = UID(study_uid)
    ds.SeriesInstanceUID = UID(f"{study_uid}.{series}")
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = 2, 2
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = bytes(4)
    ds["PixelData"].VR = "OB"
    if any(tag >> 16 == GENERATED_GROUP for tag, _, _ in elements):
        ds.add_new((GENERATED_GROUP << 16) | 0x0010, "LO", GENERATED_CREATOR)
    for tag, vr, value in elements:
        ds.add_new(tag, vr, value)
    return Instance(f"generated-{sop_uid[-6:]}", _encode(ds))


GENERATED_GROUP = 0x0099
GENERATED_CREATOR = "DWCONF GENERATED"
