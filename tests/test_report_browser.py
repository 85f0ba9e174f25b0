"""The HTML report as a person meets it: opened in a real headless Chromium (Debian's chromium
and chromium-driver, installed by scripts/bootstrap, driven by selenium). It renders without a
console error, a filter click hides the passing requirements, and a failing requirement opens on
its quoted rule and its evidence."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from suiterun import RunSuite, valid

from conformance.orthanc import LocalOrthanc
from conformance.report import write_all

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (Path(CHROMIUM).exists() and shutil.which("chromedriver")):
        message = "chromium and chromium-driver are not installed: run scripts/bootstrap"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_report_renders_filters_and_opens_on_evidence(
    orthanc: LocalOrthanc, run_suite: RunSuite, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    orthanc.purge()
    run = run_suite(orthanc.dicomweb_url, "-k", "walkthrough", "--dicomweb-profile=orthanc")
    page = next(p for p in write_all(valid(run.results), tmp_path) if p.suffix == ".html")
    driver = browser
    driver.get(page.as_uri())
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    rows = driver.find_elements(By.CSS_SELECTOR, "details.req")
    passing = [r for r in rows if r.get_attribute("data-verdict") == "PASS"]
    assert passing and all(r.is_displayed() for r in rows)
    driver.find_element(By.CSS_SELECTOR, '.filters input[value="PASS"]').click()
    assert not any(r.is_displayed() for r in passing)
    assert sum(r.is_displayed() for r in rows) == len(rows) - len(passing)
    failing = next(r for r in rows if r.get_attribute("data-verdict") == "FAIL")
    failing.find_element(By.TAG_NAME, "summary").click()
    assert failing.get_attribute("open") == "true"
    assert failing.find_element(By.TAG_NAME, "blockquote").is_displayed()  # the quoted rule
    evidence = failing.find_element(By.TAG_NAME, "pre")
    assert evidence.is_displayed() and "> GET " in evidence.text
