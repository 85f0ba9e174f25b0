"""The README's picture of the report: command 1's conformance.html in headless Chromium, the
failing requirements shown and the first one opened, through its deep link, on its rule, its
check, the expected verdict and the exchange.

    .venv/bin/python tests/readmescreenshot.py REPORT.html docs/report-orthanc.png
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
VERDICTS = {"PASS", "FAIL", "NON-STRICT", "NOT-IMPLEMENTED", "DISABLED", "INFO", "ERROR"}
VERDICTS |= {"NOT RUN", "UNTESTED", "USER AGENT", "WITHDRAWN"}
QUIET = ("--disable-background-networking", "--disable-component-update", "--disable-sync")


def shoot(page: Path, picture: Path) -> None:
    options = Options()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", *QUIET):
        options.add_argument(argument)
    options.add_argument("--window-size=1280,1000")
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        driver.get(page.resolve().as_uri())
        # The page's own script sets its filters up on load: click after it has.
        while driver.execute_script("return document.readyState") != "complete":
            time.sleep(0.05)
        time.sleep(0.2)
        # Only the failing requirements (the verdict filters), the first of them open.
        for box in driver.find_elements(By.CSS_SELECTOR, ".filters input[type=checkbox]"):
            value = box.get_attribute("value") or ""
            if value in VERDICTS and box.is_selected() != (value == "FAIL"):
                box.click()
        first = next(
            r for r in driver.find_elements(By.CSS_SELECTOR, "details.req") if r.is_displayed()
        )
        # Its deep link opens it and shows it just below the filter bar, as a reader's would.
        driver.execute_script("location.hash = 'req-' + arguments[0].dataset.id;", first)
        time.sleep(0.5)
        driver.save_screenshot(str(picture))
    finally:
        driver.quit()


if __name__ == "__main__":
    shoot(Path(sys.argv[1]), Path(sys.argv[2]))
