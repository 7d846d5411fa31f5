"""POST/GET /v1/batches through real `tessera serve` + `tessera worker` processes (digest
engine) on PostgreSQL, Redis and S3: archives, URL and S3 sources, limits, tenant isolation."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

import pytest

from tests.data.hostile import corpus
from tests.security.http_helpers import LocalHttp, Reply
from tests.security.stack import SOURCE_BUCKET, BulkStack, wait_batch
from tests.utils.tessera_procs import s3_client

pytestmark = pytest.mark.slow
PDF = corpus.text_pdf()
PNG = corpus.tiny_png()


@pytest.fixture(scope="module")
def web() -> Iterator[LocalHttp]:
    with LocalHttp() as server:
        yield server


def post_archive(client, data: bytes, name: str = "docs.zip", **form: str):  # noqa: ANN001, ANN201
    return client.post("/v1/batches", files={"file": (name, data)}, data=form or None)


def codes(batch: dict) -> Counter:
    return Counter(entry["error"]["code"] if entry["status"] == "rejected" else entry["status"]
                   for entry in batch["entries"])


def test_zip_batch_makes_one_job_per_good_entry(bulk: BulkStack) -> None:
    client = bulk.client("sec-alice")
    archive = corpus.zip_of([("a/report.pdf", PDF), ("scan.png", PNG), ("../../etc/cron.pdf", PDF),
                             ("page.html", b"<html>not a document</html>"), ("folder/", b"")])
    response = post_archive(client, archive, options=json.dumps({"max_tiles": 4}))
    assert response.status_code == 202, response.text
    batch = response.json()
    assert batch["status"] in ("processing", "finished") and batch["source"] == "archive"
    assert [(e["index"], e["name"]) for e in batch["entries"]] == [
        (0, "a/report.pdf"), (1, "scan.png"), (2, "../../etc/cron.pdf"), (3, "page.html")]
    assert batch["entries"][2]["error"]["code"] == "unsafe_archive_entry"
    assert batch["entries"][3]["error"]["code"] == "unsupported_media_type"
    done = wait_batch(client, batch["id"])
    assert codes(done) == {"succeeded": 2, "unsafe_archive_entry": 1, "unsupported_media_type": 1}
    assert done["totals"]["succeeded"] == 2 and done["totals"]["rejected"] == 2
    assert done["totals"]["entries"] == 4 and done["finished_at"]
    job = client.get(f"/v1/jobs/{done['entries'][0]['job_id']}").json()
    assert job["filename"] == "report.pdf" and job["options"]["max_tiles"] == 4


@pytest.mark.parametrize(("name", "gz"), [("docs.tar", False), ("docs.tar.gz", True)])
def test_tar_batches(bulk: BulkStack, name: str, gz: bool) -> None:
    client = bulk.client("sec-alice")
    archive = corpus.tar_of([("one.pdf", PDF), corpus.tar_link("evil.pdf", "/etc/shadow"),
                             ("/abs/two.pdf", PDF)], gz=gz)
    response = post_archive(client, archive, name)
    assert response.status_code == 202, response.text
    assert codes(wait_batch(client, response.json()["id"])) == {"succeeded": 1, "unsafe_archive_entry": 2}


def test_url_and_s3_sources(bulk: BulkStack, web: LocalHttp) -> None:
    client = bulk.client("sec-alice")
    s3 = s3_client(bulk.env)
    s3.put_object(Bucket=SOURCE_BUCKET, Key="in/doc.pdf", Body=PDF)
    sources = [{"url": web.serve("/doc.pdf", Reply(200, PDF))}, {"url": web.url + "/missing.pdf"},
               {"s3_uri": f"s3://{SOURCE_BUCKET}/in/doc.pdf"}, {"s3_uri": f"s3://{SOURCE_BUCKET}/in/nope.pdf"},
               {"s3_uri": f"s3://{bulk.env['TESSERA_S3_BUCKET']}/some-tenant/some-job/input"},
               {"url": "file:///etc/passwd"}, {"url": web.serve("/page.html", Reply(200, b"<html></html>"))}]
    response = client.post("/v1/batches", json={"sources": sources, "options": {"pages": "1"}})
    assert response.status_code == 202, response.text
    batch = wait_batch(client, response.json()["id"])
    assert [e["error"]["code"] if e["error"] else e["status"] for e in batch["entries"]] == [
        "succeeded", "source_not_found", "succeeded", "source_not_found", "source_not_allowed",
        "source_not_allowed", "unsupported_media_type"]
    assert batch["source"] == "sources" and batch["entries"][0]["name"] == web.url + "/doc.pdf"


def test_s3_prefix(bulk: BulkStack) -> None:
    client = bulk.client("sec-alice")
    s3 = s3_client(bulk.env)
    for n in range(3):
        s3.put_object(Bucket=SOURCE_BUCKET, Key=f"prefix-test/{n}.pdf", Body=PDF)
    s3.put_object(Bucket=SOURCE_BUCKET, Key="prefix-test/sub/", Body=b"")
    response = client.post("/v1/batches", json={"s3_prefix": f"s3://{SOURCE_BUCKET}/prefix-test/"})
    assert response.status_code == 202, response.text
    batch = wait_batch(client, response.json()["id"])
    assert codes(batch) == {"succeeded": 3} and batch["source"] == "s3_prefix"
    refused = client.post("/v1/batches", json={"s3_prefix": f"s3://{bulk.env['TESSERA_S3_BUCKET']}/"})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "source_not_allowed"
    empty = client.post("/v1/batches", json={"s3_prefix": f"s3://{SOURCE_BUCKET}/nothing-here/"})
    assert empty.status_code == 422 and empty.json()["error"]["code"] == "empty_batch"


def test_other_tenants_get_404(bulk: BulkStack) -> None:
    alice, mallory = bulk.client("sec-alice"), bulk.client("sec-mallory")
    batch_id = post_archive(alice, corpus.zip_of([("a.pdf", PDF)])).json()["id"]
    response = mallory.get(f"/v1/batches/{batch_id}")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert alice.get(f"/v1/batches/{batch_id}").status_code == 200
    assert alice.get("/v1/batches/not-a-batch").status_code == 404


def test_idempotency_key_replays_the_batch(bulk: BulkStack) -> None:
    client = bulk.client("sec-alice")
    archive = corpus.zip_of([("a.pdf", PDF), ("b.png", PNG)])
    headers = {"Idempotency-Key": "batch-replay-1"}
    first = client.post("/v1/batches", files={"file": ("x.zip", archive)}, headers=headers)
    second = client.post("/v1/batches", files={"file": ("x.zip", archive)}, headers=headers)
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["id"] == second.json()["id"]
    assert [e["job_id"] for e in first.json()["entries"]] == [e["job_id"] for e in second.json()["entries"]]


@pytest.mark.parametrize(("kwargs", "status", "code"), [
    ({"files": {"file": ("doc.zip", PDF)}}, 415, "unsupported_media_type"),
    ({"files": {"file": ("broken.zip", b"PK\x03\x04" + b"\x00" * 100)}}, 422, "corrupt_archive"),
    ({"files": {"file": ("empty.zip", corpus.zip_of([]))}}, 422, "empty_batch"),
    ({"files": {"file": ("many.zip", corpus.zip_of([(f"{n}.pdf", b"x") for n in range(101)]))}},
     422, "too_many_entries"),
    ({"files": {"other": ("a.zip", b"x")}}, 422, "invalid_request"),
    ({"files": {"file": ("a.zip", corpus.zip_of([("a.pdf", PDF)]))}, "data": {"webhook_url": "ftp://x/y"}},
     422, "invalid_request"),
    ({"files": {"file": ("a.zip", corpus.zip_of([("a.pdf", PDF)]))}, "data": {"options": "{\"colour\": 1}"}},
     422, "invalid_options"),
    ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 422, "invalid_request"),
    ({"json": {"sources": [{"url": "http://x/a.pdf"}], "s3_prefix": "s3://b/"}}, 422, "invalid_request"),
    ({"json": {"sources": []}}, 422, "invalid_request"),
    ({"json": {"sources": [{"url": "http://x/a.pdf"}] * 101}}, 422, "too_many_entries"),
    ({"json": {"sources": [{"path": "/etc/passwd"}]}}, 422, "invalid_request"),
    ({"json": {"sources": [{"url": "x" * 3000}]}}, 422, "invalid_request"),
    ({"content": b"x" * 2 * 2**20, "headers": {"Content-Type": "application/json"}}, 413, "payload_too_large"),
    ({"content": b"sources", "headers": {"Content-Type": "text/plain"}}, 415, "unsupported_media_type"),
])
def test_request_level_refusals(bulk: BulkStack, kwargs: dict, status: int, code: str) -> None:
    response = bulk.client("sec-alice").post("/v1/batches", **kwargs)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


def test_chunked_json_body_is_bounded(bulk: BulkStack) -> None:
    """No Content-Length to check up front: the body is counted as it streams in."""
    chunks = (b'{"sources": [' + b'{"url": "http://x/a.pdf"},' * 60_000 + b"]}" for _ in range(1))
    response = bulk.client("sec-alice").post("/v1/batches", content=chunks,
                                             headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"


def test_batches_on_the_embedded_defaults(tmp_path) -> None:  # noqa: ANN001
    """SQLite, a blob folder and the filesystem queue (no worker here): the batch and its jobs
    are stored and linked, and another tenant still cannot see them."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from storage.migrate import upgrade
    from storage.tenants import create_api_key
    from tessera.config import Settings

    settings = Settings(home=tmp_path)
    upgrade(settings.sqlalchemy_url)
    app = create_app(settings)
    with app.state.runtime.sessions.begin() as session:
        keys = [create_api_key(session, name) for name in ("embedded-a", "embedded-b")]
    with TestClient(app) as client:
        auth = [{"Authorization": f"Bearer {key}"} for key in keys]
        archive = corpus.zip_of([("a.pdf", PDF), ("b.png", PNG), ("../c.pdf", PDF)])
        created = client.post("/v1/batches", files={"file": ("x.zip", archive)}, headers=auth[0])
        assert created.status_code == 202, created.text
        batch = client.get(f"/v1/batches/{created.json()['id']}", headers=auth[0]).json()
        assert batch["status"] == "processing" and batch["totals"]["queued"] == 2
        assert batch["totals"]["rejected"] == 1
        assert client.get(f"/v1/batches/{batch['id']}", headers=auth[1]).status_code == 404
