"""The local throwaway servers our tests and scripts run the suite against.

``orthanc`` (Orthanc 1.10 from the machine's packages, or 1.12 and 1.13 fetched by
``orthancbuilds``) and ``tinypacs`` (tiny-pacs-dicomweb) start a real server as our own child
process; ``localserver`` is what they share. From the shell::

    python -m conformance.local.orthanc -- pytest -q
    python -m conformance.local.tinypacs -- pytest -q
"""
