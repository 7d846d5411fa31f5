"""A gpu worker fills its engine batch with pages of many small documents."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tessera.synthetic import label_png
from tests.utils.tessera_procs import Stack, create_api_key, run_cli, tessera_env

pytestmark = pytest.mark.slow
DOCUMENTS, BATCH = 200, 8


def test_two_hundred_one_page_documents_run_in_full_batches(stack_env: dict[str, str], tmp_path: Path) -> None:
    env = tessera_env({**stack_env, "TESSERA_ENGINE": "digest", "TESSERA_ENGINE_BATCH_SIZE": str(BATCH),
                       "TESSERA_HOME": str(tmp_path / "home")})
    run_cli(env, "migrate")
    key = create_api_key(env, "batching")
    with Stack(env, tmp_path, start_gpu=False) as stack:  # no gpu worker yet: let the pages queue up
        client = stack.server.client(key)
        with ThreadPoolExecutor(4) as pool:
            ids = list(pool.map(lambda i: client.submit(label_png(f"document {i}"), f"d{i}.png").json()["id"],
                                range(DOCUMENTS)))
        deadline = time.monotonic() + 120
        while any(client.job(job_id)["status"] != "processing" for job_id in ids[-5:]):
            assert time.monotonic() < deadline, "splitting did not finish"
            time.sleep(0.5)
        stack.start_gpus()
        jobs = [client.wait(job_id, timeout=180) for job_id in ids]
        assert {job["status"] for job in jobs} == {"succeeded"}
        batch_sizes = [client.http.get(f"/v1/jobs/{job_id}/pages/1").json()["timings"]["batch_pages"]
                       for job_id in ids]
    assert batch_sizes == [BATCH] * DOCUMENTS, sorted(set(batch_sizes))
