"""STOW-RS failures (PS3.18 10.5.3, Table 10.5.3-1, Annex I): what a store refuses, in whole or
in part, is answered with its status and Failure Reasons, and nothing refused is stored. The
helpers are test_stow.py's.
"""

from __future__ import annotations

import json

import pytest
import requests
from pydicom.dataset import Dataset

from conformance import expect, multipart
from conformance.checks.test_stow import (
    DICOM_STATUS_WARNING,
    RFC7234_WARNING,
    assert_failed,
    assert_not_stored,
    assert_references,
    assert_round_trip,
    assert_stored,
    field_lines,
    media_type_of,
    post,
    raw_multipart,
    read_back,
)
from conformance.client import Client
from conformance.dicomweb import (
    DICOM,
    DICOM_JSON,
    OCTET_STREAM,
    REFERENCED_SOP_SEQUENCE,
    SOP_UID,
    failed_sop_uids,
    failure_reasons,
    referenced_sop_uids,
    search,
    search_results,
    sequence_items,
    store_module,
    store_module_if_any,
    stow,
    uids,
    warning_reasons,
)
from conformance.run.fixtures import NewStudy, NewSynthetic
from conformance.samples import Instance
from conformance.synthetic import implicit_vr_copy

# --- failures -------------------------------------------------------------------------------------


def post_to_other_study(
    dicomweb: Client, new_study: NewStudy
) -> tuple[requests.Response, Instance]:
    """POST /studies/{A} with an instance of study B; return the answer and that instance."""
    target, other = new_study(), new_study()
    return stow(dicomweb, [other.green], study_uid=target.study_uid), other.green


@pytest.mark.requirement("STOW-STUDY-MISMATCH-409")
def test_study_path_mismatch_answers_409(dicomweb: Client, new_study: NewStudy) -> None:
    response, _ = post_to_other_study(dicomweb, new_study)
    expect.status(response, 409, why="Table 10.5.3-1 names a Study Instance UID mismatch")


@pytest.mark.requirement("STOW-STUDY-MISMATCH-FAILED-SOP")
def test_study_path_mismatch_lists_the_instance_as_failed(
    dicomweb: Client, new_study: NewStudy
) -> None:
    response, instance = post_to_other_study(dicomweb, new_study)
    expect.answered(response, 409)
    module = store_module_if_any(response)
    if module is None:
        expect.info(
            "the 409 carries no Store Instances Response Module (a failure payload is optional, "
            "10.5.3.3)"
        )
    assert_failed(module, instance)
    assert instance.sop_uid not in referenced_sop_uids(module), (
        "the refused instance is also listed in ReferencedSOPSequence"
    )


@pytest.mark.requirement("STOW-STUDY-MISMATCH-NOT-STORED")
def test_study_path_mismatch_stores_nothing(dicomweb: Client, new_study: NewStudy) -> None:
    response, instance = post_to_other_study(dicomweb, new_study)
    assert response.status_code not in (200, 202) or instance.sop_uid not in referenced_sop_uids(
        store_module(response)
    ), f"the store answered {response.status_code} and references the mismatched instance"
    assert_not_stored(dicomweb, instance, why="an instance of another study must not be stored")


@pytest.mark.requirement("STOW-FAILURE-CONTENT-TYPE")
def test_failure_response_with_a_body_has_a_content_type(
    dicomweb: Client, new_study: NewStudy
) -> None:
    response, _ = post_to_other_study(dicomweb, new_study)
    expect.answered(response, 400, 409)
    if not response.content.strip():
        expect.info(f"the {response.status_code} failure answer has no body")
    # Every field line: a second one is STOW-FAILURE-CONTENT-TYPE-SINGLE's breach, not this one's.
    lines = field_lines(response, "Content-Type")
    assert lines, (
        f"the {response.status_code} answer has a {len(response.content)}-byte body but no "
        "Content-Type"
    )
    if store_module_if_any(response) is not None:
        assert DICOM_JSON in [media_type_of(line) for line in lines], (
            f"the failure answer is a DICOM JSON module sent with Content-Type {lines}"
        )


@pytest.mark.requirement("STOW-FAILURE-CONTENT-TYPE-SINGLE")
def test_store_answers_have_one_content_type_field(dicomweb: Client, new_study: NewStudy) -> None:
    answers = {
        "a new instance": stow(dicomweb, [new_study().blue]),
        "an instance of another study": post_to_other_study(dicomweb, new_study)[0],
    }
    for what, response in answers.items():
        lines = field_lines(response, "Content-Type")
        assert len(lines) <= 1, (
            f"the {response.status_code} answer to {what} has {len(lines)} Content-Type field "
            f"lines {lines}: Content-Type is a singleton field (RFC 9110 5.3, 8.3)"
        )


@pytest.mark.requirement("STOW-NON-DICOM-REJECTED")
def test_non_dicom_part_is_refused(dicomweb: Client) -> None:
    body, content_type = multipart.encode_related([b"This is not a DICOM file. " * 40])
    response = post(dicomweb, body, content_type)
    expect.status(response, 400, 409, why="a part that is not a PS3.10 instance stores nothing")
    module = store_module_if_any(response)
    if module is not None:
        assert not sequence_items(module, REFERENCED_SOP_SEQUENCE), (
            f"the refusal references stored instances {referenced_sop_uids(module)}"
        )


def post_good_and_bad(
    dicomweb: Client, new_study: NewStudy
) -> tuple[requests.Response, Instance, Instance, bool]:
    """POST /studies/{A} with an instance of A and one of B: the answer, both instances, and
    whether the good one was stored (read back). The bad one must never be stored."""
    target, other = new_study(), new_study()
    good, bad = target.blue, other.green
    response = stow(dicomweb, [good, bad], study_uid=target.study_uid)
    assert_not_stored(dicomweb, bad, why="an instance of another study must not be stored")
    stored = read_back(dicomweb, good)
    if stored is not None:
        assert_round_trip(stored, good)
    return response, good, bad, stored is not None


@pytest.mark.requirement("STOW-PARTIAL-202")
def test_partial_store_answers_202(dicomweb: Client, new_study: NewStudy) -> None:
    response, good, _, stored = post_good_and_bad(dicomweb, new_study)
    if not stored:
        expect.status(response, 409, why="nothing was stored")
        expect.info("the server refused the whole request (409), storing neither instance")
    expect.status(
        response,
        202,
        why=f"instance {good.sop_uid} was stored and the other refused: 'stored some of the "
        "Instances' is 202; 200 and 409 both misreport it",
    )


@pytest.mark.requirement("STOW-PARTIAL-BOTH-SEQUENCES")
def test_partial_store_lists_the_stored_and_the_refused(
    dicomweb: Client, new_study: NewStudy
) -> None:
    response, good, bad, stored = post_good_and_bad(dicomweb, new_study)
    if response.status_code in (200, 202):
        module = store_module(response)  # a success payload is the module (10.5.3.3)
    else:
        found = store_module_if_any(response)
        if found is None:
            expect.info(
                f"the {response.status_code} refusal carries no Store Instances Response Module "
                "(a failure payload is optional, 10.5.3.3)"
            )
        module = found
    assert_failed(module, bad)
    if not stored:
        assert good.sop_uid not in referenced_sop_uids(module), (
            f"{good.sop_uid} is referenced as stored but answers 404"
        )
        expect.info("the server refused the whole request, storing neither instance")
    assert referenced_sop_uids(module) == [good.sop_uid], (
        f"ReferencedSOPSequence names {referenced_sop_uids(module)}, expected only the stored "
        f"{good.sop_uid}"
    )


@pytest.mark.requirement("STOW-DUPLICATE-STAYS-RETRIEVABLE")
def test_instance_stored_twice_stays_retrievable_and_unique(
    dicomweb: Client, new_study: NewStudy
) -> None:
    blue = new_study().blue
    expect.answered(stow(dicomweb, [blue]), 200)
    again = stow(dicomweb, [blue])
    assert_stored(dicomweb, [blue])
    response = search(
        dicomweb,
        f"studies/{blue.study_uid}/series/{blue.series_uid}/instances",
        SOPInstanceUID=blue.sop_uid,
    )
    expect.status(response, 200)
    found = uids(search_results(response), SOP_UID)
    assert found == [blue.sop_uid], f"after storing it twice, a search finds {found}"
    module = store_module_if_any(again)
    seen = f"the second store answered {again.status_code}"
    if module is not None:
        warning = warning_reasons(module)
        failure = failure_reasons(module)
        seen += f", Warning Reasons {warning}, Failure Reasons {failure}"
    expect.info(seen)


@pytest.mark.requirement("STOW-UNSUPPORTED-CONTENT-TYPE-415")
def test_text_plain_body_answers_415(dicomweb: Client) -> None:
    response = post(dicomweb, b"This is not a DICOM request.", "text/plain")
    expect.status(response, 415)


@pytest.mark.requirement("STOW-MULTIPART-NO-BOUNDARY")
def test_multipart_without_boundary_is_refused(dicomweb: Client, new_study: NewStudy) -> None:
    blue = new_study().blue
    body, _ = multipart.encode_related([blue.data])
    response = post(dicomweb, body, f'multipart/related; type="{DICOM}"')
    expect.status(response, 400, 415, why="a multipart media type shall have a boundary")
    assert_not_stored(dicomweb, blue, why="the request was refused")


@pytest.mark.requirement("STOW-ACCEPT-UNSUPPORTED-406")
def test_store_accepting_only_html_answers_406(dicomweb: Client, new_study: NewStudy) -> None:
    blue = new_study().blue
    body, content_type = multipart.encode_related([blue.data])
    response = post(dicomweb, body, content_type, accept="text/html")
    if expect.chose_406(response):
        return
    lines = field_lines(response, "Content-Type")
    if response.status_code == 200 and DICOM_JSON in [media_type_of(line) for line in lines]:
        expect.chose("default-media-type")
        store_module(response)  # the body is the response module, in that media type
        assert read_back(dicomweb, blue) is not None, (
            f"the store answered 200 in {DICOM_JSON}, but instance {blue.sop_uid} answers 404"
        )
        return
    raise AssertionError(
        f"a store accepting only text/html answered {response.status_code} with Content-Type "
        f"{lines}: neither 406 (8.7.8.1) nor 200 in the Store transaction's default media type "
        f"{DICOM_JSON} (Table 8.7.3-1, Table 10.5.4-1)"
    )


@pytest.mark.requirement("STOW-PART-EXTRA-HEADERS")
def test_parts_with_extra_headers_are_stored(dicomweb: Client, new_study: NewStudy) -> None:
    blue = new_study().blue
    body, content_type = multipart.encode_related(
        [blue.data],
        part_headers={
            "Content-Disposition": 'form-data; name="file"; filename="blue-circle.dcm"',
            "Content-Length": str(len(blue.data)),
        },
    )
    response = post(dicomweb, body, content_type)
    expect.status(response, 200)
    assert_references(store_module(response), [blue])
    assert_stored(dicomweb, [blue])


@pytest.mark.requirement("STOW-PART-TYPE-FROM-ROOT")
def test_part_without_content_type_is_stored_as_the_root_type(
    dicomweb: Client, new_study: NewStudy
) -> None:
    """The request breaks 8.6.1.2 (every part has its Content-Type), so only robustness is
    judged: a 4xx refusal that stores nothing (INFO), or the part stored as the root type
    (PASS); a 5xx, or a 2xx that neither stores the part nor lists it as failed, is not."""
    blue = new_study().blue
    boundary = multipart.new_boundary()
    body = raw_multipart([((), blue.data)], boundary)
    response = post(dicomweb, body, f'multipart/related; type="{DICOM}"; boundary={boundary}')
    status = response.status_code
    assert status < 500, f"a part without Content-Type made the server fail ({status})"
    if 400 <= status < 500:
        assert_not_stored(dicomweb, blue, why=f"the store answered {status}")
        expect.info(f"refused with {status}, nothing stored")
    assert 200 <= status < 300, f"a part without Content-Type answered {status}, not 2xx or 4xx"
    got = read_back(dicomweb, blue)
    if got is not None:
        assert_round_trip(got, blue)
        return
    module = store_module_if_any(response)
    if module is not None and blue.sop_uid in failed_sop_uids(module):
        expect.info(f"answered {status}, the part listed in FailedSOPSequence, nothing stored")
    raise AssertionError(
        f"answered {status}, but the part is neither stored (it answers 404) nor listed in "
        "FailedSOPSequence: dropped silently"
    )


@pytest.mark.requirement("STOW-EMPTY-MULTIPART")
def test_empty_multipart_stores_nothing(dicomweb: Client) -> None:
    boundary = multipart.new_boundary()
    body = f"--{boundary}--\r\n".encode("ascii")
    response = post(dicomweb, body, f'multipart/related; type="{DICOM}"; boundary={boundary}')
    assert response.status_code < 500, (
        f"a request without instances made the server fail ({response.status_code})"
    )
    module = store_module_if_any(response)
    if module is not None:
        assert not sequence_items(module, REFERENCED_SOP_SEQUENCE), (
            f"a request without instances references stored instances {referenced_sop_uids(module)}"
        )
    expect.info(f"an empty multipart answered {response.status_code}")


@pytest.mark.requirement("STOW-IMPLICIT-VR")
def test_implicit_vr_instance_accepted_is_retrievable(
    dicomweb: Client, new_synthetic: NewSynthetic
) -> None:
    instance = implicit_vr_copy(new_synthetic().sequence)
    response = stow(dicomweb, [instance])
    assert response.status_code < 500, (
        f"an Implicit VR Little Endian instance made the server fail ({response.status_code})"
    )
    if response.status_code in (200, 202):
        got = read_back(dicomweb, instance)
        assert_round_trip(got, instance)
        assert got is not None
        syntax = got.file_meta.get("TransferSyntaxUID", "none")
        expect.info(f"accepted ({response.status_code}); retrieved in transfer syntax {syntax}")
    assert_not_stored(dicomweb, instance, why=f"the store answered {response.status_code}")
    expect.info(f"refused with {response.status_code}")


def metadata_and_bulkdata(instance: Instance) -> tuple[bytes, str]:
    """The instance as DICOM JSON metadata plus one bulkdata part holding its PixelData."""
    dataset = Dataset(instance.dataset)
    pixels = bytes(dataset.PixelData)
    metadata = dataset.to_json_dict()
    uri = f"https://bulkdata.invalid/{instance.sop_uid}/7FE00010"
    metadata["7FE00010"] = {"vr": dataset["PixelData"].VR, "BulkDataURI": uri}
    boundary = multipart.new_boundary()
    body = raw_multipart(
        [
            ((f"Content-Type: {DICOM_JSON}",), json.dumps([metadata]).encode("utf-8")),
            ((f"Content-Type: {OCTET_STREAM}", f"Content-Location: {uri}"), pixels),
        ],
        boundary,
    )
    return body, f'multipart/related; type="{DICOM_JSON}"; boundary={boundary}'


@pytest.mark.requirement("STOW-METADATA-BULKDATA")
def test_metadata_and_bulkdata_store_one_instance(
    dicomweb: Client, new_synthetic: NewSynthetic
) -> None:
    instance = new_synthetic().sequence
    body, content_type = metadata_and_bulkdata(instance)
    response = post(dicomweb, body, content_type)
    expect.status(
        response,
        200,
        why=f'multipart/related; type="{DICOM_JSON}" is the Store transaction\'s Default media '
        "type, which the origin server shall support (10.5.4, Table 10.5.4-1)",
    )
    assert_round_trip(read_back(dicomweb, instance), instance)


@pytest.mark.requirement("STOW-WARNING-HEADER-SYNTAX")
def test_warning_headers_on_store_responses_are_well_formed(
    dicomweb: Client, new_study: NewStudy
) -> None:
    study = new_study()
    answers = {
        "a new instance": stow(dicomweb, [study.blue]),
        "the same instance again": stow(dicomweb, [study.blue]),
        "an instance of another study": post_to_other_study(dicomweb, new_study)[0],
        "text/plain": post(dicomweb, b"This is not a DICOM request.", "text/plain"),
    }
    present = {what: field_lines(r, "Warning") for what, r in answers.items()}
    for what, warnings in present.items():
        for warning in warnings:
            if RFC7234_WARNING.match(warning):
                expect.chose("rfc7234")
            elif DICOM_STATUS_WARNING.match(warning):
                expect.chose("dicom-status")
            else:
                raise AssertionError(
                    f"the answer to {what} has Warning {warning!r}: neither warn-code SP "
                    "warn-agent SP warn-text (RFC 7234 5.5) nor a DICOM status in its place "
                    "(PS3.18 10.5.3.2)"
                )
    if not any(present.values()):
        expect.info(f"no Warning header on the answers to {', '.join(answers)}")
