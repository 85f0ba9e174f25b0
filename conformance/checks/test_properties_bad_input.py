"""Properties of bad input: generated malformed requests (UIDs, dates, parameters, media types)
get a client error, never a server error. The strategies and helpers are test_properties.py's.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import pytest
import requests
from hypothesis import strategies as st

from conformance import expect, synthetic
from conformance.checks.test_properties import (
    Searcher,
)
from conformance.client import Client
from conformance.dicomweb import (
    DICOM,
    STUDY_UID,
    first_value,
    search,
    search_results,
)
from conformance.errors import NoAnswer
from conformance.explore import explore
from conformance.run.fixtures import EmptyStudy
from conformance.synthetic import (
    SearchArchive,
)

# --- bad input: a client error, never a server error ------------------------------------------


@dataclass(frozen=True)
class BadRequest:
    """One malformed request, and what is wrong with it."""

    what: str
    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None

    def __repr__(self) -> str:  # what hypothesis shows as the smallest example
        shown = self.body if self.body is None or len(self.body) <= 64 else self.body[:64] + b"..."
        return f"BadRequest({self.what!r}, {self.method} {self.path} {list(self.query)}, {shown!r})"


BAD_UIDS = ["1..2", "abc", "1.2.", "01.2", "1.2.3 4", "9" * 65, "1.2.-3"]
# Invalid values of Query Parameters a search has (8.3.4): required matching keys (10.6.1.2.3),
# paging, includefield and fuzzymatching, each against its syntax (PS3.5 6.2, 8.3.4).
BAD_VALUES = {
    "StudyDate": ["2020-13-45", "abc", "20201301", "-", "20200101--20200102"],
    "StudyTime": ["25", "12:00:00:00", "abc"],
    "limit": ["-1", "abc", "1e3", ""],
    "offset": ["-1", "abc"],
    "StudyInstanceUID": BAD_UIDS,
    "includefield": ["no-such-keyword", "ZZZZZZZZ"],
    "fuzzymatching": ["maybe", "1"],
}
BAD_CONTENT_TYPES = [
    "application/json",
    "text/plain",
    "multipart/related",
    'multipart/related; type="application/dicom"',
    "multipart/related; boundary=",
]


def _related(parts: list[bytes], part_type: str = DICOM, boundary: str = "b0und4ry") -> bytes:
    return b"".join(
        b"--" + boundary.encode() + b"\r\nContent-Type: " + part_type.encode() + b"\r\n\r\n" + p
        + b"\r\n" for p in parts
    ) + b"--" + boundary.encode() + b"--\r\n"  # fmt: skip


@st.composite
def bad_requests(draw: st.DrawFn, study_uid: str, stored: bytes) -> BadRequest:
    """A malformed store, retrieve or search: the kind, then its details. (Invalid values of
    Query Parameters are the next property's: 8.3 prescribes their answer.)"""
    related = 'multipart/related; type="application/dicom"; boundary=b0und4ry'

    def posted(what: str, body: bytes, content_type: str = related) -> BadRequest:
        return BadRequest(
            what, "POST", f"studies/{study_uid}", headers=(("Content-Type", content_type),),
            body=body,
        )  # fmt: skip

    kind = draw(st.integers(0, 7))
    if kind == 0:
        cut = draw(st.integers(0, len(stored) - 1))
        # Never inside the Study Instance UID: a file cut there names another study (say "2"),
        # which this run did not create and so may not store (the guard refuses it).
        element = stored.find(b"\x20\x00\x0d\x00UI")  # (0020,000D), Explicit VR Little Endian
        if element <= cut <= element + 8 + len(study_uid) + 1:
            cut = element
        return posted(f"a file cut at byte {cut}", _related([stored[:cut]]))
    if kind == 1:
        return posted("a part that is not DICOM", _related([draw(st.binary(max_size=300))]))
    if kind == 2:
        return posted("no DICM prefix", _related([stored[:128] + b"DICN" + stored[132:]]))
    if kind == 3:
        unclosed = _related([stored]).removesuffix(b"--b0und4ry--\r\n")
        return posted("multipart without its closing delimiter", unclosed)
    if kind == 4:
        other = related.replace("b0und4ry", "other")
        return posted("a boundary the body does not use", _related([stored]), other)
    if kind == 5:
        content_type = draw(st.sampled_from(BAD_CONTENT_TYPES))
        return posted(f"Content-Type {content_type}", _related([stored]), content_type)
    if kind == 6:
        uid = draw(st.sampled_from(BAD_UIDS))
        level = draw(st.sampled_from(["", "/metadata", "/series"]))
        return BadRequest("an invalid UID in the path", "GET", f"studies/{uid}{level}")
    size = draw(st.sampled_from([4096, 8192, 16384]))
    long_value = (("PatientID", "A" * size),)
    return BadRequest(f"a {size}-character value", "GET", "studies", query=long_value)


@pytest.mark.requirement("HTTP-MALFORMED-REQUEST-4XX")
def test_malformed_requests_get_client_errors_and_harm_nothing(
    dicomweb: Client, empty_study: EmptyStudy, stored_archive: SearchArchive
) -> None:
    """Broken multipart, parts that are not DICOM, cut files, wrong Content-Types, invalid UIDs
    in the path, oversized values: never a 5xx, never no answer; the archive stored before is
    all there afterwards. No rule prescribes the answer to these (they break the user agent's
    "shall"s, 10.5.1.3-4): a 5xx is a robustness fault (SHOULD), any 4xx or an acceptance
    passes."""
    stored = synthetic.generated_instance(
        empty_study.patient_id, empty_study.study_uid, f"{empty_study.study_uid}.1.1", None, []
    ).data
    scope = Searcher(dicomweb, stored_archive)

    def answers_when_well_formed(bad: BadRequest) -> bool:
        """Whether the server answers the request's well-formed counterpart: the same path with
        an archive study's UID for an invalid one, else a search of the archive. If it does
        not, no answer is an outage (ERROR), not this request's fault."""
        try:
            if bad.method == "GET" and bad.path.startswith("studies/"):
                below = bad.path.removeprefix("studies/").partition("/")[1:]  # ("/", "metadata")
                path = f"studies/{stored_archive.study_uids[0]}{''.join(below)}"
                dicomweb.request("GET", path, headers=dict(bad.headers))
            else:
                scope.ask([])
        except NoAnswer:
            return False
        return True

    def holds(bad: BadRequest) -> None:
        try:
            response = dicomweb.request(
                bad.method, bad.path, query=bad.query, headers=dict(bad.headers), body=bad.body
            )
        except NoAnswer as error:
            if not answers_when_well_formed(bad):
                raise
            raise AssertionError(
                f"{bad.what}: {bad.method} {bad.path}: no answer ({error}), where the same "
                f"request well formed is answered"
            ) from None
        if response.status_code >= 500:
            raise AssertionError(
                f"{bad.what}: {bad.method} {response.request.path_url[:200]} answered "
                f"{response.status_code} {response.reason}, a server error for a client's mistake"
            )

    explore("bad input", bad_requests(empty_study.study_uid, stored), holds)
    left = [uid for uid in scope.ask([]) if uid in scope.entities]
    missing = sorted(set(scope.entities) - set(left))
    assert not missing, f"after the malformed requests, the archive misses {len(missing)} studies"
    expect.stored_and_retrievable(dicomweb, stored_archive.instances[:1])


@pytest.mark.requirement("HTTP-INVALID-QUERY-VALUE-400")
def test_invalid_query_values_get_400_or_are_ignored(
    dicomweb: Client, stored_archive: SearchArchive
) -> None:
    """Each invalid value of a search's Query Parameters (BAD_VALUES), asked of the archive: 400
    (reading 400: "If a supported Query Parameter has an invalid value, the origin server shall
    return a 400"), or the answer without the parameter (reading ignored: "as if the
    unsupported parameters were not present"), PS3.18 8.3. A 5xx, no answer, another 4xx, or
    another answer fits neither. Every value is asked: there are few, and each is one GET."""
    searcher = Searcher(dicomweb, stored_archive)
    without = sorted(uid for uid in searcher.ask([]) if uid in searcher.entities)
    expect.precondition(bool(without), "a search scoped to the run's search archive finds it")
    problems: list[tuple[int, str]] = []  # (0: no answer or a 5xx, 1: another 4xx, 2: 2xx)
    pairs = [(key, value) for key, values in BAD_VALUES.items() for value in values]

    def answer(pair: tuple[str, str]) -> requests.Response | NoAnswer:
        try:
            return search(dicomweb, "studies", *searcher.scope, pair)
        except NoAnswer as error:
            return error

    # Asked together, judged in turn.
    for (key, value), response in zip(
        pairs, dicomweb.each(partial(answer, pair) for pair in pairs), strict=True
    ):
        asked = f"{key}={value[:20]!r}"
        if isinstance(response, NoAnswer):
            searcher.ask([])  # no answer to it either: an outage (ERROR), not this value's
            problems.append((0, f"{asked}: no answer ({response})"))
            continue
        if response.status_code == 400:
            expect.chose("400")
            continue
        if response.status_code not in (200, 204):
            answered = f"{asked}: {response.status_code} {response.reason}"
            problems.append((0 if response.status_code >= 500 else 1, answered))
            continue
        results = search_results(response)
        found = sorted(
            uid for obj in results if (uid := str(first_value(obj, STUDY_UID))) in without
        )
        if found != without:
            problems.append(
                (2, f"{asked}: {response.status_code} with {len(found)} of the archive's "
                    f"{len(without)} studies")
            )  # fmt: skip
            continue
        expect.chose("ignored")
    worst = [what for _, what in sorted(problems, key=lambda problem: problem[0])]
    assert not worst, (
        f"GET studies (scoped to the run's search archive) with {'; '.join(worst[:4])}"
        + (f" ({len(worst)} such answers)" if len(worst) > 4 else "")
        + ": an invalid value of a Query Parameter must be answered 400, or the parameter "
        "ignored if unsupported, the answer then the one without it (PS3.18 8.3)"
    )
