"""Retention (TESSERA_RETENTION_DAYS, workers/retention.py) through the real stack: a job that
finished long enough ago loses its input, page images and results in S3, keeps its row marked
`purged_at`, answers 410 `result_purged` for what it no longer has, and counts in
`tessera_jobs_purged_total` on /metrics (read from the database: the purge ran in another process)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import update

from storage.db import make_engine, make_session_factory
from storage.models import Job, utcnow
from tests.api.conftest import Api
from tests.api.helpers import pdf
from tests.utils.tessera_procs import run_cli

pytestmark = pytest.mark.slow


def purged_total(api: Api) -> float:
    text = api.server.client("none").http.get("/metrics").text
    return float(re.search(r"^tessera_jobs_purged_total (\S+)$", text, re.M).group(1))


def objects_of(s3_bucket, job: dict, tenant_prefix: str) -> list[str]:  # noqa: ANN001
    client, bucket = s3_bucket
    listing = client.list_objects_v2(Bucket=bucket, Prefix=f"{tenant_prefix}/{job['id']}/")
    return [item["Key"] for item in listing.get("Contents", [])]


def test_jobs_past_retention_are_purged_and_say_so(stack: Api, s3_bucket) -> None:  # noqa: ANN001
    client = stack.new_client()
    old, recent = (client.wait(client.submit(pdf(2, tag), f"{tag}.pdf").json()["id"])
                   for tag in ("old", "recent"))
    assert (old["status"], recent["status"]) == ("succeeded", "succeeded")
    engine = make_engine(stack.sqlalchemy_url)
    with make_session_factory(engine).begin() as session:
        tenant = session.get(Job, old["id"]).tenant_id
        session.execute(update(Job).where(Job.id == old["id"])
                        .values(finished_at=utcnow() - timedelta(days=3)))
    engine.dispose()
    assert len(objects_of(s3_bucket, old, tenant)) >= 6  # input, 2 pages, 2 page results, results
    before = purged_total(stack)

    swept = run_cli({**stack.env, "TESSERA_RETENTION_DAYS": "2"}, "sweep")
    assert "1 jobs purged" in swept, swept

    assert objects_of(s3_bucket, old, tenant) == []
    assert len(objects_of(s3_bucket, recent, tenant)) >= 6  # finished today: kept
    job = client.job(old["id"])
    assert job["purged_at"] and job["status"] == "succeeded" and job["progress"]["pages_done"] == 2
    for path in (f"/v1/jobs/{old['id']}/result", f"/v1/jobs/{old['id']}/result?format=markdown",
                 f"/v1/jobs/{old['id']}/pages/1", f"/v1/jobs/{old['id']}/pages?include=text"):
        gone = client.http.get(path)
        assert (gone.status_code, gone.json()["error"]["code"]) == (410, "result_purged"), path
    pages = client.http.get(f"/v1/jobs/{old['id']}/pages").json()["pages"]
    assert [page["text_preview"] for page in pages] == [None, None]  # the previews were text too
    assert client.http.get(f"/v1/jobs/{recent['id']}/result").status_code == 200
    assert client.job(recent["id"])["purged_at"] is None
    assert purged_total(stack) == before + 1

    again = run_cli({**stack.env, "TESSERA_RETENTION_DAYS": "2"}, "sweep")
    assert "0 jobs purged" in again and purged_total(stack) == before + 1  # once only


def test_retention_is_off_by_default(stack: Api) -> None:
    client = stack.new_client()
    job = client.wait(client.submit(pdf(1, "kept"), "kept.pdf").json()["id"])
    engine = make_engine(stack.sqlalchemy_url)
    with make_session_factory(engine).begin() as session:
        session.execute(update(Job).where(Job.id == job["id"])
                        .values(finished_at=utcnow() - timedelta(days=3650)))
    engine.dispose()
    assert "0 jobs purged" in run_cli(stack.env, "sweep")
    assert client.http.get(f"/v1/jobs/{job['id']}/result").status_code == 200
