"""Faults of the qido checks (see tests/faults/__init__.py): QIDO-RS bugs seen in real servers.

Each breaks one rule of the Search transaction, on the request's way in (a filter, a parameter or
the scope dropped or misread) or on the answer's way out (attributes dropped, order shuffled,
the wrong status), so that a run through the proxy differs from a direct run by that rule.
Queries are re-encoded with the client's own build_query, so that what reaches the server is
what the suite sent, less what the fault changes.

Not modelled here, because no check passing on Orthanc 1.10 / DICOMweb 1.7 could catch them:
a dropped paging or fuzzymatching Warning (Orthanc sends none), series attributes returned at
study level for includefield (Orthanc already returns them), and values not percent-decoded or
decoded twice (Orthanc does not decode query values at all, so no check of decoding passes on it).
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable

from . import (
    Answer,
    Exchange,
    Forward,
    fault,
    header,
    is_search,
    json_answer,
    query_pairs,
    search_results,
    with_query,
)

CHECKS = "test_qido.py::"
PROPERTIES = "test_properties.py::"
DICOM_JSON = "application/dicom+json"
# Parameters that are not matching keys (8.3.4, 8.3.3).
CONTROL = {
    "limit",
    "offset",
    "includefield",
    "fuzzymatching",
    "emptyvaluematching",
    "multiplevaluematching",
    "accept",
    "charset",
}
# Date and time matching keys, by keyword and by tag.
DATE_TIME_KEYS = {
    "StudyDate": "00000000",
    "00080020": "00000000",
    "StudyTime": "000000",
    "00080030": "000000",
    "PerformedProcedureStepStartDate": "00000000",
    "00400244": "00000000",
    "PerformedProcedureStepStartTime": "000000",
    "00400245": "000000",
    "AcquisitionDateTime": "00000000000000",
    "0008002A": "00000000000000",
}
UID_KEYS = {
    "StudyInstanceUID",
    "0020000D",
    "SeriesInstanceUID",
    "0020000E",
    "SOPInstanceUID",
    "00080018",
}


def _check(name: str) -> str:
    return f"{CHECKS}{name}"


def _scoped(name: str) -> str:
    """A check of test_qido_scoped.py: the same rule, judged on the data (stored or held)."""
    return f"test_qido_scoped.py::{name}"


def _search_rewriting_query(
    change: Callable[[list[tuple[str, str]]], list[tuple[str, str]]],
) -> Callable[[Exchange, Forward], Answer]:
    """A fault that changes the query parameters of every search."""

    def apply(request: Exchange, forward: Forward) -> Answer:
        if is_search(request):
            request = with_query(request, change(query_pairs(request)))
        return forward(request)

    return apply


def _no_results(answer: Answer) -> bool:
    return answer.status == 204 or search_results(answer) == []


def _dropping(*tags: str) -> Callable[[Exchange, Forward], Answer]:
    """A fault that removes attributes from every search result."""

    def apply(request: Exchange, forward: Forward) -> Answer:
        answer = forward(request)
        objects = search_results(answer)
        if not is_search(request) or objects is None:
            return answer
        kept = [{k: v for k, v in o.items() if k not in tags} for o in objects]
        return json_answer(answer, kept)

    return apply


# --- filters ignored ---------------------------------------------------------------------------

fault(
    "search-ignores-date-time-keys",
    catches=[
        _check("test_studies_match_required_key[StudyDate]"),
        _check("test_studies_match_required_key[StudyTime]"),
        _check("test_study_date_range[StudyDate=20200923-20201231]"),
        _check("test_study_date_range[StudyDate=-20200921]"),
        _check("test_study_date_range[StudyDate=20200923-]"),
        _check("test_study_time_range[StudyTime=120001-]"),
        _check("test_study_time_range[StudyTime=-115959]"),
        _check("test_study_time_range[StudyTime=130000-140000]"),
        _check("test_series_match_performed_procedure_step_start[PerformedProcedureStepStartDate]"),
        _check("test_series_match_performed_procedure_step_start[PerformedProcedureStepStartTime]"),
    ],
)(_search_rewriting_query(lambda pairs: [(k, v) for k, v in pairs if k not in DATE_TIME_KEYS]))
"""A search that drops its date and time matching keys (StudyDate, StudyTime, PPS start)."""

fault(
    "search-ignores-uid-keys",
    catches=[
        _check("test_studies_match_required_key[StudyInstanceUID]"),
        _check("test_series_match_required_key[SeriesInstanceUID]"),
        _check("test_instances_match_required_key[SOPInstanceUID]"),
        _check("test_uid_list_matches_each_listed_uid[SOPInstanceUID=I1,I3]"),
        _check("test_search_resource_returns_its_collection[series]"),
        _check("test_search_resource_returns_its_collection[instances]"),
    ],
)(_search_rewriting_query(lambda pairs: [(k, v) for k, v in pairs if k not in UID_KEYS]))
"""A search that drops its UID matching keys, in keyword or tag form. (The tag-form checks see
the keyword form fail first, and record INFO: search-ignores-tag-form-keys is theirs.)"""

TAG_PATH = re.compile(r"[0-9A-Fa-f]{8}(\.[0-9A-Fa-f]{8})*")

fault(
    "search-ignores-tag-form-keys",
    catches=[
        _check("test_tag_form_matches_like_keyword[0020000D]"),
        _check("test_tag_form_matches_like_keyword[00080061]"),
        _check("test_tag_form_matches_like_keyword[0020000E]"),
        _check("test_tag_form_matches_like_keyword[00200013]"),
    ],
)(_search_rewriting_query(lambda pairs: [(k, v) for k, v in pairs if not TAG_PATH.fullmatch(k)]))
"""Matching keys given as tags (0020000D, 00400275.00400009) ignored, keywords matched: as
tiny-pacs-dicomweb 0.1.0 maps its query parameters by keyword only (its expectations: every
tag-form key "also finds" what the keyword excludes)."""


@fault(
    "search-ignores-study-scope",
    catches=[
        _check("test_search_resource_returns_its_collection[studies/{study}/series]"),
        _check(
            "test_search_resource_returns_its_collection[studies/{study}/series/{series}/instances]"
        ),
        _check("test_search_resource_returns_its_collection[studies/{study}/instances]"),
        _check("test_study_series_search_stays_in_its_study"),
        _check("test_series_instances_search_stays_in_its_series"),
        _check("test_each_match_is_one_result[series]"),
        _check("test_each_match_is_one_result[instances]"),
        _check("test_pages_give_every_match_once"),
    ],
)
def search_ignores_study_scope(request: Exchange, forward: Forward) -> Answer:
    """A study's series (or instances) search that answers with every series (or instance)."""
    if is_search(request):
        path = re.sub(r"/studies/[^/]+/series/[^/]+/instances$", "/instances", request.path)
        path = re.sub(r"/studies/[^/]+/(series|instances)$", r"/\1", path)
        request = Exchange(request.method, path, request.query, request.headers, request.body)
    return forward(request)


# --- matching misread --------------------------------------------------------------------------


@fault(
    "search-wildcards-literal",
    catches=[
        _check("test_star_matches_any_characters[PatientID=prefix*]"),
        _check("test_star_matches_any_characters[AccessionNumber=ACC-*]"),
        _check("test_star_matches_any_characters[ModalitiesInStudy=S*]"),
        _check("test_star_matches_any_characters[StudyID=D*1]"),
        _check("test_question_mark_matches_one_character[StudyID=DWC?]"),
        _check("test_question_mark_matches_one_character[ModalitiesInStudy=S?]"),
        _check("test_question_mark_matches_one_character[PatientID=prefix?]"),
        _check("test_star_alone_matches_every_study[AccessionNumber]"),
        _check("test_star_alone_matches_every_study[StudyID]"),
        _scoped("test_scoped_search_finds_what_the_model_finds[series?Modality=prefix*]"),
        _scoped("test_scoped_search_finds_what_the_model_finds[series?Modality=prefix?]"),
        _scoped("test_study_is_found_by_its_own_values[PatientID=prefix*]"),
    ],
)
def search_wildcards_literal(request: Exchange, forward: Forward) -> Answer:
    """'*' and '?' compared as the characters themselves: no stored value has them."""
    if is_search(request):
        pairs = [
            (k, v if k in CONTROL else v.replace("*", "STAR").replace("?", "QMARK"))
            for k, v in query_pairs(request)
        ]
        request = with_query(request, pairs)
    return forward(request)


@fault(
    "search-date-range-as-single-value",
    catches=[
        _check("test_study_date_range[StudyDate=20200901-20200930]"),
        _check("test_study_date_range[StudyDate=-20200922]"),
        _check("test_study_date_range[StudyDate=20200922-]"),
        _check("test_study_date_range[StudyDate=20200922-20200922]"),
        _check("test_study_time_range[StudyTime=110000-130000]"),
        _check("test_study_time_range[StudyTime=120000-]"),
        _check("test_study_time_range[StudyTime=-120000]"),
        f"{PROPERTIES}test_datetime_ranges_find_what_the_model_finds",
        _scoped("test_study_is_found_by_its_own_values[StudyDate=range]"),
        _scoped("test_study_is_found_by_its_own_values[StudyTime=range]"),
    ],
)
def search_date_range_as_single_value(request: Exchange, forward: Forward) -> Answer:
    """A date or time range compared as one literal value, which no stored date equals."""
    if is_search(request):
        pairs = [
            (k, DATE_TIME_KEYS[k] if k in DATE_TIME_KEYS and "-" in v else v)
            for k, v in query_pairs(request)
        ]
        request = with_query(request, pairs)
    return forward(request)


fault(
    "search-uid-list-first-only",
    catches=[
        _check("test_uid_list_matches_each_listed_uid[StudyInstanceUID=S1,S2]"),
        _check("test_uid_list_matches_each_listed_uid[SOPInstanceUID=I1,I3]"),
        _scoped("test_scoped_search_finds_what_the_model_finds[series?SeriesInstanceUID=uid,uid]"),
        _scoped(
            "test_scoped_search_finds_what_the_model_finds[series-instances?SOPInstanceUID=uid,uid]"
        ),
    ],
)(
    _search_rewriting_query(
        lambda pairs: [(k, v.split(",")[0] if k in UID_KEYS else v) for k, v in pairs]
    )
)
"""A UID list matched as its first UID only."""

fault(
    "search-empty-value-matches-only-empty",
    catches=[
        _check("test_empty_value_matches_every_study[PatientName]"),
        _check("test_empty_value_matches_every_study[AccessionNumber]"),
    ],
)(_search_rewriting_query(lambda pairs: [(k, v or '""') for k, v in pairs]))
"""An empty value read as 'the attribute is empty' (Empty Value Matching, never asked for)."""


# --- wrong answers to no match ------------------------------------------------------------------

NEGATIVE_MATCHES = [
    _check("test_studies_match_required_key[StudyDate]"),
    _check("test_studies_match_required_key[AccessionNumber]"),
    _check("test_studies_match_required_key[ModalitiesInStudy]"),
    _check("test_studies_match_required_key[PatientID]"),
    _check("test_studies_match_required_key[StudyID]"),
    _check("test_series_match_required_key[Modality]"),
    _check("test_series_match_required_key[SeriesNumber]"),
    _check("test_instances_match_required_key[SOPClassUID]"),
    _check("test_instances_match_required_key[InstanceNumber]"),
    _check("test_study_date_range[StudyDate=20200923-]"),
    _check("test_study_time_range[StudyTime=120001-]"),
    _check("test_question_mark_matches_one_character[StudyID=DWC?]"),
]


@fault("search-no-match-answers-everything", catches=NEGATIVE_MATCHES)
def search_no_match_answers_everything(request: Exchange, forward: Forward) -> Answer:
    """A search with no match answered 200 with every entity of the resource, unfiltered."""
    answer = forward(request)
    if not is_search(request) or not _no_results(answer):
        return answer
    kept = [
        (k, v) for k, v in query_pairs(request) if k in CONTROL and k not in ("limit", "offset")
    ]
    return forward(with_query(request, kept))


@fault("search-no-match-500", catches=NEGATIVE_MATCHES)
def search_no_match_500(request: Exchange, forward: Forward) -> Answer:
    """A search on several matching keys that fails with 500 Internal Server Error when nothing
    matches (a lookup by one UID still answers as it should)."""
    answer = forward(request)
    keys = [k for k, _ in query_pairs(request) if k not in CONTROL]
    if not is_search(request) or len(keys) < 2 or not _no_results(answer):
        return answer
    return Answer(500, {"Content-Type": "text/plain"}, b"Internal error: empty result set")


STUDY_SCOPED_SEARCH = re.compile(r"/studies/[^/]+/(series(/[^/]+/instances)?|instances)$")


@fault(
    "empty-search-answers-404",
    catches=[
        _check("test_no_match_is_an_empty_answer"),
        _check("test_offset_past_the_end_is_an_empty_answer"),
    ],
)
def empty_search_answers_404(request: Exchange, forward: Forward) -> Answer:
    """A search for the series or instances of a study with no result answered 404 Not Found,
    as dcm4chee-arc-light's did ('Last Modified Date is null', dcm4chee-arc-light#3426): a
    search that found nothing is no missing resource. (Searches of all studies are left as they
    are: the pre-flight probe takes a 404 there for no DICOMweb service at all.)"""
    answer = forward(request)
    scoped = is_search(request) and STUDY_SCOPED_SEARCH.search(request.path)
    if not scoped or not _no_results(answer):
        return answer
    return Answer(404, {"Content-Type": "text/plain"}, b"Last Modified Date is null")


@fault(
    "study-series-search-lags-behind-storage",
    catches=[
        "test_existing.py::test_a_study_retrieve_sends_the_instances_searches_list",
        "test_existing.py::test_each_series_retrieve_sends_the_instances_searches_list_in_it",
    ],
)
def study_series_search_lags_behind_storage(request: Exchange, forward: Forward) -> Answer:
    """A search index that lags behind storage (an eventually consistent index, as some cloud
    archives have): the series of a stored study are retrievable but not yet listed, so
    ``studies/{study}/series`` answers 204."""
    if request.method == "GET" and re.search(r"/studies/[^/]+/series$", request.path):
        return Answer(204, {}, b"")
    return forward(request)


# --- returned attributes -------------------------------------------------------------------------

fault(
    "search-drops-counts-and-retrieve-url",
    catches=[
        _check("test_study_counts_its_series_and_instances"),
        _check("test_study_result_has_required_attributes"),
        _check("test_result_has_retrieve_url[study]"),
        _check("test_result_has_retrieve_url[series]"),
        _check("test_result_has_retrieve_url[instance]"),
    ],
)(_dropping("00201208", "00081190"))
"""Results without Number of Study Related Instances (0020,1208) and Retrieve URL (0008,1190)."""


def _from_the_first_result(*tags: str) -> Callable[[Exchange, Forward], Answer]:
    """A fault that gives every search result the first result's ``tags`` (those it has)."""

    def apply(request: Exchange, forward: Forward) -> Answer:
        answer = forward(request)
        results = search_results(answer)
        if not is_search(request) or not results or not isinstance(results[0], dict):
            return answer
        first = results[0]
        for obj in results[1:]:
            if isinstance(obj, dict):
                obj.update({tag: first[tag] for tag in tags if tag in first})
        return json_answer(answer, results)

    return apply


fault(
    "retrieve-url-of-the-first-row",
    catches=[
        _check("test_result_has_retrieve_url[study]"),
        _check("test_result_has_retrieve_url[series]"),
        _check("test_result_has_retrieve_url[instance]"),
    ],
)(_from_the_first_result("00081190"))
"""Every result carries the first result's Retrieve URL (0008,1190): a URL not built from the
result's own unique key, as dcm4chee-arc built ".../studies/null" into every result when the
key was not among the attributes it read (dcm4che/dcm4chee-arc-light#4062). Searches by one
unique key, answering one result, cannot see it."""

fault(
    "counts-of-the-first-row",
    catches=[
        _check("test_study_counts_its_series_and_instances"),
        _check("test_series_counts_its_instances"),
    ],
)(_from_the_first_result("00201206", "00201208", "00201209"))
"""Every result carries the first result's Number of Study Related Series and Instances and
Number of Series Related Instances: counts that are not the result's own, as medplum's first
QIDO-RS answered the same hard-coded counts for every study and series (medplum/medplum#10150).
A search of one study by its UID answers one result, whose counts nothing else stands for."""

fault(
    "search-drops-series-attributes",
    catches=[
        _check("test_series_result_has_required_attributes"),
        _check("test_series_counts_its_instances"),
        _check("test_series_result_has_known_conditional_attributes[SeriesDescription]"),
    ],
)(_dropping("00200011", "00201209", "0008103E"))
"""Series results without Series Number, Number of Series Related Instances, Description."""

fault(
    "search-drops-instance-attributes",
    catches=[
        _check("test_instance_result_has_required_attributes"),
        _check("test_instance_result_has_image_attributes"),
    ],
)(_dropping("00080016", "00200013", "00280008"))
"""Instance results without SOP Class UID, Instance Number and Number of Frames."""

fault(
    "search-drops-matched-attribute",
    catches=[
        _check("test_matching_key_is_returned"),
        _check("test_includefield_adds_the_attribute[includefield=00081030]"),
        _check("test_includefield_adds_the_attribute[includefield=StudyDescription]"),
    ],
)(_dropping("00081030"))
"""Results without Study Description, whether matched on or asked for with includefield."""


@fault(
    "study-search-returns-series-records",
    catches=[
        _check("test_search_resource_returns_its_collection[studies]"),
        _check("test_each_match_is_one_result[studies]"),
        _check("test_studies_match_required_key[StudyInstanceUID]"),
        _check("test_study_counts_its_series_and_instances"),
        _check("test_uid_list_matches_each_listed_uid[StudyInstanceUID=S1,S2]"),
    ],
)
def study_search_returns_series_records(request: Exchange, forward: Forward) -> Answer:
    """A study search answering one record per series (a join gone wrong): each study appears
    once per series, with series-level attributes and without the study's counts."""
    if is_search(request) and request.path.endswith("/studies"):
        path = request.path[: -len("/studies")] + "/series"
        request = Exchange(request.method, path, request.query, request.headers, request.body)
    return forward(request)


# --- includefield -------------------------------------------------------------------------------

fault(
    "search-ignores-includefield",
    catches=[
        _check("test_includefield_adds_the_attribute[includefield=00081030]"),
        _check("test_includefield_adds_the_attribute[includefield=StudyDescription]"),
    ],
)(_search_rewriting_query(lambda pairs: [(k, v) for k, v in pairs if k != "includefield"]))
"""includefield parameters dropped: only the default attributes come back."""


def _first_includefield(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    fields = [v for k, v in pairs if k == "includefield"]
    kept = [(k, v) for k, v in pairs if k != "includefield"]
    return kept + ([("includefield", fields[0].split(",")[0])] if fields else [])


fault(
    "search-includefield-first-only",
    catches=[
        _check("test_includefield_list_adds_every_attribute[repeated]"),
        _check("test_includefield_list_adds_every_attribute[comma-separated]"),
        # its "returned when named alone, so returned in a list" half
        f"{PROPERTIES}test_includefield_returns_what_was_stored_at_every_level",
    ],
)(_search_rewriting_query(_first_includefield))
"""Only the first attribute of the first includefield parameter honoured."""


# --- paging --------------------------------------------------------------------------------------

fault(
    "search-ignores-limit",
    catches=[_check("test_limit_caps_results"), _check("test_pages_give_every_match_once")],
)(_search_rewriting_query(lambda pairs: [(k, v) for k, v in pairs if k != "limit"]))
"""limit dropped: every match in one answer."""

fault(
    "search-ignores-offset",
    catches=[
        _check("test_offset_skips_matches"),
        _check("test_pages_give_every_match_once"),
        _scoped("test_scoped_pages_add_up_to_the_whole[series]"),
        _scoped("test_scoped_pages_add_up_to_the_whole[series-instances]"),
    ],
)(_search_rewriting_query(lambda pairs: [(k, v) for k, v in pairs if k != "offset"]))
"""offset dropped: every page starts at the first match."""

fault(
    "search-accepts-invalid-paging",
    catches=[
        _check("test_invalid_paging_value_is_bad_request[limit=abc]"),
        _check("test_invalid_paging_value_is_bad_request[offset=abc]"),
    ],
)(
    _search_rewriting_query(
        lambda pairs: [(k, v) for k, v in pairs if k not in ("limit", "offset") or v.isdigit()]
    )
)
"""A limit or offset that is not a number silently ignored instead of answered 400."""

_requests_seen: dict[tuple[str, str], itertools.count[int]] = {}
_lock = threading.Lock()


@fault("search-order-varies", catches=[_check("test_same_search_same_order")])
def search_order_varies(request: Exchange, forward: Forward) -> Answer:
    """Results in another order each time the same search is asked (no stable sort)."""
    answer = forward(request)
    objects = search_results(answer)
    if not is_search(request) or objects is None:
        return answer
    with _lock:
        seen = next(_requests_seen.setdefault((request.path, request.query), itertools.count()))
    return json_answer(answer, objects[::-1] if seen % 2 else objects)


# --- parameters and media types -------------------------------------------------------------------


@fault("search-rejects-unknown-parameter", catches=[_check("test_unknown_parameter_is_ignored")])
def search_rejects_unknown_parameter(request: Exchange, forward: Forward) -> Answer:
    """A query parameter the server does not know answered 400 instead of ignored."""
    if is_search(request):
        unknown = [k for k, _ in query_pairs(request) if k[:1].islower() and k not in CONTROL]
        if unknown:
            body = f"unknown query parameter {unknown[0]}".encode()
            return Answer(400, {"Content-Type": "text/plain"}, body)
    return forward(request)


fault(
    "search-accepts-invalid-fuzzymatching",
    catches=[_check("test_fuzzymatching_invalid_value_is_bad_request")],
)(
    _search_rewriting_query(
        lambda pairs: [(k, v) for k, v in pairs if k != "fuzzymatching" or v in ("true", "false")]
    )
)
"""fuzzymatching=maybe silently ignored instead of answered 400."""


@fault(
    "search-refuses-unacceptable-accept-with-400",
    catches=[_check("test_unacceptable_media_type_gets_406_or_the_default")],
)
def search_refuses_unacceptable_accept_with_400(request: Exchange, forward: Forward) -> Answer:
    """A search whose Accept names no search media type answered 400 Bad Request, where 406
    or the default media type is due: as Orthanc's own WADO-RS refuses a media type it cannot
    produce (Plugin/WadoRs.cpp @2b12aaa9, ErrorCode_BadRequest "cannot generate the following
    content type")."""
    accept = header(request.headers, "accept")
    wanted = ("application/dicom+json", "application/dicom+xml", "multipart/related", "*/*")
    if is_search(request) and accept and not any(w in accept for w in wanted):
        body = f"This plugin cannot generate the following content type: {accept}".encode()
        return Answer(400, {"Content-Type": "text/plain"}, body)
    return forward(request)


@fault(
    "search-answers-application-json",
    catches=[
        _check("test_search_answers_dicom_json[application/dicom+json]"),
        _check("test_search_answers_dicom_json[*/*]"),
    ],
)
def search_answers_application_json(request: Exchange, forward: Forward) -> Answer:
    """Search results labelled application/json instead of application/dicom+json."""
    answer = forward(request)
    objects = search_results(answer)
    if not is_search(request) or objects is None:
        return answer
    return json_answer(answer, objects, content_type="application/json")


# --- person names -------------------------------------------------------------------------------

PERSON_NAME_KEYS = {"PatientName", "00100010", "ReferringPhysicianName", "00080090"}


@fault(
    "search-person-name-without-caret-500",
    catches=[_check("test_person_name_case_handling_is_recorded")],
)
def search_person_name_without_caret_500(request: Exchange, forward: Forward) -> Answer:
    """A Person Name matcher that splits the value on '^' and reads the given name without
    checking there is one: a name with a single component ('Roe') answers 500. (The case
    check, of a MAY, records ERROR: what it needed to observe could not be asked.)"""
    if is_search(request) and any(
        k in PERSON_NAME_KEYS and v and "^" not in v for k, v in query_pairs(request)
    ):
        return Answer(500, {"Content-Type": "text/plain"}, b"IndexError: list index out of range")
    return forward(request)
