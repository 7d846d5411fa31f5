"""One real `tessera serve` (embedded defaults, its own worker, rapidocr) and one headless
Chromium for the dashboard tests, both started once for tests/browser."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.utils.browser import downloads_dir, profile_dir, start_chromium, wait_for
from tests.utils.tessera_procs import ApiClient, Server, create_api_key, tessera_env


@dataclass
class Dashboard:
    server: Server
    home: Path
    key: str  # tenant "operator"
    api: ApiClient  # the same tenant, over plain HTTP

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="package")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    home = tmp_path_factory.mktemp("dashboard-home")
    env = tessera_env({"TESSERA_HOME": str(home)})
    key = create_api_key(env, "operator")
    server = Server(env, home / "serve.log").start()
    client = server.client(key)
    try:
        yield Dashboard(server, home, key, client)
    finally:
        client.http.close()
        server.stop()


@pytest.fixture(scope="package")
def chromium() -> Iterator[WebDriver]:
    profile = profile_dir()
    driver = start_chromium(profile)
    driver.downloads = downloads_dir(profile)  # where the test finds what the user saved
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(chromium: WebDriver, dashboard: Dashboard) -> WebDriver:
    """The dashboard, logged in with the operator's key through the login form."""
    chromium.get(f"{dashboard.url}/")
    chromium.execute_script("localStorage.clear()")
    chromium.refresh()  # a fresh page, with no key kept
    key_field = wait_for(lambda: chromium.find_element(By.ID, "key").is_displayed()
                         and chromium.find_element(By.ID, "key"), what="the login form")
    assert not chromium.find_element(By.ID, "app").is_displayed()
    key_field.send_keys(dashboard.key)
    chromium.find_element(By.CSS_SELECTOR, "#key-form button").click()
    wait_for(lambda: chromium.find_element(By.ID, "nav").is_displayed(), what="the logged-in page")
    return chromium
