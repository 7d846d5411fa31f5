"""The queue depth the ScaledObjects (infra/k8s/scaledobjects.yaml) give KEDA counts every message
waiting or running, checked on a real Redis with messages sent through Celery/kombu as Tessera
configures them (workers/celery_app.py: priorities on, late acks, one unacked hash per role).

The depth is computed the way KEDA does it: for each trigger, KEDA's own Lua script sent with
EVAL on the trigger's key, summed by the ScaledObject's formula (tests/utils/k8s.py). A private
Redis database (and, for the worker, a private PostgreSQL database) keeps these messages away
from other tests' workers; the keys are the same in any database.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from celery import Celery

from api.schemas import JobOptions
from api.submission import create_job
from storage.migrate import upgrade
from storage.tenants import get_or_create_tenant
from tessera.config import Settings
from tessera.synthetic import make_pdf, render_text_page
from tests.utils.k8s import K8S_DIR, keda_queue_depth, prestop_command, scaled_objects
from tests.utils.services import RedisServer
from tests.utils.tessera_procs import TesseraProcess, tessera_env
from workers.celery_app import celery_config, unacked_keys
from workers.enqueue import INFER, QUEUE_OF, SPLIT, CeleryEnqueuer, LocalEnqueuer
from workers.runtime import Runtime
from workers.split import split_job

pytestmark = pytest.mark.slow
REDIS_DB = 13
TASK_OF_QUEUE = {queue: task for task, queue in QUEUE_OF.items() if task != "tessera.assemble"}


@pytest.fixture
def broker(redis_srv: RedisServer) -> Iterator[tuple[str, redis.Redis]]:
    url = f"{redis_srv.url.rsplit('/', 1)[0]}/{REDIS_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield url, client
    finally:
        client.flushdb()
        client.close()


def celery_app(url: str, queues: tuple[str, ...]) -> Celery:
    """A Celery app configured as Tessera's processes are: `queues` are those it consumes."""
    app = Celery(f"probe-{'+'.join(queues)}")
    app.conf.update(celery_config(Settings(broker_url=url), queues))
    return app


def test_every_waiting_and_unacked_message_is_counted_at_each_priority(broker) -> None:  # noqa: ANN001
    url, client = broker
    sender = celery_app(url, ("cpu", "gpu", "webhooks"))  # the API's configuration
    sent = {}
    for queue, task in TASK_OF_QUEUE.items():
        for priority in range(10):  # Celery's whole range: kombu folds it into 4 lists
            sender.send_task(task, args=[[priority]], queue=queue, priority=priority)
        sent[queue] = 10
    tessera = CeleryEnqueuer(sender)  # and Tessera's own sends: high (0) and normal (6)
    tessera.infer([1], high=True), tessera.infer([2]), tessera.split("a", high=True), tessera.assemble("a")
    sent = {"gpu": sent["gpu"] + 2, "cpu": sent["cpu"] + 2}

    so = scaled_objects()
    by_queue = {"gpu": so["tessera-gpu-worker"], "cpu": so["tessera-cpu-worker"]}
    for queue, scaled in by_queue.items():
        assert keda_queue_depth(client, scaled) == sent[queue], queue
        lists = [t["metadata"]["listName"] for t in scaled["spec"]["triggers"]][:-1]
        # every priority list the ScaledObject reads got messages: none of its triggers is idle
        assert all(client.llen(key) > 0 for key in lists), {key: client.llen(key) for key in lists}
    holding = {key.decode() for key in client.scan_iter() if client.type(key) == b"list"}
    counted = {t["metadata"]["listName"] for s in by_queue.values() for t in s["spec"]["triggers"]}
    assert holding <= counted, f"lists holding messages that no trigger reads: {holding - counted}"

    consumer = celery_app(url, ("gpu",))  # a gpu worker takes a message and has not acked it yet
    with consumer.connection_for_read() as connection:
        message = connection.default_channel.basic_get("gpu", no_ack=False)
        assert message is not None
        assert client.hlen(unacked_keys(["gpu"])["unacked_key"]) == 1
        assert keda_queue_depth(client, by_queue["gpu"]) == sent["gpu"], "a running task still counts"
        message.ack()
        assert keda_queue_depth(client, by_queue["gpu"]) == sent["gpu"] - 1


@pytest.fixture
def private_database(postgres) -> Iterator[str]:  # noqa: ANN001
    name = f"qdepth_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.url, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    yield postgres.url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(postgres.url, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE {name} WITH (FORCE)")


def queued_infer_messages(settings: Settings, sender: Celery) -> list[list[int]]:
    """A two-page document, split in this process; its infer messages (one page each) are sent to
    the broker for a real worker. Returns the page ids of each message."""
    rt = Runtime(settings)
    local = LocalEnqueuer({})
    pages = [render_text_page([f"page {n}"], size=(400, 300)) for n in (1, 2)]
    with rt.sessions() as session:
        tenant_id = get_or_create_tenant(session, "queue-depth").id
        session.commit()
        job, _ = create_job(session, rt.blobs, local, settings, tenant_id=tenant_id, data=make_pdf(pages),
                            filename="two.pdf", options=JobOptions(), idempotency_key=None)
    ((name, (job_id,)),) = local.pending
    assert name == SPLIT
    local.pending.clear()
    split_job(rt, local, job_id)
    messages = [list(args[0]) for name, args in local.pending if name == INFER]
    rt.db.dispose()
    for page_ids in messages:
        CeleryEnqueuer(sender).infer(page_ids)
    return messages


def page_status(database_url: str, page_ids: list[int]) -> list[str]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute("SELECT status FROM pages WHERE id = ANY(%s) ORDER BY id", (page_ids,))
        return [row[0] for row in rows]


def test_a_running_batch_is_counted_and_finishes_through_the_prestop_hook(
    broker, private_database: str, stack_env: dict[str, str], tmp_path: Path,  # noqa: ANN001
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, client = broker
    env = tessera_env({**stack_env, "TESSERA_DATABASE_URL": private_database, "TESSERA_BROKER_URL": url,
                       "TESSERA_ENGINE": "digest", "TESSERA_DIGEST_DELAY_S": "4",
                       "TESSERA_ENGINE_BATCH_SIZE": "1", "TESSERA_HOME": str(tmp_path / "home")})
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(key, stack_env[key])
    settings = Settings(database_url=private_database, broker_url=url, engine="digest", engine_batch_size=1,
                        s3_endpoint_url=stack_env["TESSERA_S3_ENDPOINT_URL"], s3_bucket=stack_env["TESSERA_S3_BUCKET"])
    upgrade(settings.sqlalchemy_url)
    first, second = queued_infer_messages(settings, celery_app(url, ("cpu", "gpu", "webhooks")))
    gpu = scaled_objects()["tessera-gpu-worker"]
    assert keda_queue_depth(client, gpu) == 2

    worker = TesseraProcess(["worker", "--queues", "gpu", "--concurrency", "1"], env, tmp_path / "gpu.log").start()
    try:
        deadline = time.monotonic() + 60
        while "running" not in page_status(private_database, first + second):
            assert time.monotonic() < deadline and worker.proc.poll() is None, worker.tail()
            time.sleep(0.1)
        running = first if page_status(private_database, first) == ["running"] else second
        waiting = second if running is first else first
        # the page in the engine is one unacked message of the gpu role; the other still waits
        assert client.hlen(unacked_keys(["gpu"])["unacked_key"]) == 1
        assert keda_queue_depth(client, gpu) == 2

        # Kubernetes runs the manifest's preStop; in the pod the worker is PID 1
        assert page_status(private_database, running) == ["running"], "still in the engine"
        hook = subprocess.Popen(prestop_command(K8S_DIR / "gpu-worker.yaml", "tessera-gpu-worker"),
                                env={"WORKER_PID": str(worker.proc.pid), "PATH": "/usr/bin:/bin"})
        assert worker.proc.wait(timeout=60) == 0, worker.tail()  # warm shutdown exits 0
        assert hook.wait(timeout=10) == 0
    finally:
        worker.stop()
    assert page_status(private_database, running) == ["done"], "the batch in hand was finished"
    assert page_status(private_database, waiting) == ["queued"], "no new batch was taken"
    assert client.hlen(unacked_keys(["gpu"])["unacked_key"]) == 0, "the finished batch was acked"
    assert keda_queue_depth(client, gpu) == 1, "the waiting message is still counted"
