"""The HTML report as a person meets it: opened in a real headless Chromium (Debian's chromium
and chromium-driver, installed by scripts/bootstrap, driven by selenium). It renders without a
console error; a filter click hides what it names and the counts say how many; a link to a
requirement opens it below the sticky filter bar, even when the filters hide it; the legend
says what each verdict means; a gate run opens on what changed, with a filter for it; and
printed, every requirement is open with its evidence and the filters are gone.

One test runs the walkthrough on a real Orthanc; the others read a whole run made up from the
catalog (tests/reportsample.py), so that they need no server."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reportsample import whole_run
from suiterun import RunSuite, valid

from conformance import report
from conformance.local.orthanc import LocalOrthanc
from conformance.reports import write_all

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


@pytest.fixture
def page(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Opens the report of a results document in the browser, on screen media; yields the
    function that does it (document, optional #fragment) -> the driver."""

    def open_report(document: dict[str, Any], fragment: str = "") -> Any:
        folder = tmp_path_factory.mktemp("report")
        html = next(p for p in write_all(valid(document), folder) if p.suffix == ".html")
        browser.get("about:blank")
        browser.get(html.as_uri() + fragment)
        return browser

    yield open_report
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})


def console_errors(driver: Any) -> list[Any]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def shown(driver: Any, selector: str) -> list[bool]:
    """Whether each element the selector finds is rendered (in one call: there are hundreds)."""
    script = "return [...document.querySelectorAll(arguments[0])].map(e => e.checkVisibility())"
    return list(driver.execute_script(script, selector))


def rows(driver: Any) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, "details.req"))


def box(driver: Any, value: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, f'.filters input[value="{value}"]')


def test_the_report_renders_filters_and_opens_on_evidence(
    orthanc: LocalOrthanc, run_suite: RunSuite, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    orthanc.purge()
    run = run_suite(orthanc.dicomweb_url, "-k", "walkthrough", "--dicomweb-profile=orthanc")
    document = valid(run.results)
    # A subset of the suite: its headline says so, whatever its verdicts.
    assert report.conformance_line(document).startswith("PARTIAL (")
    page = next(p for p in write_all(document, tmp_path) if p.suffix == ".html")
    driver = browser
    driver.get(page.as_uri())
    assert console_errors(driver) == []
    assert "PARTIAL (" in driver.find_element(By.CSS_SELECTOR, ".line").text
    all_rows = rows(driver)
    passing = [r for r in all_rows if r.get_attribute("data-verdict") == "PASS"]
    assert passing and all(r.is_displayed() for r in all_rows)
    box(driver, "PASS").click()
    assert not any(r.is_displayed() for r in passing)
    assert sum(r.is_displayed() for r in all_rows) == len(all_rows) - len(passing)
    failing = next(r for r in all_rows if r.get_attribute("data-verdict") == "FAIL")
    failing.find_element(By.TAG_NAME, "summary").click()
    assert failing.get_attribute("open") == "true"
    assert failing.find_element(By.TAG_NAME, "blockquote").is_displayed()  # the quoted rule
    evidence = failing.find_element(By.TAG_NAME, "pre")
    assert evidence.is_displayed() and "> GET " in evidence.text


def test_a_link_to_a_requirement_opens_it_below_the_filter_bar(page: Any) -> None:
    document = whole_run()
    failing = [r["id"] for r in document["requirements"] if r["verdict"] == "FAIL"]
    target = failing[len(failing) // 2]  # far down the page
    driver = page(document, f"#req-{target}")
    assert console_errors(driver) == []
    row = driver.execute_script("return document.getElementById(arguments[0])", f"req-{target}")
    assert row.get_attribute("open") == "true"
    bar_bottom, row_top = driver.execute_script(
        "return [document.querySelector('.filters').getBoundingClientRect().bottom,"
        " arguments[0].getBoundingClientRect().top]",
        row,
    )
    assert bar_bottom <= row_top <= bar_bottom + 40, (bar_bottom, row_top)  # not under the bar
    # Filtered out, a link to it still shows it, open.
    other = failing[-1]
    box(driver, "FAIL").click()
    hidden = driver.execute_script("return document.getElementById(arguments[0])", f"req-{other}")
    assert not hidden.is_displayed()
    driver.execute_script("location.hash = arguments[0]", f"#req-{other}")
    assert hidden.is_displayed() and hidden.get_attribute("open") == "true"
    assert hidden.find_element("css selector", "pre").is_displayed()  # its evidence


def test_each_filter_says_how_many_it_holds_and_hides_exactly_those(page: Any) -> None:
    from selenium.webdriver.common.by import By

    driver = page(whole_run())
    found = driver.execute_script(
        "return [...document.querySelectorAll('details.req')].map(r => ({...r.dataset}))"
    )
    count = driver.find_element(By.ID, "shown")
    assert count.text == f"{len(found)} of {len(found)} requirements shown"
    for attribute in ("verdict", "level", "transaction"):
        for value, n in Counter(r[attribute] for r in found).items():
            label = box(driver, value).find_element(By.XPATH, "..").text
            assert label.endswith(f"({n})"), (attribute, value, label)
    box(driver, "FAIL").click()
    box(driver, "MAY").click()
    kept = [r["verdict"] != "FAIL" and r["level"] != "MAY" for r in found]
    assert shown(driver, "details.req") == kept
    assert count.text == f"{sum(kept)} of {len(found)} requirements shown"
    driver.find_element(By.ID, "search").send_keys("qido-match")
    matching = [k and "QIDO-MATCH" in r["id"] for k, r in zip(kept, found, strict=True)]
    assert shown(driver, "details.req") == matching and any(matching)


def test_the_legend_says_what_every_verdict_means(page: Any) -> None:
    from selenium.webdriver.common.by import By

    driver = page(whole_run())
    legend = driver.find_element(By.CSS_SELECTOR, ".legend")
    assert legend.is_displayed()
    cells = legend.find_elements(By.XPATH, "./div")
    explained = {
        cells[i].text: cells[i + 1].text for i in range(0, len(cells), 2) if cells[i + 1].text
    }
    assert list(explained) == [
        "PASS",
        "FAIL",
        "NON-STRICT",
        "NOT-IMPLEMENTED",
        "DISABLED",
        "INFO",
        "ERROR",
        "NOT RUN",
        "UNTESTED",
        "USER AGENT",
        "WITHDRAWN",
    ]
    assert "SHOULD" in explained["NON-STRICT"] and "MUST" in explained["FAIL"]
    verdicts = driver.execute_script(
        "return [...document.querySelectorAll('details.req')].map(r => r.dataset.verdict)"
    )
    assert set(verdicts) <= set(explained)


def test_a_gate_run_opens_on_what_changed_and_filters_it(page: Any) -> None:
    from selenium.webdriver.common.by import By

    document = whole_run(gate=True)
    driver = page(document)
    assert console_errors(driver) == []
    section = driver.find_element(By.ID, "changed")
    summary_table = driver.find_element(By.XPATH, "//h2[starts-with(., 'Summary')]")
    assert section.location["y"] < summary_table.location["y"]  # at the top
    assert section.find_element(By.CSS_SELECTOR, ".line").text == report.gate_summary(
        document["checks"]
    )
    changed = [c for c in document["checks"] if report.change(c)]
    assert len(section.find_elements(By.TAG_NAME, "li")) == len(changed) == 4
    ids = {rid for c in changed for rid in c["requirements"]}
    only = driver.find_element(By.ID, "changed-only")
    assert only.find_element(By.XPATH, "..").text.endswith(f"({len(ids)})")
    only.click()
    found = [r.get_attribute("data-id") for r in rows(driver)]
    assert {i for i, s in zip(found, shown(driver, "details.req"), strict=True) if s} == ids
    only.click()
    assert all(shown(driver, "details.req"))
    # A link of the section opens its requirement.
    link = section.find_element(By.CSS_SELECTOR, "a[href^='#req-']")
    link.click()
    target = driver.find_element(By.ID, link.get_attribute("href").split("#")[1])
    assert target.get_attribute("open") == "true"
    # A run without an expectations file is no gate: no such section, no such filter.
    driver = page(whole_run())
    assert driver.find_elements(By.ID, "changed") == []
    assert driver.find_elements(By.ID, "changed-only") == []


def test_printed_every_requirement_is_open_with_its_evidence_and_no_filters(page: Any) -> None:
    from selenium.webdriver.common.by import By

    driver = page(whole_run())
    box(driver, "PASS").click()  # a filtered view on screen: the print is whole all the same
    assert not all(shown(driver, "details.req"))
    assert not any(shown(driver, "details.req blockquote"))  # closed
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    assert not driver.find_element(By.CSS_SELECTOR, ".filters").is_displayed()
    assert all(shown(driver, "details.req"))
    assert all(shown(driver, "details.req blockquote"))  # every rule
    evidence = shown(driver, "details.req pre")
    assert evidence and all(evidence)  # every exchange
    # Back on screen, the rows are as the reader left them: closed.
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    assert not any(shown(driver, "details.req blockquote"))
    assert driver.find_element(By.CSS_SELECTOR, ".filters").is_displayed()
