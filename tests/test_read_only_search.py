"""The searches judged by the reference model of search on "the data" (test_qido_scoped.py) in a
read-only run: on studies the run never stored, straight in Orthanc, they send no POST, PUT,
PATCH or DELETE, judge the held study's sample as the writing run judges the run's own study,
and fail through a proxy that breaks the rule, as a real server did (tests/faults/heldsearch.py).

Two studies of "someone" the run never stored: the synthetic one (five series of several
modalities, SOP classes and numbers; its sample is not the whole study, and its instances
disagree on the patient's name) and the article's (two series, three instances: a sample that
is the whole study, so what must not match is known everywhere).
"""

from __future__ import annotations

import faults.heldsearch  # noqa: F401  (registers the faults asserted here)
import proof
import pytest
from faultproxy import FaultProxy
from hostileproxy import HostileProxy
from paths import ORTHANC_EXPECTATIONS
from suiterun import RunSuite

from conformance import expectations, samples, synthetic
from conformance.client import Client
from conformance.dicomweb import stow
from conformance.local.orthanc import LocalOrthanc

MODULE = "test_qido_scoped.py"
STUDY_CASES = "test_qido_scoped.py::test_study_is_found_by_its_own_values"
# The writing run's check of the same key, whose Orthanc verdict a study-level case shares.
WRITING_CASES = "test_qido.py::test_studies_match_required_key"


def stored_directly(orthanc: LocalOrthanc) -> tuple[str, str]:
    """The synthetic study and the article's, of "someone", stored straight into Orthanc."""
    orthanc.purge()
    client = Client(orthanc.dicomweb_url)
    held = synthetic.catalog_study("someone", "held")
    article = samples.fresh_copy(samples.load(), "someone", "article", light=True)
    for study in (held, article):
        assert stow(client, list(study)).status_code == 200
    return held.study_uid, article.study_uid


def test_searches_of_what_the_server_holds_only_read_and_judge_as_the_writing_run(
    orthanc: LocalOrthanc, run_suite: RunSuite
) -> None:
    held, article = stored_directly(orthanc)
    entries = expectations.load(ORTHANC_EXPECTATIONS).entries
    runs = {}
    for study in (held, article):
        with HostileProxy(orthanc.url) as proxy:
            runs[study] = run_suite(
                f"{proxy.url}/dicom-web",
                "--dicomweb-read-only",
                f"--dicomweb-studies={study}",
                "--dicomweb-profile=orthanc",
                checks=[MODULE],
            )
        assert proxy.methods <= {"GET", "HEAD", "OPTIONS"}, proxy.methods
    orthanc.purge()
    for run in runs.values():
        assert len(run.verdicts) == 25, run.stdout
        assert set(run.verdicts.values()) <= {"PASS", "FAIL", "DISABLED"}, run.stdout
        # A study-level case FAILs only where Orthanc's writing run fails the same key (a
        # name with a caret or a space, not found by Orthanc 1.10 and 1.12).
        failed = {c for c, v in run.verdicts.items() if v == "FAIL"}
        assert all(c.startswith(STUDY_CASES) for c in failed), failed
        writing = {c: entries[c.replace(STUDY_CASES, WRITING_CASES)].verdict for c in failed}
        assert set(writing.values()) <= {"FAIL"}, writing
        assert run.results["cleanup"] is None
    # What the data cannot answer is unjudged (DISABLED, not as a check that needs to write):
    # the synthetic study's patient names disagree; the article's study has no Accession Number.
    unjudged = {
        study: sorted(c for c, v in run.verdicts.items() if v == "DISABLED")
        for study, run in runs.items()
    }
    assert unjudged == {
        held: [f"{STUDY_CASES}[PatientName]"],
        article: sorted(
            f"{STUDY_CASES}[{c}]" for c in ("AccessionNumber", "AccessionNumber=prefix*")
        ),
    }, unjudged
    assert all("checks judged; 0 checks need to write" in r.stdout for r in runs.values())
    passed = [sum(v == "PASS" for v in run.verdicts.values()) for run in runs.values()]
    assert min(passed) >= 20, passed


# The faults asserted here: those of tests/faults/heldsearch.py, and a fault of qido.py's
# (asserted in a writing run by test_catalog_faults.py) whose rule the paging checks judge too.
FAULTS = {name: sorted(p.checks) for name, p in proof.faults("test_read_only_search.py").items()}
FAULTS["search-ignores-offset"] = [
    f"{MODULE}::test_scoped_pages_add_up_to_the_whole[series]",
    f"{MODULE}::test_scoped_pages_add_up_to_the_whole[series-instances]",
]


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_a_faulty_search_is_caught_on_what_the_server_holds(
    orthanc: LocalOrthanc, run_suite: RunSuite, name: str
) -> None:
    """Each fault fails its checks in a read-only run, on the synthetic study's sample or the
    article's whole study (whichever holds the values the rule divides), and nothing errs."""
    checks = FAULTS[name]
    held, article = stored_directly(orthanc)
    verdicts: dict[str, set[str]] = {}
    for study in (held, article):
        with FaultProxy(orthanc.url, name) as proxy:
            run = run_suite(
                f"{proxy.url}/dicom-web",
                "--dicomweb-read-only",
                f"--dicomweb-studies={study}",
                "--dicomweb-profile=orthanc",
                checks=checks,
            )
        assert "ERROR" not in run.verdicts.values(), run.stdout
        for check, verdict in run.verdicts.items():
            verdicts.setdefault(check, set()).add(verdict)
    orthanc.purge()
    uncaught = sorted(c for c in checks if "FAIL" not in verdicts.get(c, set()))
    assert not uncaught, verdicts
