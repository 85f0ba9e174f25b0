"""The foreign archive (tests/heldarchive.py) holds what the brief of issue 23 asks of data the
suite never stored, the same bytes every time."""

from __future__ import annotations

import io

import heldarchive
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import RLELossless

from conformance import synthetic
from conformance.samples import MARKER_PREFIX


def datasets() -> list[Dataset]:
    return [pydicom.dcmread(io.BytesIO(i.data)) for i in heldarchive.held_archive().instances]


def test_the_same_bytes_every_time() -> None:
    first, again = heldarchive.held_archive(), heldarchive.held_archive()
    assert [i.data for i in first.instances] == [i.data for i in again.instances]


def test_three_patients_five_studies_most_recent_first() -> None:
    archive = heldarchive.held_archive()
    all_ds = datasets()
    assert len({str(ds.PatientID) for ds in all_ds}) == 3
    assert len(archive.study_uids) == 5
    when = [
        (str(ds.StudyDate), str(ds.StudyTime))
        for uid in archive.study_uids
        for ds in [archive.of_study(uid)[0].dataset]
    ]
    assert when == sorted(when, reverse=True) and len(set(when)) == 5
    modalities = {str(i.dataset.Modality) for i in archive.of_study(archive.study_uids[0])}
    assert modalities == {"MR", "CT", "SR"}  # the study a run reads first is multi-modality


def test_never_data_a_run_stores() -> None:
    all_ds = datasets()
    uids = {str(ds[k].value) for ds in all_ds for k in ("StudyInstanceUID", "SOPInstanceUID")}
    assert all(u.startswith("2.25.") and len(u) <= 64 for u in uids)
    assert not any(str(ds.PatientID).startswith(MARKER_PREFIX) for ds in all_ds)
    catalog = {i.sop_uid for i in synthetic.catalog_study("any run", "label")}
    assert not uids & catalog


def test_character_sets_names_with_a_caret_and_sequences() -> None:
    all_ds = datasets()
    charsets = {str(ds.SpecificCharacterSet) for ds in all_ds}
    assert {"ISO_IR 100", "ISO_IR 192", "ISO_IR 126", "['', 'ISO 2022 IR 87']"} == charsets
    assert all("^" in str(ds.PatientName) for ds in all_ds)
    japanese = next(ds for ds in all_ds if "ISO 2022 IR 87" in ds.SpecificCharacterSet)
    assert "山田^太郎" in str(japanese.PatientName)
    assert b"\x1b$B" in japanese["PatientName"].value.original_string  # JIS X 0208 escape
    images = [ds for ds in all_ds if "PixelData" in ds]
    assert all(len(ds.RequestAttributesSequence) == 1 for ds in images)
    assert sum("ReferencedStudySequence" in ds for ds in all_ds) == len(all_ds) - 4


def test_private_tags_multiframe_compressed_and_a_report() -> None:
    all_ds = datasets()
    images = [ds for ds in all_ds if "PixelData" in ds]
    for ds in images:
        block = ds.private_block(heldarchive.PRIVATE_GROUP, heldarchive.PRIVATE_CREATOR)
        assert [block[e].value is not None for e in (1, 2, 3)] == [True] * 3
        assert 8 <= ds.Rows <= 32 and 8 <= ds.Columns <= 32
    multiframe = [ds for ds in images if int(ds.get("NumberOfFrames", 1)) > 1]
    assert len(multiframe) == 1 and multiframe[0].pixel_array.shape == (4, 16, 16)
    rle = [ds for ds in images if ds.file_meta.TransferSyntaxUID == RLELossless]
    assert len(rle) == 2 and rle[0].pixel_array.shape == (32, 32)
    reports = [ds for ds in all_ds if "PixelData" not in ds]
    assert len(reports) == 1 and reports[0].Modality == "SR" and reports[0].ContentSequence
