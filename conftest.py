"""Load the DICOMweb conformance plugin, so `pytest --base-url=...` here runs the checks."""

pytest_plugins = ["conformance.plugin"]
