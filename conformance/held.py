"""The studies a read-only run reads, decided once before any check: those the user names with
--dicomweb-studies (each asked for by a search; one the server does not have is left out, with
one line saying so), or with ``auto:N`` the N most recent a search of studies lists.

Discovery is bounded: one search, of at most ``DISCOVERY_PAGE`` studies whatever N, never a walk
through the archive. "Most recent" is by Study Date and Study Time as the search returns them
(a study without them comes last), ties broken by UID, so that every process of a run picks the
same studies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .client import Client
from .dicomweb import STUDY_UID, ProtocolError, first_value, search, search_results

DISCOVERY_PAGE = 200  # the studies one discovery search asks for
STUDY_DATE, STUDY_TIME = "00080020", "00080030"


@dataclass(frozen=True)
class Held:
    """What the run will read, what it will not, and why it cannot run at all (``problem``)."""

    studies: tuple[str, ...]
    missing: tuple[str, ...] = ()
    problem: str | None = None

    def described(self, discovered: bool) -> str:
        """How many studies, or which: "the 2 most recent studies a search lists"."""
        n = len(self.studies)
        noun = "study" if n == 1 else "studies"
        return f"the {n} most recent {noun} a search lists" if discovered else f"{n} {noun}"


def held_studies(client: Client, named: Sequence[str], discover: int | None) -> Held:
    """The studies to read: ``discover`` of them found by a search, or those of ``named`` the
    server has."""
    if discover is not None:
        return _discovered(client, discover)
    return _named(client, named)


def _named(client: Client, named: Sequence[str]) -> Held:
    found: list[str] = []
    missing: list[str] = []
    for uid in named:
        try:
            results = _search(client, ("StudyInstanceUID", uid))
        except _Unanswered as exc:
            return Held((), problem=f"the search for study {uid} {exc}")
        (found if any(_value(r, STUDY_UID) == uid for r in results) else missing).append(uid)
    if not found:
        return Held(
            (),
            tuple(missing),
            f"none of the {len(named)} studies named by --dicomweb-studies is on the server: "
            "nothing to read",
        )
    return Held(tuple(found), tuple(missing))


def _discovered(client: Client, wanted: int) -> Held:
    try:
        results = _search(client, ("limit", str(max(wanted, DISCOVERY_PAGE))))
    except _Unanswered as exc:
        return Held((), problem=f"the search for studies to read (--dicomweb-studies) {exc}")
    by_uid = {uid: o for o in results if isinstance(uid := _value(o, STUDY_UID), str)}
    recent = sorted(by_uid.items(), key=lambda item: (_when(item[1]), item[0]), reverse=True)
    if not recent:
        return Held((), problem="nothing to read: a search of studies lists none")
    return Held(tuple(uid for uid, _ in recent[:wanted]))


def _when(obj: dict[str, Any]) -> tuple[str, str]:
    """Study Date and Time as text (DA and TM sort as text; most recent first, so a study
    without them comes last)."""
    return str(_value(obj, STUDY_DATE) or ""), str(_value(obj, STUDY_TIME) or "")


def _value(obj: dict[str, Any], tag: str) -> Any:
    """The first value of an attribute, None where the result does not hold it as DICOM JSON
    (a malformed result names no study: the search checks judge it)."""
    try:
        return first_value(obj, tag)
    except ProtocolError:
        return None


class _Unanswered(Exception):
    """A search the run needs before any check was not answered with results."""


def _search(client: Client, pair: tuple[str, str]) -> list[dict[str, Any]]:
    response = search(client, "studies", pair)
    if response.status_code not in (200, 204):
        raise _Unanswered(f"answered {response.status_code}")
    try:
        return search_results(response)
    except ProtocolError as exc:
        raise _Unanswered(f"answered what is no search result: {exc}") from None
