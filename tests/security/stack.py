"""A real Tessera stack for the security and hostile-input suites: `tessera serve --no-worker`
plus one `tessera worker` on the cpu, gpu and webhooks queues, digest engine, on the session's
PostgreSQL, Redis (a Redis database of its own, so no other suite's worker sees its messages)
and S3 servers. URL sources may reach 127.0.0.1 (the tests' own HTTP servers)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

from tests.utils.tessera_procs import FINAL, Server, TesseraProcess, create_api_key, run_cli, s3_client, tessera_env

SOURCE_BUCKET = "tessera-sources"


def bulk_env(stack_env: dict[str, str], home: Path, redis_db: int, **extra: str) -> dict[str, str]:
    broker = stack_env["TESSERA_BROKER_URL"].rsplit("/", 1)[0] + f"/{redis_db}"
    return tessera_env({
        **stack_env, "TESSERA_BROKER_URL": broker, "TESSERA_HOME": str(home),
        "TESSERA_ENGINE": "digest", "TESSERA_ALLOW_PRIVATE_URLS": "true",
        "TESSERA_S3_SOURCE_BUCKETS": SOURCE_BUCKET, "TESSERA_WEBHOOK_BACKOFF_S": "0.5",
        "TESSERA_WEBHOOK_TIMEOUT_S": "5",
        "TESSERA_ARCHIVE_MAX_ENTRY_BYTES": str(20 * 2**20),
        "TESSERA_ARCHIVE_MAX_TOTAL_BYTES": str(50 * 2**20), "TESSERA_ARCHIVE_MAX_ENTRIES": "100",
        **extra,
    })


class BulkStack:
    def __init__(self, env: dict[str, str], logs: Path, tenants: Iterable[str]):
        self.env, self.logs = env, logs
        run_cli(env, "migrate")
        self.keys = {tenant: create_api_key(env, tenant) for tenant in tenants}
        bucket_names = {b["Name"] for b in s3_client(env).list_buckets().get("Buckets", [])}
        if SOURCE_BUCKET not in bucket_names:
            s3_client(env).create_bucket(Bucket=SOURCE_BUCKET)
        self.worker = TesseraProcess(["worker", "--queues", "cpu,gpu,webhooks", "--concurrency", "2"],
                                     env, logs / "worker.log")
        self.server = Server(env, logs / "serve.log", worker=False)

    def __enter__(self) -> BulkStack:
        self.worker.start()
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
        self.worker.stop()

    def client(self, tenant: str) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, timeout=60,
                            headers={"Authorization": f"Bearer {self.keys[tenant]}"})


def wait_batch(client: httpx.Client, batch_id: str, timeout: float = 90.0) -> dict[str, Any]:
    """Poll until the batch is finished (every entry refused or its job final)."""
    deadline = time.monotonic() + timeout
    while True:
        batch = client.get(f"/v1/batches/{batch_id}").json()
        if batch["status"] == "finished" or time.monotonic() > deadline:
            assert batch["status"] == "finished", f"batch still {batch['status']}: {batch['totals']}"
            return batch
        time.sleep(0.25)


def wait_job(client: httpx.Client, job_id: str, timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in FINAL or time.monotonic() > deadline:
            assert job["status"] in FINAL, f"job {job_id} still {job['status']}"
            return job
        time.sleep(0.25)
