"""The dashboard in a real browser (Debian's chromium, driven by Selenium through its
chromedriver; `scripts/setup.sh` installs both): its script runs under the page's own Content
Security Policy, logs in with a key, lists the tenant's jobs and opens one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.api.helpers import pdf

pytestmark = pytest.mark.slow
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_dashboard_logs_in_lists_jobs_and_opens_one(embedded, browser: webdriver.Chrome) -> None:  # noqa: ANN001
    client = embedded.new_client()
    key = client.http.headers["Authorization"].split(" ", 1)[1]
    job_id = client.submit(pdf(2), "dash<b>board<b>.pdf").json()["id"]  # no worker: it stays queued
    wait = WebDriverWait(browser, 30)
    browser.get(embedded.server.url + "/")
    wait.until(lambda driver: driver.find_element(By.ID, "login").is_displayed())
    browser.find_element(By.ID, "key").send_keys(key)
    browser.find_element(By.CSS_SELECTOR, "#key-form button[type=submit]").click()
    row = wait.until(lambda driver: next((r for r in driver.find_elements(By.CSS_SELECTOR, "#jobs tbody tr")
                                          if job_id[:12] in r.text), None))
    cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
    assert cells[:4] == [job_id[:12], "dash<b>board<b>.pdf", "queued", "0/0"]  # text, never markup
    row.click()
    wait.until(lambda driver: job_id in driver.find_element(By.ID, "detail-title").text)
    assert browser.find_element(By.ID, "detail-meta").text == "queued, 0/0 pages done"
    errors = [entry for entry in browser.get_log("browser")
              if entry["level"] == "SEVERE" and "/favicon.ico" not in entry["message"]]  # the browser's own ask
    assert errors == [], errors  # no script error, nothing refused by the page's CSP
