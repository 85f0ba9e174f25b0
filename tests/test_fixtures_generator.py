"""The committed sample files are the generator's output and match Microsoft's samples."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pydicom
import pytest
from conformance.fixtures import generate

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# Microsoft's originals, kept outside the repository for comparison only.
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference-samples"
needs_reference = pytest.mark.skipif(
    not REFERENCE.is_dir(),
    reason=f"Microsoft's reference samples not found at {REFERENCE}; comparison skipped",
)

NAMES = ("blue-circle", "green-square", "red-triangle")
CSV_NAME = "dicom-metadata.csv"
STUDY = "1.2.826.0.1.3680043.8.498.13230779778012324449356534479549187420"
SERIES_1 = "1.2.826.0.1.3680043.8.498.45787841905473114233124723359129632652"
SERIES_2 = "1.2.826.0.1.3680043.8.498.77033797676425927098669402985243398207"

COMMON: dict[str, Any] = {
    "SpecificCharacterSet": "ISO_IR 192",
    "ImageType": ["DERIVED", "SECONDARY", "OTHER"],
    "SOPClassUID": "1.2.840.10008.5.1.4.1.1.7",
    "StudyDate": "20200922",
    "ContentDate": "",
    "AcquisitionDateTime": "",
    "StudyTime": "120000",
    "ContentTime": "",
    "AccessionNumber": "",
    "Modality": "OT",
    "ConversionType": "SYN",
    "ReferringPhysicianName": "Doctor Doc",
    "PatientName": "Anony Mous",
    "PatientID": "ID1",
    "PatientBirthDate": "",
    "PatientSex": "F",
    "PatientAge": "024Y",
    "PatientPosition": "",
    "StudyInstanceUID": STUDY,
    "StudyID": "1",
    "PatientOrientation": "",
    "Laterality": "",
    "SamplesPerPixel": 3,
    "PhotometricInterpretation": "RGB",
    "PlanarConfiguration": 0,
    "Rows": 979,
    "Columns": 985,
    "PixelSpacing": [1.0, 1.0],
    "BitsAllocated": 8,
    "BitsStored": 8,
    "HighBit": 7,
    "PixelRepresentation": 0,
    "SmallestImagePixelValue": 0,
    "LargestImagePixelValue": 255,
}
PER_FILE: dict[str, dict[str, Any]] = {
    "blue-circle": {
        "SOPInstanceUID": "1.2.826.0.1.3680043.8.498.13273713909719068980354078852867170114",
        "SeriesInstanceUID": SERIES_2,
        "SeriesNumber": 2,
        "InstanceNumber": 1,
        "ImageComments": "Fake DICOM - Blue Circle",
    },
    "green-square": {
        "SOPInstanceUID": "1.2.826.0.1.3680043.8.498.12714725698140337137334606354172323212",
        "SeriesInstanceUID": SERIES_1,
        "SeriesNumber": 1,
        "InstanceNumber": 2,
        "ImageComments": "Fake DICOM - Green Square",
    },
    "red-triangle": {
        "SOPInstanceUID": "1.2.826.0.1.3680043.8.498.47359123102728459884412887463296905395",
        "SeriesInstanceUID": SERIES_1,
        "SeriesNumber": 1,
        "InstanceNumber": 1,
        "ImageComments": "Fake DICOM - Red Triangle",
    },
}

BACKGROUND = (195, 195, 195)
COLOUR = {
    "blue-circle": (63, 72, 204),
    "green-square": (34, 177, 76),
    "red-triangle": (237, 28, 36),
}
CENTRE = {"blue-circle": (510, 491), "green-square": (488, 492), "red-triangle": (560, 478)}
CORNERS = [(0, 0), (0, 984), (978, 0), (978, 984)]
# (row, col) -> the one shape covering it: near the square's top-left corner (outside the
# circle and the triangle), the circle's left edge, and the triangle's bottom-left corner.
ONLY_IN = {(250, 250): "green-square", (510, 220): "blue-circle", (710, 200): "red-triangle"}


def _pixels(path: Path) -> npt.NDArray[np.uint8]:
    ds = pydicom.dcmread(path)
    frame = np.frombuffer(ds.PixelData, dtype=np.uint8)[: ds.Rows * ds.Columns * 3]
    return frame.reshape(ds.Rows, ds.Columns, 3)


def _assert_shape(pixels: npt.NDArray[np.uint8], name: str) -> None:
    assert tuple(pixels[CENTRE[name]]) == COLOUR[name]
    for corner in CORNERS:
        assert tuple(pixels[corner]) == BACKGROUND, corner
    for point, owner in ONLY_IN.items():
        expected = COLOUR[name] if owner == name else BACKGROUND
        assert tuple(pixels[point]) == expected, point


def test_public_names() -> None:
    assert generate.SAMPLE_NAMES == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_committed_sample_is_generator_output(name: str) -> None:
    assert (FIXTURES / f"{name}.dcm").read_bytes() == generate.sample_bytes(name)


def test_committed_csv_is_generator_output() -> None:
    assert (FIXTURES / CSV_NAME).read_bytes() == generate.metadata_csv().encode("utf-8")


def test_write_all_and_check(tmp_path: Path) -> None:
    paths = generate.write_all(tmp_path)
    assert sorted(p.name for p in paths) == sorted([f"{n}.dcm" for n in NAMES] + [CSV_NAME])
    for path in paths:
        assert path.read_bytes() == (FIXTURES / path.name).read_bytes()
    assert generate.main(["--out", str(FIXTURES), "--check"]) == 0
    assert generate.main(["--out", str(tmp_path), "--check"]) == 0
    (tmp_path / "green-square.dcm").write_bytes(b"stale")
    assert generate.main(["--out", str(tmp_path), "--check"]) == 1


@pytest.mark.parametrize("name", NAMES)
def test_attribute_values(name: str) -> None:
    raw = (FIXTURES / f"{name}.dcm").read_bytes()
    assert raw[:132] == bytes(128) + b"DICM"
    ds = pydicom.dcmread(FIXTURES / f"{name}.dcm")
    meta = ds.file_meta
    assert "FileMetaInformationGroupLength" in meta
    assert meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert meta.MediaStorageSOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert meta.MediaStorageSOPInstanceUID == PER_FILE[name]["SOPInstanceUID"]
    assert meta.ImplementationClassUID.startswith("2.25.")
    assert meta.ImplementationVersionName == "DWCONF_GEN_1"
    for keyword, value in {**COMMON, **PER_FILE[name]}.items():
        assert ds[keyword].value == value, keyword
    for keyword in ("SmallestImagePixelValue", "LargestImagePixelValue"):
        assert ds[keyword].VR == "US"
    assert ds["PixelData"].VR == "OB"
    assert len(ds.PixelData) == 979 * 985 * 3 + 1
    assert ds.PixelData[-1] == 0


@pytest.mark.parametrize("name", NAMES)
def test_pixels_show_the_shape(name: str) -> None:
    _assert_shape(_pixels(FIXTURES / f"{name}.dcm"), name)


@needs_reference
def test_csv_matches_reference() -> None:
    with (FIXTURES / CSV_NAME).open(newline="") as ours_file:
        ours = list(csv.reader(ours_file))
    with (REFERENCE / CSV_NAME).open(newline="") as theirs_file:
        theirs = list(csv.reader(theirs_file))
    assert ours[0] == theirs[0]
    assert len(ours) == len(theirs)
    fname = ours[0].index("fname")
    for our_row, their_row in zip(ours[1:], theirs[1:], strict=True):
        assert our_row[:fname] + our_row[fname + 1 :] == their_row[:fname] + their_row[fname + 1 :]
        assert their_row[fname].endswith("\\" + our_row[fname])
    # Same line endings (the original uses LF) and trailing newline.
    assert (FIXTURES / CSV_NAME).read_bytes().count(b"\r") == 0
    assert (REFERENCE / CSV_NAME).read_bytes().count(b"\r") == 0


@needs_reference
@pytest.mark.parametrize("name", NAMES)
def test_elements_match_reference(name: str) -> None:
    ours = pydicom.dcmread(FIXTURES / f"{name}.dcm")
    theirs = pydicom.dcmread(REFERENCE / f"{name}.dcm")
    # Iterating a dataset skips the file meta (group 0002), which is ours by design.
    assert [e.tag for e in ours] == [e.tag for e in theirs]
    for their in theirs:
        our = ours[their.tag]
        assert our.VR == their.VR, their.keyword
        if their.keyword == "PixelData":
            assert len(our.value) == len(their.value)
        else:
            assert our.value == their.value, their.keyword


@needs_reference
@pytest.mark.parametrize("name", NAMES)
def test_reference_pixels_agree(name: str) -> None:
    theirs = _pixels(REFERENCE / f"{name}.dcm")
    _assert_shape(theirs, name)  # the probe table describes the real samples too
    # Our shapes are redrawn, not copied: allow a thin seam of edge pixels to differ.
    differing = np.any(_pixels(FIXTURES / f"{name}.dcm") != theirs, axis=2).sum()
    assert differing < 0.001 * theirs.shape[0] * theirs.shape[1]


@needs_reference
@pytest.mark.parametrize("name", NAMES)
def test_not_a_byte_copy_of_reference(name: str) -> None:
    def digest(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    assert digest(FIXTURES / f"{name}.dcm") != digest(REFERENCE / f"{name}.dcm")
