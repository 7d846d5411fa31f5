"""POST /v1/jobs with a JSON source (`{"source": {"url"} | {"s3_uri"}, "options"}`) through real
`tessera serve` + `tessera worker` processes on PostgreSQL, Redis and S3: fetched under the same
guard as a batch's sources (tessera/netguard.py, the S3 bucket allow-list, the size limit).
The refusal of private addresses is in tests/api/test_submission.py (a server that refuses them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.data.hostile import corpus
from tests.security.http_helpers import LocalHttp, Reply
from tests.security.stack import SOURCE_BUCKET, BulkStack, wait_job
from tests.utils.tessera_procs import s3_client

pytestmark = pytest.mark.slow
PDF = corpus.text_pdf()


@pytest.fixture(scope="module")
def web() -> Iterator[LocalHttp]:
    with LocalHttp() as server:
        yield server


def test_a_url_source_becomes_a_job(bulk: BulkStack, web: LocalHttp) -> None:
    client = bulk.client("sec-alice")
    url = web.serve("/scans/report.pdf", Reply(body=PDF, headers={"Content-Type": "application/pdf"}))
    body = {"source": {"url": url + "?token=secret"}, "options": {"max_tiles": 4}}
    response = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "url-1"})
    assert response.status_code == 202, response.text
    job = wait_job(client, response.json()["id"])
    assert job["status"] == "succeeded" and job["options"]["max_tiles"] == 4
    assert job["filename"] == "report.pdf"  # the path's last part: never the query (a token)
    replay = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "url-1"})
    assert replay.status_code == 200 and replay.json()["id"] == job["id"]


def test_an_s3_source_becomes_a_job(bulk: BulkStack) -> None:
    s3_client(bulk.env).put_object(Bucket=SOURCE_BUCKET, Key="jobs/box-1/scan.pdf", Body=PDF)
    client = bulk.client("sec-alice")
    response = client.post("/v1/jobs", json={"source": {"s3_uri": f"s3://{SOURCE_BUCKET}/jobs/box-1/scan.pdf"}})
    assert response.status_code == 202, response.text
    assert wait_job(client, response.json()["id"])["status"] == "succeeded"


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"source": {"s3_uri": "s3://tessera-test/some-tenant/job/input"}}, 422, "source_not_allowed"),
    ({"source": {"s3_uri": f"s3://{SOURCE_BUCKET}/no/such/object.pdf"}}, 422, "source_not_found"),
    ({"source": {"url": "file:///etc/passwd"}}, 422, "source_not_allowed"),
    ({"source": {"url": "gopher://127.0.0.1/"}}, 422, "source_not_allowed"),
    ({"source": {"url": "http://127.0.0.1:1/nothing-listens"}}, 422, "source_unavailable"),
    ({"source": {"url": "https://example.com/a.pdf", "s3_uri": "s3://x/y"}}, 422, "invalid_request"),
    ({"source": {"url": "https://example.com/a.pdf"}, "options": {"max_tiles": 99}}, 422, "invalid_request"),
    ({"sources": [{"url": "https://example.com/a.pdf"}]}, 422, "invalid_request"),
])
def test_sources_are_guarded_like_batch_sources(bulk: BulkStack, body: dict, status: int, code: str) -> None:
    response = bulk.client("sec-alice").post("/v1/jobs", json=body)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text


def test_a_missing_document_and_a_non_document_are_refused(bulk: BulkStack, web: LocalHttp) -> None:
    client = bulk.client("sec-alice")
    missing = client.post("/v1/jobs", json={"source": {"url": web.url + "/gone.pdf"}})
    assert (missing.status_code, missing.json()["error"]["code"]) == (422, "source_not_found")
    html = web.serve("/page.html", Reply(body=b"<html>not a document</html>"))
    refused = client.post("/v1/jobs", json={"source": {"url": html}})
    assert (refused.status_code, refused.json()["error"]["code"]) == (415, "unsupported_media_type")
    plain = client.post("/v1/jobs", content=b"hello", headers={"Content-Type": "text/plain"})
    assert (plain.status_code, plain.json()["error"]["code"]) == (415, "unsupported_media_type")


def test_tessera_submit_an_s3_prefix(bulk: BulkStack, tmp_path) -> None:  # noqa: ANN001
    """The bulk client lists the prefix itself (its own AWS_* credentials and endpoint) and the
    server fetches each object; results mirror the keys under the prefix, inside --out even for
    a key that climbs (`..` is a plain key segment in S3)."""
    import json
    import subprocess

    from tests.utils.tessera_procs import tessera_cmd

    s3 = s3_client(bulk.env)
    for key in ("box-1/report.pdf", "box-2/report.pdf", "../escape.pdf"):
        s3.put_object(Bucket=SOURCE_BUCKET, Key=f"bulk-client/{key}", Body=PDF)
    env = {**bulk.env, "TESSERA_API_KEY": bulk.keys["sec-alice"], "TESSERA_SERVER": bulk.server.url,
           "AWS_ENDPOINT_URL_S3": bulk.env["TESSERA_S3_ENDPOINT_URL"]}
    out = tmp_path / "out"
    run = subprocess.run(tessera_cmd("submit", f"s3://{SOURCE_BUCKET}/bulk-client/", "--out", str(out),
                                     "--progress", "plain", "--poll-interval", "0.5", "--format", "json"),
                         env=env, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    results = sorted(str(p.relative_to(out)) for p in out.rglob("*.json"))
    assert results == ["%2E%2E/escape.pdf.json", "box-1/report.pdf.json", "box-2/report.pdf.json"]
    assert json.loads((out / "box-2" / "report.pdf.json").read_text())["page_count"] >= 1
