"""The synthetic catalog: deterministic, fresh UIDs, one study, and each instance what it claims."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from conformance import samples, synthetic
from conformance.samples import Instance

RUN, LABEL = "run1", "catalog"


@pytest.fixture(scope="module")
def study() -> synthetic.CatalogStudy:
    return synthetic.catalog_study(RUN, LABEL)


def _top_level(ds: Dataset, *skip: str) -> dict[str, object]:
    """Keyword -> value of the top-level elements, sequences as nested dicts."""

    def value(elem: pydicom.DataElement) -> object:
        if elem.VR == "SQ":
            return [_top_level(item) for item in elem.value]
        return elem.value

    return {elem.keyword: value(elem) for elem in ds if elem.keyword not in skip}


def test_same_run_and_label_give_identical_bytes(study: synthetic.CatalogStudy) -> None:
    again = synthetic.catalog_study(RUN, LABEL)
    assert [i.name for i in again] == list(synthetic.CATALOG_NAMES)
    assert [i.data for i in again] == [i.data for i in study]
    assert synthetic.implicit_vr_copy(study.multiframe).data == (
        synthetic.implicit_vr_copy(again.multiframe).data
    )


def test_uids_are_fresh_per_run_and_label(study: synthetic.CatalogStudy) -> None:
    def uids(s: synthetic.CatalogStudy) -> set[str]:
        return s.sop_uids | set(s.series_uids) | {s.study_uid}

    assert not uids(synthetic.catalog_study(RUN, "other")) & uids(study)
    assert not uids(synthetic.catalog_study("run2", LABEL)) & uids(study)
    article = samples.load()
    assert not uids(study) & (article.sop_uids | {article.study_uid})
    for instance in study:
        assert instance.sop_uid == samples.derive_uid(RUN, LABEL, instance.name)
        for uid in (instance.study_uid, instance.series_uid, instance.sop_uid):
            assert uid.startswith("2.25.") and len(uid) <= 64


def test_all_in_one_study_with_the_run_marker(study: synthetic.CatalogStudy) -> None:
    assert len(study) == len(synthetic.CATALOG_NAMES) == len(study.sop_uids)
    assert {i.study_uid for i in study} == {study.study_uid}
    assert len(study.series_uids) == 5
    charset_series = study.charset_latin.series_uid
    assert study.in_series(charset_series) == list(study.charsets)
    assert study.in_series(study.multiframe.series_uid) == [study.multiframe]
    for instance in study:
        ds = instance.dataset
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
        assert instance.data[128:132] == b"DICM"
        assert ds.PatientID == samples.run_patient_id(RUN)
        assert ds.StudyDescription == f"dicomweb-conformance run {RUN}"
        assert ds.ReferringPhysicianName == "Doctor^Synthetic"
        assert (ds.StudyDate, ds.StudyTime, ds.StudyID) == ("20200922", "120000", "DWC1")
        assert (ds.PatientSex, ds.PatientBirthDate) == ("O", "19700101")
        assert ds.AccessionNumber == study.accession_number
        assert ds.SeriesNumber and ds.InstanceNumber
        assert ds.Modality == ("SR" if instance.name == "no_pixels" else "OT")
        if "PixelData" in ds:
            assert ds.ConversionType == "WSD"
            assert list(ds.ImageType) == ["DERIVED", "SECONDARY"]
            assert (ds.SamplesPerPixel, ds.PhotometricInterpretation) == (1, "MONOCHROME2")
            assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (8, 8, 7)
            assert ds.PixelRepresentation == 0
        if instance.name != "compressed":
            assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian


def test_frames_are_distinct_and_match_the_decoded_pixel_array(
    study: synthetic.CatalogStudy,
) -> None:
    ds = study.multiframe.dataset
    assert ds.SOPClassUID == synthetic.MULTIFRAME_GRAYSCALE_BYTE_SC
    assert (ds.NumberOfFrames, ds.Rows, ds.Columns) == (4, 16, 16)
    array = ds.pixel_array
    assert array.shape == (4, 16, 16) and array.dtype == np.uint8
    frames = [study.frame_bytes(k) for k in range(1, 5)]
    for k, frame in enumerate(frames, start=1):
        assert frame == array[k - 1].tobytes()
        assert len(frame) == 16 * 16
    assert len(set(frames)) == 4
    assert b"".join(frames) == ds.PixelData
    # Easily told apart: no byte value occurs in two frames.
    assert not set(frames[0]) & set(frames[1])
    with pytest.raises(IndexError):
        study.frame_bytes(5)
    with pytest.raises(IndexError):
        study.frame_bytes(0)


def test_rle_instance_decodes_to_compressed_pixels(study: synthetic.CatalogStudy) -> None:
    ds = study.compressed.dataset
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.RLELossless == "1.2.840.10008.1.2.5"
    assert (ds.Rows, ds.Columns) == (32, 32)
    assert ds["PixelData"].is_undefined_length  # encapsulated
    assert ds.PixelData != study.compressed_pixels()
    assert ds.pixel_array.tobytes() == study.compressed_pixels()
    assert len(study.compressed_pixels()) == 32 * 32


def test_text_sr_has_no_pixel_data_and_a_content_tree(study: synthetic.CatalogStudy) -> None:
    ds = study.no_pixels.dataset
    assert ds.SOPClassUID == synthetic.BASIC_TEXT_SR
    assert "PixelData" not in ds and "Rows" not in ds
    assert ds.ValueType == "CONTAINER"
    assert ds.ConceptNameCodeSequence[0].CodeValue
    (item,) = ds.ContentSequence
    assert (item.RelationshipType, item.ValueType) == ("CONTAINS", "TEXT")
    assert item.TextValue and item.ConceptNameCodeSequence[0].CodeMeaning == "Finding"
    assert (ds.CompletionFlag, ds.VerificationFlag) == ("COMPLETE", "UNVERIFIED")


def test_character_sets_round_trip(study: synthetic.CatalogStudy) -> None:
    latin = study.charset_latin.dataset
    assert latin.SpecificCharacterSet == "ISO_IR 192"
    assert (latin.PatientName.family_name, latin.PatientName.given_name) == ("Müller", "Jürgen")
    assert "Müller^Jürgen".encode() in study.charset_latin.data

    name = study.charset_ideographic.dataset.PatientName
    assert study.charset_ideographic.dataset.SpecificCharacterSet == "ISO_IR 192"
    assert (name.alphabetic, name.ideographic, name.phonetic) == (
        "Yamada^Tarou",
        "山田^太郎",
        "やまだ^たろう",
    )

    greek = study.charset_greek
    assert greek.dataset.SpecificCharacterSet == "ISO_IR 126"
    assert str(greek.dataset.PatientName) == "Διονυσιος"
    assert "Διονυσιος".encode("iso8859_7") in greek.data
    assert "Διονυσιος".encode() not in greek.data


def test_request_attributes_sequence(study: synthetic.CatalogStudy) -> None:
    ds = study.sequence.dataset
    (item,) = ds.RequestAttributesSequence
    assert item.ScheduledProcedureStepID == study.scheduled_procedure_step_id
    assert item.RequestedProcedureID == study.requested_procedure_id
    assert ds.AccessionNumber == study.accession_number
    for value, prefix in (
        (study.scheduled_procedure_step_id, "SPS-"),
        (study.requested_procedure_id, "RP-"),
        (study.accession_number, "ACC-"),
    ):
        assert value.startswith(prefix) and len(value) <= 16 and len(value) > len(prefix)
    other = synthetic.catalog_study(RUN, "other")
    assert other.scheduled_procedure_step_id != study.scheduled_procedure_step_id


@pytest.mark.parametrize("name", [n for n in synthetic.CATALOG_NAMES if n != "compressed"])
def test_implicit_copy_reads_back_equal_but_for_the_sop_uid(
    study: synthetic.CatalogStudy, name: str
) -> None:
    original = study[name]
    copy = synthetic.implicit_vr_copy(original)
    ds = copy.dataset
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    assert copy.sop_uid == synthetic.copy_uid(original.sop_uid, "implicit") != original.sop_uid
    assert ds.file_meta.MediaStorageSOPInstanceUID == copy.sop_uid
    # Read straight from the bytes, not from a fresh parse of the explicit file.
    reread = pydicom.dcmread(io.BytesIO(copy.data))
    assert _top_level(reread, "SOPInstanceUID") == _top_level(original.dataset, "SOPInstanceUID")
    assert str(reread.PatientName) == str(original.dataset.PatientName)


def test_implicit_copy_refuses_compressed(study: synthetic.CatalogStudy) -> None:
    with pytest.raises(ValueError, match="compressed"):
        synthetic.implicit_vr_copy(study.compressed)


def test_without_attribute_removes_it(study: synthetic.CatalogStudy) -> None:
    original = study.charset_latin
    copy = synthetic.without_attribute(original, "PatientName")
    assert "PatientName" not in copy.dataset
    assert copy.sop_uid == synthetic.copy_uid(original.sop_uid, "without-PatientName")
    assert copy.dataset.file_meta.MediaStorageSOPInstanceUID == copy.sop_uid
    assert _top_level(copy.dataset, "SOPInstanceUID") == _top_level(
        original.dataset, "SOPInstanceUID", "PatientName"
    )

    same_sop = synthetic.without_attribute(original, "StudyDate", new_sop=False)
    assert "StudyDate" not in same_sop.dataset and same_sop.sop_uid == original.sop_uid

    no_sop = synthetic.without_attribute(original, "SOPInstanceUID")
    assert "SOPInstanceUID" not in no_sop.dataset
    meta_uid = no_sop.dataset.file_meta.MediaStorageSOPInstanceUID
    assert meta_uid == synthetic.copy_uid(original.sop_uid, "without-SOPInstanceUID")
    kept = synthetic.without_attribute(original, "SOPInstanceUID", new_sop=False)
    assert kept.dataset.file_meta.MediaStorageSOPInstanceUID == original.sop_uid

    with pytest.raises(KeyError):
        synthetic.without_attribute(study.no_pixels, "PixelData")
    with pytest.raises(KeyError):
        synthetic.without_attribute(original, "NoSuchKeyword")
    with pytest.raises(ValueError, match="file meta"):
        synthetic.without_attribute(original, "TransferSyntaxUID")


def test_with_attribute_writes_even_invalid_values_raw(study: synthetic.CatalogStudy) -> None:
    original = study.sequence
    copy = synthetic.with_attribute(original, "StudyDate", "NotAValidDate", "bad-date")
    assert copy.name == "sequence-bad-date"
    assert copy.sop_uid == synthetic.copy_uid(original.sop_uid, "bad-date") != original.sop_uid
    assert b"DA\x0e\x00NotAValidDate " in copy.data  # padded to even length, VR kept
    with warnings.catch_warnings():  # pydicom may warn about the value it reads back
        warnings.simplefilter("ignore")
        assert copy.dataset.StudyDate == "NotAValidDate"
    assert "RequestAttributesSequence" in copy.dataset

    added = synthetic.with_attribute(original, "InstitutionName", "Nowhere", "institution")
    assert added.dataset.InstitutionName == "Nowhere" and "InstitutionName" in added.dataset
    assert isinstance(added, Instance)
