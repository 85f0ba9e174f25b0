"""The fixtures of the checks: the run's state, settings, profile and client, the studies they
store or read, and UIDs of their own, with the types the checks annotate them with. Registered
with the run's hooks, only when a server is given; the checks name these fixtures, so their
names are fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from .. import heldstudy, synthetic
from ..client import Client
from ..heldstudy import StudyData
from ..profiles import Profile
from ..samples import SampleStudy
from ..settings import Settings
from ..synthetic import CatalogStudy
from .state import RunState, state_key

# The types of the factory fixtures, as the checks annotate them.
NewStudy = Callable[[], SampleStudy]  # new_study, new_article_study
NewSynthetic = Callable[[], CatalogStudy]  # new_synthetic


@pytest.fixture(scope="session")
def dicomweb_state(pytestconfig: pytest.Config) -> RunState:
    """The run's settings, client, samples and registry of created studies."""
    state = pytestconfig.stash.get(state_key, None)
    if state is None:
        raise pytest.UsageError("dicomweb: no --base-url given")
    return state


@pytest.fixture(scope="session")
def dicomweb_settings(dicomweb_state: RunState) -> Settings:
    """The validated settings (shown redacted)."""
    return dicomweb_state.settings


@pytest.fixture(scope="session")
def dicomweb_profile(dicomweb_state: RunState) -> Profile:
    """The server profile (declared capabilities, vendor parameters, departures)."""
    return dicomweb_state.profile


@pytest.fixture(scope="session")
def dicomweb(dicomweb_state: RunState) -> Client:
    """The HTTP client bound to the server's DICOMweb base URL."""
    return dicomweb_state.client


def _study_maker(state: RunState, request: pytest.FixtureRequest, light: bool) -> NewStudy:
    counter = iter(range(1_000_000))

    def make() -> SampleStudy:
        return state.new_study(f"{request.node.nodeid}#{next(counter)}", light)

    return make


@pytest.fixture
def new_study(dicomweb_state: RunState, request: pytest.FixtureRequest) -> NewStudy:
    """Make copies of the article's study with fresh UIDs (registered for cleanup), each image
    cropped to 8 x 8 pixels: a check of how a server stores sends kilobytes, not 8.7 MB."""
    return _study_maker(dicomweb_state, request, light=True)


@pytest.fixture
def new_article_study(dicomweb_state: RunState, request: pytest.FixtureRequest) -> NewStudy:
    """Make copies of the article's study with fresh UIDs and its own images (the
    walkthrough stores what the article stores)."""
    return _study_maker(dicomweb_state, request, light=False)


@pytest.fixture(scope="session")
def readable_studies(dicomweb_state: RunState, request: pytest.FixtureRequest) -> list[str]:
    """Studies the read-only checks read: those of --dicomweb-studies the server has (named, or
    found with auto:N), or else the study this run stored."""
    if dicomweb_state.held is not None:
        return list(dicomweb_state.held)
    return [request.getfixturevalue("stored_study").study_uid]


@pytest.fixture(scope="session")
def held_study(dicomweb_state: RunState) -> str | None:
    """The study a run that stores nothing reads in place of what it would store: the first of
    --dicomweb-studies the server has. None in a run that stores its own studies."""
    if dicomweb_state.settings.writes or not dicomweb_state.held:
        return None
    return dicomweb_state.held[0]


@pytest.fixture(scope="session")
def study_data(dicomweb_state: RunState, request: pytest.FixtureRequest) -> StudyData:
    """The data a check that only reads asks its questions of: the article's study, stored
    once (stored_study), or in a run that stores nothing a sample of the first study it reads
    (heldstudy.read: a few series, a few instances each, as the server lists them)."""
    if dicomweb_state.settings.writes or not dicomweb_state.held:
        study: StudyData = request.getfixturevalue("stored_study")
        return study
    held = heldstudy.read(dicomweb_state.client, dicomweb_state.held[0])
    dicomweb_state.sampled, dicomweb_state.sampled_whole = len(held), held.is_whole()
    return held


@pytest.fixture
def absent_uid(dicomweb_state: RunState, request: pytest.FixtureRequest) -> str:
    """A study UID this run minted and never stores, for checks of what is not there."""
    return dicomweb_state.absent_uid(request.node.nodeid)


@pytest.fixture(scope="session")
def stored_study(dicomweb_state: RunState) -> SampleStudy:
    """The article's study, stored once per run for the retrieve and search checks."""
    return dicomweb_state.stored_once(
        lambda space: dicomweb_state.new_study("stored", space=space), "the sample study"
    )


@pytest.fixture
def new_synthetic(dicomweb_state: RunState, request: pytest.FixtureRequest) -> NewSynthetic:
    """Make copies of the synthetic study with fresh UIDs (registered for cleanup)."""
    counter = iter(range(1_000_000))

    def make() -> CatalogStudy:
        return dicomweb_state.new_synthetic(f"{request.node.nodeid}#{next(counter)}")

    return make


@pytest.fixture(scope="session")
def stored_synthetic(dicomweb_state: RunState) -> CatalogStudy:
    """The synthetic study, stored once per run (read only: checks must not change it)."""
    return dicomweb_state.stored_once(
        lambda space: dicomweb_state.new_synthetic("stored", space), "the synthetic study"
    )


@pytest.fixture(scope="session")
def stored_archive(dicomweb_state: RunState) -> synthetic.SearchArchive:
    """The search archive, stored once per run, for the property checks (read only)."""
    return dicomweb_state.stored_once(
        lambda space: dicomweb_state.new_archive("archive", space), "the search archive"
    )


@dataclass(frozen=True)
class EmptyStudy:
    """A study UID of this run's, and the Patient ID every instance of the run carries."""

    study_uid: str
    patient_id: str


@pytest.fixture
def empty_study(dicomweb_state: RunState, request: pytest.FixtureRequest) -> EmptyStudy:
    """A fresh, registered (and so cleaned up) study for a check that stores its own
    instances into it."""
    uid = dicomweb_state.new_study_uid(request.node.nodeid)
    return EmptyStudy(uid, dicomweb_state.marker)
