"""A real browser for the dashboard tests: Debian's headless Chromium driven by Selenium through
Debian's chromedriver (no browser download; scripts/setup.sh installs both).

Flags: the headless ones ENVIRONMENT.md lists. Without the background-networking ones Chromium
keeps trying to reach Google's hosts, which this machine's closed network refuses.
"""

from __future__ import annotations

import base64
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--disable-dev-shm-usage", "--window-size=1400,1000"]
T = TypeVar("T")


def start_chromium(profile: Path) -> WebDriver:
    """A new headless Chromium with an empty profile in `profile`. Raises RuntimeError naming
    what to install when the Debian packages are missing."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if shutil.which(path) is None]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not found: run scripts/setup.sh "
                           "(Debian packages chromium and chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    # what the user saves lands in the profile's downloads/ (downloads_dir), without a prompt
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads_dir(profile)),
                                              "download.prompt_for_download": False})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def downloads_dir(profile: Path) -> Path:
    return profile / "downloads"


def wait_for(condition: Callable[[], T], timeout: float = 20.0, what: str = "the page",
             shows: Callable[[], object] | None = None) -> T:
    """Poll `condition` until it returns something truthy; returns it. Elements replaced while
    polling (the dashboard re-renders on refresh) count as not yet. On timeout the error says
    what `shows()` returned then (what the user saw instead)."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except (StaleElementReferenceException, WebDriverException) as exc:
            last = exc
        time.sleep(0.2)
    seen = ""
    if shows is not None:
        try:
            seen = f"; the page showed {shows()!r}"
        except WebDriverException as exc:
            seen = f"; the page could not be read: {exc!r}"
    raise TimeoutError(f"waited {timeout:.0f} s for {what}{seen}" + (f" (last error: {last!r})" if last else ""))


def drop_files(driver: WebDriver, element_id: str, files: list[tuple[str, bytes, str]]) -> None:
    """Drop files (name, bytes, media type) on an element as a user dragging them from the
    desktop does: a `drop` event whose DataTransfer holds the files."""
    driver.execute_script("""
        const target = document.getElementById(arguments[0]);
        const transfer = new DataTransfer();
        for (const [name, data, type] of arguments[1]) {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            transfer.items.add(new File([bytes], name, { type }));
        }
        for (const kind of ["dragenter", "dragover", "drop"]) {
            target.dispatchEvent(new DragEvent(kind, { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }
    """, element_id, [[name, base64.b64encode(data).decode(), media] for name, data, media in files])


def profile_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="tessera-chromium-"))
