"""Cancel and delete: state changes, rows and blobs, and workers that keep working."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from tests.api.helpers import pdf, wait_for
from tests.utils.tessera_procs import wait_for_idle_workers

pytestmark = pytest.mark.slow


def rows(api, job_id: str) -> tuple[int, int]:  # noqa: ANN001
    """(jobs rows, pages rows) for the job, read straight from PostgreSQL."""
    url = api.env["TESSERA_DATABASE_URL"]
    with psycopg.connect(url) as conn:
        jobs = conn.execute("select count(*) from jobs where id = %s", (job_id,)).fetchone()[0]
        pages = conn.execute("select count(*) from pages where job_id = %s", (job_id,)).fetchone()[0]
    return jobs, pages


def blob_keys(s3_bucket, job_id: str) -> set[str]:  # noqa: ANN001
    client, bucket = s3_bucket
    keys = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys |= {item["Key"].split("/", 2)[-1] for item in page.get("Contents", [])
                 if item["Key"].split("/")[1:2] == [job_id]}
    return keys


def processing_with_a_page_done(client, job_id: str):  # noqa: ANN001, ANN201
    job = client.job(job_id)
    return job if job["status"] == "processing" and job["progress"]["pages_done"] >= 1 else None


def test_cancelling_a_queued_job_ends_it_at_once(embedded) -> None:  # noqa: ANN001
    client = embedded.new_client()
    job_id = client.submit(pdf(2), "a.pdf").json()["id"]
    response = client.http.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["status"] == "cancelled" and job["cancel_requested"] is True and job["finished_at"]
    assert client.job(job_id)["status"] == "cancelled"
    again = client.http.post(f"/v1/jobs/{job_id}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "job_finished"
    result = client.http.get(f"/v1/jobs/{job_id}/result")
    assert result.status_code == 404 and result.json()["error"]["code"] == "no_result"


def test_cancelling_a_processing_job_and_a_finished_one(stack) -> None:  # noqa: ANN001
    client = stack.new_client()
    job_id = client.submit(pdf(6), "long.pdf").json()["id"]
    wait_for(lambda: processing_with_a_page_done(client, job_id), what="a page done")
    response = client.http.post(f"/v1/jobs/{job_id}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled" and response.json()["finished_at"]
    done = client.wait(client.submit(pdf(1), "after.pdf").json()["id"])
    assert done["status"] == "succeeded"  # the worker went on to the next job
    assert client.job(job_id)["status"] == "cancelled"  # and did not revive the cancelled one
    finished = client.http.post(f"/v1/jobs/{done['id']}/cancel")
    assert finished.status_code == 409 and finished.json()["error"]["code"] == "job_finished"
    assert client.job(done["id"])["status"] == "succeeded"


def test_delete_removes_rows_and_blobs(stack, s3_bucket) -> None:  # noqa: ANN001
    client = stack.new_client()
    job = client.wait(client.submit(pdf(2), "a.pdf").json()["id"])
    assert job["status"] == "succeeded"
    assert {"input", "pages/00002.png", "results/00002.a1.json", "result.json", "result.md"} <= \
        blob_keys(s3_bucket, job["id"])
    assert rows(stack, job["id"]) == (1, 2)
    response = client.http.delete(f"/v1/jobs/{job['id']}")
    assert response.status_code == 204 and response.content == b""
    assert rows(stack, job["id"]) == (0, 0)
    assert blob_keys(s3_bucket, job["id"]) == set()
    for method, path in (("GET", ""), ("GET", "/pages"), ("GET", "/result"), ("DELETE", "")):
        gone = client.http.request(method, f"/v1/jobs/{job['id']}{path}")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found", path


def test_delete_on_embedded_defaults_removes_the_folder(embedded) -> None:  # noqa: ANN001
    client = embedded.new_client()
    job_id = client.submit(pdf(1), "a.pdf").json()["id"]
    blobs = Path(embedded.env["TESSERA_HOME"], "blobs")
    assert list(blobs.glob(f"*/{job_id}/input"))
    assert client.http.delete(f"/v1/jobs/{job_id}").status_code == 204
    assert not list(blobs.glob(f"*/{job_id}"))
    assert client.http.get(f"/v1/jobs/{job_id}").status_code == 404


def test_deleting_a_job_mid_processing_leaves_nothing_and_the_worker_healthy(stack, s3_bucket) -> None:  # noqa: ANN001
    client = stack.new_client()
    job_id = client.submit(pdf(6), "big.pdf").json()["id"]
    wait_for(lambda: processing_with_a_page_done(client, job_id), what="a page done")
    assert client.http.delete(f"/v1/jobs/{job_id}").status_code == 204
    assert client.http.get(f"/v1/jobs/{job_id}").status_code == 404
    # Pages were inside the engine when the job was deleted; once the workers are idle,
    # nothing of the job may remain: no row, no file.
    wait_for_idle_workers(stack.env["TESSERA_BROKER_URL"])
    assert rows(stack, job_id) == (0, 0)
    assert blob_keys(s3_bucket, job_id) == set()
    later = client.wait(client.submit(pdf(2), "later.pdf").json()["id"], timeout=60)
    assert later["status"] == "succeeded" and later["progress"]["pages_done"] == 2
    assert stack.worker.proc.poll() is None, stack.worker.tail()
