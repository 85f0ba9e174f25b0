"""Per-run copies of the samples: fresh UIDs, the article's structure, the run's marker."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from conformance import samples
from conformance.cleanup import orthanc_root

ARTICLE_STUDY = "1.2.826.0.1.3680043.8.498.13230779778012324449356534479549187420"


def test_default_samples_are_the_articles_study() -> None:
    study = samples.load()
    assert study.study_uid == ARTICLE_STUDY
    assert [i.name for i in study] == list(samples.SAMPLE_NAMES)
    assert study.red.series_uid == study.green.series_uid != study.blue.series_uid


def test_fresh_copy_keeps_the_structure_with_new_uids_and_the_run_marker() -> None:
    template = samples.load()
    copy = samples.fresh_copy(template, "run1", "label")
    assert len({i.study_uid for i in copy}) == 1
    assert copy.red.series_uid == copy.green.series_uid != copy.blue.series_uid
    old = {i.study_uid for i in template} | {i.series_uid for i in template} | template.sop_uids
    new = {i.study_uid for i in copy} | {i.series_uid for i in copy} | copy.sop_uids
    assert not old & new
    for instance in copy:
        ds = instance.dataset
        assert all(
            len(uid) <= 64 and uid.startswith("2.25.")
            for uid in (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        )
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.PatientID == "DWC-run1"
        assert "run1" in ds.StudyDescription
        assert ds.PatientName == "Anony Mous"  # everything else is the article's
        assert ds.PixelData == template[instance.name].dataset.PixelData


def test_a_light_copy_keeps_the_top_left_pixels_and_every_other_attribute() -> None:
    template = samples.load()
    full = samples.fresh_copy(template, "run-1", "label")
    light = samples.fresh_copy(template, "run-1", "label", light=True)
    for big, small in zip(full, light, strict=True):
        a, b = big.dataset, small.dataset
        assert (b.Rows, b.Columns) == (8, 8) and len(small.data) < 2000
        stride = a.Columns * 3  # RGB, 8 bits, interleaved
        top_left = b"".join(a.PixelData[r * stride : r * stride + 24] for r in range(8))
        assert b.PixelData == top_left
        assert b.pixel_array.shape == (8, 8, 3)
        kept = {e.keyword for e in a if e.keyword not in ("Rows", "Columns", "PixelData")}
        assert all(a[k] == b[k] for k in kept)


def test_copies_differ_by_run_and_label_and_repeat_for_the_same_pair() -> None:
    template = samples.load()
    a = samples.fresh_copy(template, "run1", "x")
    assert samples.fresh_copy(template, "run1", "x").sop_uids == a.sop_uids
    assert not samples.fresh_copy(template, "run1", "y").sop_uids & a.sop_uids
    assert not samples.fresh_copy(template, "run2", "x").sop_uids & a.sop_uids


def test_load_rejects_missing_or_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(samples.SampleError, match="sample file missing"):
        samples.load(tmp_path)
    source = samples.default_directory()
    for name in samples.SAMPLE_NAMES:
        shutil.copy(source / f"{name}.dcm", tmp_path / f"{name}.dcm")
    samples.load(tmp_path)  # the user's own copies of the article's files are fine
    shutil.copy(source / "blue-circle.dcm", tmp_path / "red-triangle.dcm")
    with pytest.raises(samples.SampleError, match="not the article's study"):
        samples.load(tmp_path)
    (tmp_path / "red-triangle.dcm").write_bytes(b"not dicom")
    with pytest.raises(samples.SampleError, match="not readable DICOM"):
        samples.load(tmp_path)


def test_orthanc_root_drops_the_dicomweb_segment() -> None:
    assert orthanc_root("http://h:8042/dicom-web") == "http://h:8042"
    assert orthanc_root("http://h:8042/orthanc/dicom-web/") == "http://h:8042/orthanc"


def test_a_study_shows_itself_in_a_line_not_in_megabytes() -> None:
    # pytest prints fixture values in failure reports: a repr of the bytes cost megabytes each.
    study = samples.load()
    text = repr(study)
    assert len(text) < 400
    assert "Instance('blue-circle', " in text and " bytes)" in text
