"""Faults of the searches on "the data" (conformance/checks/test_qido_scoped.py): QIDO-RS bugs
seen in real servers, that the checks judged by the reference model must catch on a study the
server holds, in a read-only run (tests/test_read_only_search.py asserts them there: the study
it holds has several modalities, SOP classes, series and instance numbers, which the run's own
article study has not).

Each changes a search's query on its way to Orthanc, as the server's bug did; what comes back
is then Orthanc's honest answer to the wrong question.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from . import Answer, Exchange, Forward, fault, is_search, query_pairs, with_query

CHECKS = "test_qido_scoped.py::"
TEST = "test_read_only_search.py"
SCOPED = "test_scoped_search_finds_what_the_model_finds"
STUDY = "test_study_is_found_by_its_own_values"
# A study's series or instances: the resources dcm4chee-arc-light#3494 misread.
STUDY_SCOPED = re.compile(r"/studies/[^/]+/(series|instances)$")


def _scoped(case: str) -> str:
    return f"{CHECKS}{SCOPED}[{case}]"


def _study(key: str) -> str:
    return f"{CHECKS}{STUDY}[{key}]"


def _rewriting(
    change: Callable[[Exchange, list[tuple[str, str]]], list[tuple[str, str]]],
) -> Callable[[Exchange, Forward], Answer]:
    """A fault that changes the query of every search."""

    def apply(request: Exchange, forward: Forward) -> Answer:
        if is_search(request):
            request = with_query(request, change(request, query_pairs(request)))
        return forward(request)

    return apply


def _without_included(request: Exchange, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    included = {v for k, v in pairs if k == "includefield" for v in v.split(",")}
    return [(k, v) for k, v in pairs if k == "includefield" or k not in included]


fault(
    "search-ignores-keys-named-in-includefield",
    catches=[
        *(
            _scoped(case)
            for case in (
                "series?Modality",
                "series?Modality=prefix*",
                "series?Modality=prefix?",
                "series?SeriesNumber",
                "series?SeriesInstanceUID=uid,uid",
                "series-instances?InstanceNumber",
                "series-instances?SOPInstanceUID=uid,uid",
                "study-instances?SOPClassUID",
                "study-instances?Modality",
            )
        ),
        *(
            _study(key)
            for key in (
                "StudyDate",
                "StudyDate=range",
                "StudyTime",
                "StudyTime=range",
                "AccessionNumber",
                "AccessionNumber=prefix*",
                "ModalitiesInStudy",
                "PatientID",
                "PatientID=prefix*",
                "StudyInstanceUID",
                "StudyInstanceUID=uid,uid",
                "StudyID",
            )
        ),
    ],
    test=TEST,
)(_rewriting(_without_included))
"""A matching key that is also named in includefield is not matched, only returned, as
DICOMcloud did (DICOMcloud/DICOMcloud#1, "QIDO-RS ignores matching parameters value when
requested for return"). (Referring Physician's and Patient's Name are left out: Orthanc 1.10
does not find a name with a caret or a space, and the held study's instances disagree on the
patient's name, so those cases are not PASS without the fault.)"""


fault(
    "series-modality-matched-as-the-study-modalities",
    catches=[
        _scoped("series?Modality"),
        _scoped("series?Modality=prefix*"),
        _scoped("series?Modality=prefix?"),
        _scoped("study-instances?Modality"),
    ],
    test=TEST,
)(
    _rewriting(
        lambda request, pairs: [
            (k, v) for k, v in pairs if not (k == "Modality" and STUDY_SCOPED.search(request.path))
        ]
    )
)
"""A study's series (or instances) searched by Modality answer every series of the study when
the study has that modality: the key taken as the study's Modalities in Study, as
dcm4chee-arc-light's UI did ("Modality filter passed incorrectly as ModalitiesInStudy query
parameter [...] Causes other series of the same study to be displayed",
dcm4che/dcm4chee-arc-light#3494). Sent to Orthanc without the key, which is what that answer
is for a study holding the modality."""

UNINDEXED = {"StudyTime", "ModalitiesInStudy", "StudyID", "SeriesNumber", "SOPClassUID"}
UNINDEXED |= {"InstanceNumber"}

fault(
    "search-ignores-keys-it-does-not-index",
    catches=[
        _study("StudyTime"),
        _study("StudyTime=range"),
        _study("ModalitiesInStudy"),
        _study("StudyID"),
        _scoped("series?SeriesNumber"),
        _scoped("series-instances?InstanceNumber"),
        _scoped("study-instances?SOPClassUID"),
    ],
    test=TEST,
)(_rewriting(lambda _, pairs: [(k, v) for k, v in pairs if k not in UNINDEXED]))
"""Required matching keys a server does not index are ignored, as Azure's DICOM service's
first versions did (microsoft/dicom-server#641: Study Time, Modalities in Study, Study ID,
Series Number, SOP Class UID and Instance Number among "the mandatory search attributes [that]
aren't supported")."""
