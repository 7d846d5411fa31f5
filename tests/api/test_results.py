"""GET /v1/jobs/{id}/pages (paginated) and /result in json, markdown and csv."""

from __future__ import annotations

import pytest

from tests.api.helpers import pdf

pytestmark = pytest.mark.slow


def test_pages_list_is_paginated_by_page_number(stack) -> None:  # noqa: ANN001
    client = stack.new_client()
    job = client.wait(client.submit(pdf(5), "five.pdf").json()["id"])
    assert job["status"] == "succeeded"
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = client.http.get(f"/v1/jobs/{job['id']}/pages", params=params).json()
        seen.append([page["page"] for page in body["pages"]])
        for page in body["pages"]:
            assert page["status"] == "done" and page["engine"] == "digest" and page["error"] is None
            assert page["text_preview"].startswith("digest:") and page["text"] is None
            assert page["width"] == 400 and page["height"] == 300 and page["finished_at"]
            assert page["links"]["self"] == f"/v1/jobs/{job['id']}/pages/{page['page']}"
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [[1, 2], [3, 4], [5]]
    full = client.http.get(f"/v1/jobs/{job['id']}/pages", params={"include": "text", "limit": 200}).json()
    for page in full["pages"]:
        single = client.http.get(f"/v1/jobs/{job['id']}/pages/{page['page']}").json()
        assert page["text"] == single["text"] and page["text"].startswith(page["text_preview"])


def test_pages_of_a_queued_job_and_bad_parameters(embedded) -> None:  # noqa: ANN001
    client = embedded.new_client()
    job_id = client.submit(pdf(1), "a.pdf").json()["id"]
    assert client.http.get(f"/v1/jobs/{job_id}/pages").json() == {"pages": [], "next_cursor": None}
    for params, code in (({"cursor": "zz"}, "invalid_cursor"), ({"limit": 0}, "invalid_request"),
                         ({"include": "everything"}, "invalid_request")):
        response = client.http.get(f"/v1/jobs/{job_id}/pages", params=params)
        assert response.status_code == 422 and response.json()["error"]["code"] == code, params


def test_result_formats_and_not_finished(stack) -> None:  # noqa: ANN001
    client = stack.new_client()
    job_id = client.submit(pdf(3), "charts.pdf", options={"tasks": ["ocr", "charts"]}).json()["id"]
    early = client.http.get(f"/v1/jobs/{job_id}/result", params={"format": "csv"})
    assert early.status_code == 409 and early.json()["error"]["code"] == "job_not_finished"
    assert client.wait(job_id)["status"] == "succeeded"
    csv = client.http.get(f"/v1/jobs/{job_id}/result", params={"format": "csv"})
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert csv.text == "page,chart,title,row\r\n"  # the digest engine finds no charts
    document = client.http.get(f"/v1/jobs/{job_id}/result", params={"format": "json"}).json()
    assert [page["page"] for page in document["pages"]] == [1, 2, 3]
    markdown = client.http.get(f"/v1/jobs/{job_id}/result", params={"format": "markdown"})
    assert markdown.headers["content-type"].startswith("text/markdown") and markdown.text.count("<!-- page") == 3
    bad = client.http.get(f"/v1/jobs/{job_id}/result", params={"format": "xml"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
