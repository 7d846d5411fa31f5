"""`priority: "high"` jumps the queue: its page runs in the gpu worker's first batch even when
it was submitted after a backlog of normal documents."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
import pytest

from tessera.synthetic import label_png
from tests.utils.tessera_procs import Stack, create_api_key, run_cli, tessera_env

pytestmark = pytest.mark.slow
BACKLOG, BATCH = 12, 4


def wait_processing(client, job_ids: list[str]) -> None:  # noqa: ANN001
    deadline = time.monotonic() + 60
    while any(client.job(job_id)["status"] != "processing" for job_id in job_ids):
        assert time.monotonic() < deadline, "splitting did not finish"
        time.sleep(0.3)


def test_a_high_priority_page_runs_in_the_first_batch(stack_env: dict[str, str], tmp_path: Path) -> None:
    env = tessera_env({**stack_env, "TESSERA_ENGINE": "digest", "TESSERA_ENGINE_BATCH_SIZE": str(BATCH),
                       "TESSERA_DIGEST_DELAY_S": "0.2", "TESSERA_HOME": str(tmp_path / "home")})
    run_cli(env, "migrate")
    key = create_api_key(env, "priority")
    with Stack(env, tmp_path, start_gpu=False) as stack:  # the backlog waits for a gpu worker
        client = stack.server.client(key)
        normal = [client.submit(label_png(f"normal {i}"), f"n{i}.png").json()["id"] for i in range(BACKLOG)]
        wait_processing(client, normal)
        urgent = client.submit(label_png("urgent"), "u.png", options={"priority": "high"}).json()["id"]
        wait_processing(client, [urgent])
        stack.start_gpus()
        for job_id in [*normal, urgent]:
            assert client.wait(job_id, timeout=120)["status"] == "succeeded"
    with psycopg.connect(stack_env["TESSERA_DATABASE_URL"]) as connection:
        order = [row[0] for row in connection.execute(
            "SELECT job_id FROM pages WHERE job_id = ANY(%s) ORDER BY finished_at", ([*normal, urgent],))]
    assert order.index(urgent) < BATCH, f"the urgent page finished {order.index(urgent) + 1}th of {len(order)}"
