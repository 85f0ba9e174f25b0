"""What the plugin does once a server is given, in rooms named after the run's stages.
``plugin.py`` imports this package, and registers its hooks, only then:

- ``session``: the settings resolved, the profile, expectations and catalog loaded, the report
  header, what the mode selects, and ``--dicomweb-purge``;
- ``state``: what one process shares between hooks and fixtures (``RunState``, the stash keys);
- ``fixtures``: the checks' fixtures (client, settings, profile, studies);
- ``record``: the hooks around each check, and its one record (``results.CheckRecord``) made
  where its verdict is judged;
- ``recorder``: the controller's collection of the records, results.json, the reports, the exit
  status explained;
- ``views``: what a person sees of those records: a failure's text and evidence, the terminal
  summary, JUnit properties, pytest-html's column;
- ``lifecycle``: the pre-flight, pytest-xdist's workers, SIGTERM, and the run's end (cleanup,
  the sweep, the record written);
- ``identity``: what the server is, as the reports name it;
- ``schedule``: which checks start first (the longest), and xdist's chunks.

It stays out of the way of other test suites that also use pytest-base-url's ``--base-url``
(selenium, playwright): the pre-flight runs only when the DICOMweb checks are targeted.
"""

from __future__ import annotations

import pytest

PLUGIN_PREFIX = "dicomweb-"
NAME = "dicomweb-session"  # registered for every run with a server: the plugin asks for it


def register(config: pytest.Config, base_url: str) -> None:
    """Register the run's hooks and fixtures, then set the run up."""
    from . import fixtures, lifecycle, record, session, views

    for module in (session, lifecycle, record, views, fixtures):
        name = PLUGIN_PREFIX + module.__name__.rsplit(".", 1)[-1]
        config.pluginmanager.register(module, name)
    session.configure(config, base_url)
