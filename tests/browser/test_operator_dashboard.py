"""The dashboard in a real browser (headless Chromium) against a real `tessera serve`: what an
operator sees and does. Every assertion reads the rendered page (text, elements shown, image
pixels), not the dashboard's internals."""

from __future__ import annotations

import io
import json
import subprocess
import zipfile

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from storage.blobs import BlobKeys, LocalBlobStore
from tessera.synthetic import label_png, make_pdf, render_text_page
from tests.utils.browser import drop_files, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.browser]

PAGES = [["Tessera reads documents page by page.", "The quick brown fox jumps over 12 lazy dogs."],
         ["Invoice 4471 was paid on the third of March.", "Thank you for your order."]]
PAGE_SIZE = (1400, 500)  # pixels at the PDF's 200 dpi
FINISH_S = 240.0
HOSTILE_NAME = "<img src=x onerror=window.__pwned=1>.png"
HOSTILE_TEXT = """# Quarterly report

<img src=x onerror="window.__pwned=2"> and <script>window.__pwned=3</script>

| Region | Sales |
|--------|------:|
| North  | 12    |

[a link](javascript:window.__pwned=4) ![logo](http://example.invalid/logo.png)
"""


def two_page_pdf() -> bytes:
    return make_pdf([render_text_page(lines, size=PAGE_SIZE) for lines in PAGES])


def by_id(driver: WebDriver, element_id: str) -> WebElement:
    return driver.find_element(By.ID, element_id)


def text_of(driver: WebDriver, element_id: str) -> str:
    return by_id(driver, element_id).text


def shown(driver: WebDriver, element: WebElement) -> bool:
    """Rendered: not display:none itself or through a parent (SVG groups included)."""
    return driver.execute_script("return arguments[0].getClientRects().length > 0 && "
                                 "getComputedStyle(arguments[0]).display !== 'none'", element)


def open_view(driver: WebDriver, name: str) -> None:
    driver.find_element(By.CSS_SELECTOR, f'#nav a[data-view="{name}"]').click()
    wait_for(lambda: by_id(driver, f"view-{name}").is_displayed(), what=f"the {name} view")


def test_log_in_submit_watch_it_finish_and_read_its_pages(browser: WebDriver) -> None:
    assert text_of(browser, "who").startswith("key tsk_")
    open_view(browser, "submit")
    drop_files(browser, "drop", [("lighthouse.pdf", two_page_pdf(), "application/pdf")])
    max_tiles = by_id(browser, "opt-max-tiles")
    max_tiles.clear()
    max_tiles.send_keys("6", Keys.TAB)  # a change event: the preview is planned again
    # 1400x500 at max_tiles 6: the 3x1 grid is the closest shape (3.0 to 2.8) + the thumbnail.
    totals = "1 document, 2 pages, 8 tiles, 2,048 visual tokens"
    wait_for(lambda: text_of(browser, "plan-totals") == totals, what=f"the preview {totals!r}")
    preview = browser.find_element(By.CSS_SELECTOR, "#plan tbody tr")
    preview.find_element(By.TAG_NAME, "summary").click()
    assert "1400 × 500" in preview.text and "3 × 1" in preview.text and "1,024" in preview.text

    by_id(browser, "send").click()
    job_link = wait_for(lambda: browser.find_element(By.CSS_SELECTOR, "#submitted a.submitted-link"),
                        what="the new job's link")
    job_id = job_link.text
    job_link.click()
    wait_for(lambda: text_of(browser, "detail-meta").startswith("succeeded, 2/2 pages done"), FINISH_S,
             "the job to finish, seen on the refreshing job view",
             shows=lambda: (browser.current_url, text_of(browser, "detail-meta"), text_of(browser, "jobs-error"),
                            text_of(browser, "detail-error")))
    row = browser.find_element(By.CSS_SELECTOR, f'#jobs tr[data-job-id="{job_id}"]')
    assert "lighthouse.pdf" in row.text and "succeeded" in row.text and "2/2" in row.text
    labels = [button.text for button in browser.find_elements(By.CSS_SELECTOR, "#downloads button")]
    assert labels == ["JSON", "Markdown", "Charts CSV", "Plain text", "hOCR", "Searchable PDF"]
    browser.find_element(By.CSS_SELECTOR, '#downloads button[data-format="pdf"]').click()
    saved = browser.downloads / f"{job_id}.pdf"
    wait_for(lambda: saved.exists() and saved.stat().st_size > 0, what="the searchable PDF to be saved")
    searchable = subprocess.run(["pdftotext", str(saved), "-"], capture_output=True, text=True).stdout
    assert searchable.count("\f") == 2 and "Invoice 4471" in searchable.split("\f")[1]

    browser.find_element(By.CSS_SELECTOR, "#pages a.page-link").click()
    wait_for(lambda: "page 1 (1 of 2)" in text_of(browser, "page-title"), what="page 1")
    assert_page_shown(browser, PAGES[0][0])
    assert text_of(browser, "page-rotation").startswith("Rotation: none")
    assert text_of(browser, "page-warnings")  # the page's warnings, or "No warnings."

    lines = browser.find_elements(By.CSS_SELECTOR, "#overlay-lines rect")
    assert len(lines) >= 2 and text_of(browser, "lines-count") == f"({len(lines)})"
    assert all(shown(browser, rect) for rect in lines)
    by_id(browser, "show-lines").click()
    assert not any(shown(browser, rect) for rect in lines)

    grid = browser.find_elements(By.CSS_SELECTOR, "#overlay-tiles line")
    assert len(grid) == 2 and not any(shown(browser, line) for line in grid)  # 3x1: two inner lines
    by_id(browser, "show-tiles").click()
    assert all(shown(browser, line) for line in grid)
    labels = [label.text for label in browser.find_elements(By.CSS_SELECTOR, "#overlay-tiles text")]
    assert labels == ["1", "2", "3"]
    assert text_of(browser, "tiles-summary") == ("(3 × 1 grid, 4 tiles with the thumbnail, 1,024 visual "
                                                  "tokens; planned at max_tiles 6)")

    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.ARROW_RIGHT)
    wait_for(lambda: "page 2 (2 of 2)" in text_of(browser, "page-title"), what="page 2 after →")
    assert_page_shown(browser, PAGES[1][0])
    assert by_id(browser, "page-next").get_attribute("disabled") is not None
    body.send_keys(Keys.ARROW_LEFT)
    wait_for(lambda: "page 1 (1 of 2)" in text_of(browser, "page-title"), what="page 1 after ←")
    body.send_keys(Keys.ESCAPE)
    wait_for(lambda: by_id(browser, "detail").is_displayed() and job_id in text_of(browser, "detail-title"),
             what="the job view after Esc")


def assert_page_shown(browser: WebDriver, line: str) -> None:
    """The page image is on screen at its stored size (fetched with the key, shown from a blob:
    URL the Content-Security-Policy allows) and its text beside it."""
    wait_for(lambda: text_of(browser, "page-image-status") == "1400 × 500 px as stored", what="the page image")
    image = by_id(browser, "page-image")
    assert image.get_attribute("src").startswith("blob:")
    size = browser.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight, "
                                  "arguments[0].complete]", image)
    assert size == [1400, 500, True]
    assert shown(browser, image) and image.size["width"] > 300
    words = set(line.replace(".", "").split())
    seen = set(text_of(browser, "page-text").replace(".", "").split())
    assert len(words & seen) >= len(words) - 1, (line, text_of(browser, "page-text"))


def test_queue_panel_updates_without_reloading(browser: WebDriver, dashboard) -> None:  # noqa: ANN001
    open_view(browser, "queue")
    # `tessera serve` runs two workers (tessera/supervisor.py): inference, and the rest.
    def alive() -> list[str] | None:
        rows = [row.text for row in browser.find_elements(By.CSS_SELECTOR, "#workers tbody tr") if "alive" in row.text]
        return rows if len(rows) == 2 else None

    workers = wait_for(alive, what="both workers alive in the queue panel")
    assert all(text.startswith("tessera-") and "ago" in text for text in workers), workers
    assert sorted(text.split()[1] for text in workers) == ["cpu,", "gpu"], workers
    assert any("cpu, webhooks" in text for text in workers), workers
    before_done = done_last_hour(browser)
    before_updated = text_of(browser, "queue-updated")
    browser.execute_script("window.__sameDocument = true")

    response = dashboard.api.submit(make_pdf([render_text_page(["One more page for the queue."])]), "queue.pdf")
    assert response.status_code == 202, response.text
    dashboard.api.wait(response.json()["id"], timeout=FINISH_S)
    wait_for(lambda: done_last_hour(browser) == before_done + 1, 30, "the panel to count the page done")
    assert text_of(browser, "queue-updated") != before_updated
    this_minute = browser.find_elements(By.CSS_SELECTOR, "#queue-minutes tbody tr")
    assert len(this_minute) == 10
    assert sum(int(row.find_elements(By.TAG_NAME, "td")[3].text) for row in this_minute[:2]) >= 1
    assert browser.execute_script("return window.__sameDocument") is True  # no reload
    bars = browser.find_elements(By.CSS_SELECTOR, "#queue-chart rect.done")
    assert len(bars) == 60 and any(float(bar.get_attribute("height")) > 0 for bar in bars)


def done_last_hour(browser: WebDriver) -> int:
    text = wait_for(lambda: text_of(browser, "queue-hour"), what="the last hour's figures")
    return int(text.split(" done")[0].replace(",", ""))


def test_an_archive_becomes_a_batch_whose_entries_link_to_their_jobs(browser: WebDriver) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("scans/a.pdf", make_pdf([render_text_page(["Archive entry A."])]))
        zipped.writestr("b.png", label_png("Entry B", (600, 200)))
        zipped.writestr("notes.txt", b"not a document")
    open_view(browser, "submit")
    by_id(browser, "clear").click()
    drop_files(browser, "drop", [("docs.zip", archive.getvalue(), "application/zip")])
    wait_for(lambda: text_of(browser, "plan-totals").startswith("2 documents, 2 pages"), what="the archive's preview")
    preview = browser.find_element(By.CSS_SELECTOR, "#plan tbody tr")
    assert "archive (3 entries)" in preview.text
    preview.find_element(By.TAG_NAME, "summary").click()
    assert "notes.txt" in preview.text and "unsupported_media_type" in preview.text

    by_id(browser, "send").click()
    batch_link = wait_for(lambda: browser.find_element(By.CSS_SELECTOR, "#submitted a.submitted-link"),
                          what="the batch link")
    assert "(2 jobs)" in text_of(browser, "submitted")
    batch_link.click()
    wait_for(lambda: text_of(browser, "batch-title").endswith("finished"), FINISH_S, "the batch to finish")
    totals = dict(zip([dt.text for dt in browser.find_elements(By.CSS_SELECTOR, "#batch-totals dt")],
                      [dd.text for dd in browser.find_elements(By.CSS_SELECTOR, "#batch-totals dd")]))
    assert (totals["entries"], totals["jobs"], totals["rejected"], totals["succeeded"]) == ("3", "2", "1", "2")
    entries = browser.find_elements(By.CSS_SELECTOR, "#batch-entries tbody tr")
    assert [row.find_elements(By.TAG_NAME, "td")[1].text for row in entries] == ["scans/a.pdf", "b.png", "notes.txt"]
    assert "rejected" in entries[2].text and "unsupported_media_type" in entries[2].text
    batch_row = wait_for(lambda: [r for r in browser.find_elements(By.CSS_SELECTOR, "#batches tbody tr")
                                  if r.text.startswith(text_of(browser, "batch-title")[6:18])],
                         what="the batch in the list")[0]
    assert "finished" in batch_row.text
    entries[0].find_element(By.CSS_SELECTOR, "a.entry-job").click()
    wait_for(lambda: text_of(browser, "detail-title").startswith("a.pdf — "), what="the entry's job")


def test_document_text_and_names_stay_text_and_charts_are_tables(browser: WebDriver, dashboard) -> None:  # noqa: ANN001
    response = dashboard.api.submit(label_png("Hostile", (400, 120)), HOSTILE_NAME)
    assert response.status_code == 202, response.text
    job = dashboard.api.wait(response.json()["id"], timeout=FINISH_S)
    page = dashboard.api.http.get(f"/v1/jobs/{job['id']}/pages/1").json()
    tenant_id = _tenant(dashboard, job)
    # The CPU engines find no charts; the page's stored result is given text and a chart the way
    # the InternVL engine writes them (workers/internvl/charts.py), as a hostile document would.
    key = BlobKeys.page_result(tenant_id, job["id"], 1, page["attempt"])  # the attempt the row names
    LocalBlobStore(dashboard.home / "blobs").put(key, json.dumps({
        **page, "text": HOSTILE_TEXT, "lines": [], "charts": [{
            "bbox": [10, 10, 200, 100], "title": "Sales <b>by</b> quarter",
            "table": {"columns": ["Quarter", "Sales"], "rows": [["Q1", "10"], ["Q2", "<i>14</i>"]]}}],
    }).encode())

    browser.get(f"{dashboard.url}/#jobs")
    row = wait_for(lambda: browser.find_element(By.CSS_SELECTOR, f'#jobs tr[data-job-id="{job["id"]}"]'),
                   what="the job with a hostile name")
    assert HOSTILE_NAME in row.text and not row.find_elements(By.TAG_NAME, "img")
    browser.get(f"{dashboard.url}/#job/{job['id']}/page/1")
    article = wait_for(lambda: by_id(browser, "page-text").find_elements(By.TAG_NAME, "h1") and by_id(browser, "page-text"),
                       what="the page's Markdown")
    assert article.find_element(By.TAG_NAME, "h1").text == "Quarterly report"
    assert '<img src=x onerror="window.__pwned=2"> and <script>window.__pwned=3</script>' in article.text
    assert "a link" in article.text and "[image: logo]" in article.text
    for tag in ("img", "script", "a", "iframe"):
        assert not article.find_elements(By.TAG_NAME, tag), tag
    cells = [cell.text for cell in article.find_elements(By.CSS_SELECTOR, "table td")]
    assert cells == ["North", "12"]
    chart = by_id(browser, "page-charts").find_element(By.TAG_NAME, "table")
    assert chart.find_element(By.TAG_NAME, "caption").text == "Sales <b>by</b> quarter"
    assert [th.text for th in chart.find_elements(By.TAG_NAME, "th")] == ["Quarter", "Sales"]
    assert [td.text for td in chart.find_elements(By.CSS_SELECTOR, "tbody td")] == ["Q1", "10", "Q2", "<i>14</i>"]
    assert text_of(browser, "lines-count") == "(none from this engine)"
    # The policy still refuses inline script, even one the page's own code would insert.
    browser.execute_script("const s = document.createElement('script'); s.textContent = 'window.__inline = 1';"
                           "document.body.append(s)")
    assert browser.execute_script("return [window.__pwned, window.__inline]") == [None, None]


def _tenant(dashboard, job: dict) -> str:  # noqa: ANN001
    """The job's tenant id: its page image's blob key starts with it (storage/blobs.py)."""
    [folder] = [path.name for path in (dashboard.home / "blobs").iterdir()
                if (path / job["id"]).is_dir()]
    return folder
