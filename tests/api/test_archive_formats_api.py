"""txt, hOCR and the searchable PDF over the API, on a real worker whose engine gives text without
geometry (the digest engine, as InternVL does), and the formats a job cannot give yet or at all.
The positioned path on real OCR is tests/e2e/test_archive_outputs.py."""

from __future__ import annotations

import io

import pikepdf
import pytest

from tests.api.helpers import pdf, wait_for
from tests.utils.archive_checks import hocr_problems, pdf_page_sizes, pdf_search, pdf_text

pytestmark = pytest.mark.slow
ARCHIVE = ("txt", "hocr", "pdf")


def test_a_job_without_geometry_gets_every_format_unplaced(stack) -> None:  # noqa: ANN001
    client = stack.new_client()
    job_id = client.wait(client.submit(pdf(2, "unplaced"), "two.pdf").json()["id"])["id"]
    pages = [client.http.get(f"/v1/jobs/{job_id}/pages/{n}").json() for n in (1, 2)]
    assert [(page["positioned"], page["lines"]) for page in pages] == [(False, []), (False, [])]
    document = client.http.get(f"/v1/jobs/{job_id}/result").json()
    assert [page["positioned"] for page in document["pages"]] == [False, False]

    txt = client.http.get(f"/v1/jobs/{job_id}/result", params={"format": "txt"})
    assert txt.headers["content-type"] == "text/plain; charset=utf-8"
    assert txt.headers["content-disposition"] == f'attachment; filename="{job_id}.txt"'
    assert txt.text.split("\f") == [page["text"] + "\n" for page in pages]

    hocr = client.http.get(f"/v1/jobs/{job_id}/result", params={"format": "hocr"})
    assert hocr.headers["content-type"].startswith("text/vnd.hocr+html")
    assert hocr_problems(hocr.content, overlap=False) == []
    assert hocr.text.count('class="ocr_page"') == 2 and 'class="ocr_line"' not in hocr.text
    assert all(f">{page['text']}</p>" in hocr.text for page in pages)  # text, without boxes

    searchable = client.http.get(f"/v1/jobs/{job_id}/result", params={"format": "pdf"})
    assert searchable.headers["content-type"] == "application/pdf"
    data = searchable.content
    assert pdf_page_sizes(data) == [(144.0, 108.0)] * 2  # 400 x 300 px rendered at 200 dpi
    assert [pdf_search(data, page["text"]) for page in pages] == [[1], [2]]
    with pikepdf.open(io.BytesIO(data)) as opened:
        assert str(opened.docinfo["/TesseraUnpositionedPages"]) == "1,2"

    one = client.http.get(f"/v1/jobs/{job_id}/pages/2", params={"format": "txt"})
    assert one.status_code == 200 and one.text == pages[1]["text"] + "\n"
    one_hocr = client.http.get(f"/v1/jobs/{job_id}/pages/2", params={"format": "hocr"})
    assert hocr_problems(one_hocr.content) == [] and "ppageno 1" in one_hocr.text
    assert pdf_text(data, 2).strip() == pages[1]["text"]


def test_formats_a_job_cannot_give(embedded, stack) -> None:  # noqa: ANN001
    client = embedded.new_client()
    queued = client.submit(pdf(1, "queued"), "a.pdf").json()["id"]
    for fmt in ARCHIVE:
        early = client.http.get(f"/v1/jobs/{queued}/result", params={"format": fmt})
        assert early.status_code == 409 and early.json()["error"]["code"] == "job_not_finished", fmt
    client.http.post(f"/v1/jobs/{queued}/cancel")
    for fmt in ARCHIVE:
        gone = client.http.get(f"/v1/jobs/{queued}/result", params={"format": fmt})
        assert gone.status_code == 409 and gone.json()["error"]["code"] == "no_archive_format", fmt
    for params in ({"format": "docx"}, {"format": "PDF"}):
        bad = client.http.get(f"/v1/jobs/{queued}/result", params=params)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"

    running = stack.new_client()
    job_id = running.submit(pdf(12, "cancelled"), "twelve.pdf").json()["id"]
    wait_for(lambda: running.job(job_id)["progress"]["pages_done"] >= 1 or None, what="a page done")
    running.http.post(f"/v1/jobs/{job_id}/cancel")
    listed = running.http.get(f"/v1/jobs/{job_id}/pages").json()["pages"]
    undone = next(page["page"] for page in listed if page["status"] != "done")
    for fmt in ("txt", "hocr"):
        page = running.http.get(f"/v1/jobs/{job_id}/pages/{undone}", params={"format": fmt})
        assert page.status_code == 409 and page.json()["error"]["code"] == "page_not_done", fmt
    bad = running.http.get(f"/v1/jobs/{job_id}/pages/1", params={"format": "pdf"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
