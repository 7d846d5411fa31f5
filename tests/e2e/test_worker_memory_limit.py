"""The worker's memory safety net (TESSERA_WORKER_MAX_MEMORY_MB -> Celery's
worker_max_memory_per_child): a pool process past the limit is replaced after its task, and the
work still finishes. Real `tessera serve` + `tessera worker` on the embedded defaults.
(Billiard's own "exceeding memory limit" line goes to a logger that does not propagate, so the
replacement is seen in the pool process names of Celery's task lines.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tessera.config import Settings
from tests.api.helpers import pdf
from tests.utils.tessera_procs import Server, TesseraProcess, create_api_key, tessera_env
from workers.celery_app import celery_config

pytestmark = pytest.mark.slow


def test_a_pool_process_over_the_limit_is_replaced_and_work_goes_on(tmp_path: Path) -> None:
    env = tessera_env({"TESSERA_HOME": str(tmp_path), "TESSERA_ENGINE": "digest",
                       "TESSERA_WORKER_MAX_MEMORY_MB": "1"})  # every pool process is over 1 MB
    key = create_api_key(env, "memory")
    worker = TesseraProcess(["worker", "--concurrency", "1"], env, tmp_path / "worker.log").start()
    server = Server(env, tmp_path / "serve.log", worker=False)
    try:
        client = server.start().client(key)
        ids = [client.submit(pdf(1, f"m{i}"), f"{i}.pdf").json()["id"] for i in range(3)]
        assert [client.wait(job_id, timeout=120)["status"] for job_id in ids] == ["succeeded"] * 3
    finally:
        server.stop()
        worker.stop()
    # Celery names pool processes ForkPoolWorker-1, -2, ... as it starts them: over the limit
    # after every task, each of the 9 tasks (3 x split, infer, assemble) ran in a fresh one.
    runners = re.findall(r"ForkPoolWorker-(\d+)\] Task \S+ succeeded", (tmp_path / "worker.log").read_text())
    assert len(runners) == 9 and len(set(runners)) == 9, worker.tail()


def test_the_limit_follows_the_engine_and_the_setting(tmp_path: Path) -> None:
    def limit(**values: object) -> int | None:
        return celery_config(Settings(home=tmp_path, **values)).get("worker_max_memory_per_child")

    assert limit() == limit(engine="digest") == 3072 * 1024  # KiB
    assert limit(engine="internvl", model_path=tmp_path) is None  # the model takes minutes to load
    assert limit(worker_max_memory_mb=512) == 512 * 1024
    assert limit(worker_max_memory_mb=0) is None
