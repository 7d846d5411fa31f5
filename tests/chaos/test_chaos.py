"""Nothing lost, nothing twice: real worker processes killed, Redis restarted, PostgreSQL stopped,
while documents are processed by the digest engine (each result checkable against its page)."""

from __future__ import annotations

import io
import os
import re
import signal
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest
from PIL import Image

from tessera.synthetic import make_pdf, render_text_page
from tests.utils.tessera_procs import Stack, child_pids, create_api_key, run_cli, s3_client, tessera_env
from workers.engines.digest import POISON_RGB, expected_text

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

CHAOS_ENV = {
    "TESSERA_ENGINE": "digest",
    "TESSERA_DIGEST_DELAY_S": "0.03",
    "TESSERA_ENGINE_BATCH_SIZE": "4",
    "TESSERA_LEASE_S": "3",
    "TESSERA_SWEEP_INTERVAL_S": "1",
    "TESSERA_STALE_QUEUED_S": "15",
    "TESSERA_VISIBILITY_TIMEOUT_S": "30",
    "TESSERA_DEFAULT_DPI": "72",
}


def numbered_pdf(n_pages: int) -> bytes:
    return make_pdf([render_text_page([f"chaos page {i}"], size=(300, 120), font_size=20, margin=20)
                     for i in range(1, n_pages + 1)], dpi=72)


def chaos_env(stack_env: dict[str, str], tmp_path: Path, **overrides: str) -> dict[str, str]:
    return tessera_env({**stack_env, **CHAOS_ENV, "TESSERA_HOME": str(tmp_path / "home"), **overrides})


def check_exactly_once(client, stack_env: dict[str, str], done_log, job: dict) -> None:  # noqa: ANN001
    """Every page done, finished exactly once (trigger log), result = digest of its own image."""
    pages = job["progress"]["pages_total"]
    assert job["status"] == "succeeded", job
    assert done_log(job["id"]) == {n: 1 for n in range(1, pages + 1)}
    s3 = s3_client(stack_env)
    response = client.http.get(f"/v1/jobs/{job['id']}/result")
    assert response.status_code == 200, response.text
    bucket, document = stack_env["TESSERA_S3_BUCKET"], response.json()
    with psycopg.connect(stack_env["TESSERA_DATABASE_URL"]) as connection:
        tenant_id = connection.execute("SELECT tenant_id FROM jobs WHERE id = %s", (job["id"],)).fetchone()[0]
    prefix = f"{tenant_id}/{job['id']}"
    for entry in document["pages"][:: max(1, pages // 10)]:  # a spread sample: each is a blob read
        image = s3.get_object(Bucket=bucket, Key=f"{prefix}/pages/{entry['page']:05d}.png")["Body"].read()
        assert entry["text"] == expected_text(Image.open(io.BytesIO(image)))


@pytest.fixture
def stack(stack_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest):  # noqa: ANN201
    overrides = getattr(request, "param", {})
    env = chaos_env(stack_env, tmp_path, **overrides.get("env", {}))
    run_cli(env, "migrate")
    key = create_api_key(env, "chaos")
    with Stack(env, tmp_path, gpu_workers=overrides.get("gpus", 1)) as running:
        yield running, running.server.client(key)


def test_gpu_worker_sigkilled_ten_times_loses_and_repeats_nothing(stack, stack_env, done_log) -> None:  # noqa: ANN001
    running, client = stack
    job_id = client.submit(numbered_pdf(120), "chaos.pdf").json()["id"]
    kills = 0
    while kills < 10:
        time.sleep(1.2)
        if client.job(job_id)["status"] in ("succeeded", "failed"):
            break
        running.kill_gpu()
        kills += 1
    assert kills == 10, "the run finished before ten kills: make it longer"
    check_exactly_once(client, stack_env, done_log, client.wait(job_id, timeout=240))


def test_pool_child_sigkilled_loses_and_repeats_nothing(stack, stack_env, done_log) -> None:  # noqa: ANN001
    running, client = stack
    job_id = client.submit(numbered_pdf(100), "chaos.pdf").json()["id"]
    kills, restarts, last_child = 0, [], time.monotonic()
    while kills < 10 and client.job(job_id)["status"] not in ("succeeded", "failed"):
        time.sleep(1.0)
        restarts += running.supervise()
        for pid in child_pids(running.gpus[0].proc.pid):
            os.kill(pid, signal.SIGKILL)
            kills, last_child = kills + 1, time.monotonic()
        assert time.monotonic() - last_child < 60, (
            f"the gpu worker has had no pool process for 60 s (alive: "
            f"{running.gpus[0].proc.poll() is None}; restarted: {restarts})\n"
            f"{running.gpu_logs()[-3000:]}"
        )
    assert kills >= 5, f"{kills} kills; restarted: {restarts}\n{running.gpu_logs()[-3000:]}"
    job = client.wait(job_id, timeout=240, each_poll=running.supervise)
    check_exactly_once(client, stack_env, done_log, job)


@pytest.mark.parametrize("stack", [{"env": {"TESSERA_DIGEST_POISON": "true"}}], indirect=True)
def test_poison_page_goes_dead_and_the_rest_finish(stack) -> None:  # noqa: ANN001
    _, client = stack
    frames = [render_text_page([f"frame {i}"], size=(300, 120), font_size=20, margin=20).convert("RGB")
              for i in range(1, 9)]
    frames[2].putpixel((0, 0), POISON_RGB)
    buffer = io.BytesIO()
    frames[0].save(buffer, "TIFF", save_all=True, append_images=frames[1:])
    job = client.wait(client.submit(buffer.getvalue(), "poison.tiff").json()["id"], timeout=120)
    assert job["status"] == "partially_succeeded"
    assert job["progress"] == {"pages_total": 8, "pages_done": 7, "pages_failed": 1}
    poison = client.http.get(f"/v1/jobs/{job['id']}/pages/3").json()
    assert poison["status"] == "dead" and poison["error"]["code"] == "worker_lost"
    assert poison["attempt"] == 3
    for page_no in (1, 2, 4, 8):
        page = client.http.get(f"/v1/jobs/{job['id']}/pages/{page_no}").json()
        assert page["text"] == expected_text(frames[page_no - 1])


def test_redis_restart_mid_run(stack, stack_env, redis_srv, done_log) -> None:  # noqa: ANN001
    _, client = stack
    job_id = client.submit(numbered_pdf(60), "chaos.pdf").json()["id"]
    time.sleep(2.0)
    redis_srv.stop()
    try:
        time.sleep(2.0)
    finally:
        redis_srv.start()
    check_exactly_once(client, stack_env, done_log, client.wait(job_id, timeout=240))


def test_postgres_down_for_ten_seconds_mid_run(stack, stack_env, postgres, done_log) -> None:  # noqa: ANN001
    _, client = stack
    job_id = client.submit(numbered_pdf(60), "chaos.pdf").json()["id"]
    time.sleep(2.0)
    postgres.stop()
    try:
        time.sleep(10.0)
        assert client.http.get(f"/v1/jobs/{job_id}").status_code == 503  # a clear 503, never a 500
    finally:
        postgres.start()
    check_exactly_once(client, stack_env, done_log, client.wait(job_id, timeout=240))


@pytest.mark.parametrize("stack", [{"gpus": 2, "env": {"TESSERA_VISIBILITY_TIMEOUT_S": "2",
                                                       "TESSERA_DIGEST_DELAY_S": "6",
                                                       "TESSERA_LEASE_S": "3"}}], indirect=True)
def test_task_outliving_the_visibility_timeout_still_gives_one_result(stack, stack_env, done_log) -> None:  # noqa: ANN001
    running, client = stack
    job = client.wait(client.submit(numbered_pdf(1), "slow.pdf").json()["id"], timeout=60)
    received = Counter(re.findall(r"tessera\.infer\[([0-9a-f-]+)\] received", running.gpu_logs()))
    assert any(count > 1 for count in received.values()), f"no redelivery happened: {received}"
    check_exactly_once(client, stack_env, done_log, job)
    assert client.http.get(f"/v1/jobs/{job['id']}/pages/1").json()["attempt"] == 1
