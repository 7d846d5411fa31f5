"""GET /v1/jobs: newest first, status filters, opaque cursor pagination; on both backends."""

from __future__ import annotations

import base64

import pytest

from storage.models import Job
from tests.api.helpers import pdf

pytestmark = pytest.mark.slow


def page_through(client, **params) -> list[list[str]]:  # noqa: ANN001
    """Every page of the listing, following next_cursor; the ids on each page."""
    pages, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.http.get("/v1/jobs", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([job["id"] for job in body["jobs"]])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 20, "the cursor never ends"


def test_listing_pages_through_every_job_newest_first(any_api) -> None:  # noqa: ANN001
    client = any_api.new_client()
    document = pdf(1)
    ids = [client.submit(document, f"doc-{n}.pdf").json()["id"] for n in range(7)]
    pages = page_through(client, limit=3)
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [job_id for page in pages for job_id in page] == ids[::-1]
    first = client.http.get("/v1/jobs", params={"limit": 3}).json()
    assert first["jobs"][0]["filename"] == "doc-6.pdf" and first["jobs"][0]["links"]["self"].endswith(ids[-1])
    assert "_request_sha256" not in first["jobs"][0]["options"]
    # a job submitted after the first page was read does not shift the pages that follow
    newer = client.submit(document, "newer.pdf").json()["id"]
    second = client.http.get("/v1/jobs", params={"limit": 3, "cursor": first["next_cursor"]}).json()
    assert [job["id"] for job in second["jobs"]] == ids[::-1][3:6] and newer not in str(second)
    assert [job["id"] for job in client.http.get("/v1/jobs").json()["jobs"]] == [newer, *ids[::-1]]


def test_listing_filters_by_status(embedded) -> None:  # noqa: ANN001
    client = embedded.new_client()
    ids = [client.submit(pdf(1), "a.pdf").json()["id"] for _ in range(4)]
    for job_id in ids[:2]:
        assert client.http.post(f"/v1/jobs/{job_id}/cancel").status_code == 200

    def listed(**params) -> list[str]:  # noqa: ANN003
        response = client.http.get("/v1/jobs", params=params)
        assert response.status_code == 200, response.text
        return [job["id"] for job in response.json()["jobs"]]

    assert listed(status="cancelled") == ids[:2][::-1]
    assert listed(status="queued") == ids[2:][::-1]
    assert listed(status="queued,cancelled") == ids[::-1]
    assert listed(status=["queued", "cancelled"]) == ids[::-1]
    assert listed(status="succeeded") == []
    assert page_through(client, status="queued", limit=1) == [[ids[3]], [ids[2]]]
    bad = client.http.get("/v1/jobs", params={"status": "queued,done"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"
    assert "done" in bad.json()["error"]["message"]


def test_listing_filters_by_batch(embedded) -> None:  # noqa: ANN001
    client = embedded.new_client()
    job_id = client.submit(pdf(1), "a.pdf").json()["id"]
    assert client.http.get("/v1/jobs").json()["jobs"][0]["batch_id"] is None
    for batch_id in ("0" * 32, "no such batch!"):
        response = client.http.get("/v1/jobs", params={"batch_id": batch_id})
        assert response.status_code == 200 and response.json()["next_cursor"] is None
        listed = [job["id"] for job in response.json()["jobs"]]
        assert listed == ([] if hasattr(Job, "batch_id") else [job_id])  # the column came in 0002


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    "not a cursor", "!!!!", b64(b"\xff\xfe"), b64(b"[1, 2]"), b64(b'{"t": 5, "i": "x"}'),
    b64(b'{"t": "yesterday", "i": "abc"}'), b64(b'{"t": "2026-01-01T00:00:00+00:00", "i": "\'; drop"}'),
    b64(b'{"t": "9999-12-31T23:59:59-14:00", "i": "abc"}'), b64(b'{"p": 3}'), "x" * 5000, "é",
])
def test_an_invalid_cursor_is_refused_with_its_own_code(any_api, cursor: str) -> None:  # noqa: ANN001
    response = any_api.new_client().http.get("/v1/jobs", params={"cursor": cursor})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_cursor"


@pytest.mark.parametrize("limit", ["0", "-1", "201", str(10**30), "9" * 5000, "1e3", "abc", ""])
def test_limit_out_of_range_is_a_validation_error(embedded, limit: str) -> None:  # noqa: ANN001
    response = embedded.new_client().http.get("/v1/jobs", params={"limit": limit})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request"


def test_limit_bounds_are_inclusive(embedded) -> None:  # noqa: ANN001
    client = embedded.new_client()
    client.submit(pdf(1), "a.pdf")
    for limit in (1, 200):
        response = client.http.get("/v1/jobs", params={"limit": limit})
        assert response.status_code == 200 and len(response.json()["jobs"]) == 1
