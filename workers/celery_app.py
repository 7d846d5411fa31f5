"""The Celery application and its configuration, built by a function (not at import).

Configuration choices for long GPU work (see ENVIRONMENT.md for how kombu
really behaves): late acks + reject on worker loss so a crashed task comes
back, prefetch 1 so a busy worker holds nothing others could run, results off
(Postgres holds them), a visibility timeout above the hard time limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from celery import Celery
from kombu import Queue

from tessera.config import Settings

QUEUES = ("cpu", "gpu", "webhooks")
ROUTES = {
    "tessera.split": {"queue": "cpu"},
    "tessera.assemble": {"queue": "cpu"},
    "tessera.infer": {"queue": "gpu"},
    "tessera.webhook": {"queue": "webhooks"},
}

FILESYSTEM_POLL_S = 0.05  # the embedded broker's polling interval (seconds)

PRIORITY_HIGH = 0
PRIORITY_NORMAL = 6

app = Celery("tessera")


def unacked_keys(queues: Iterable[str]) -> dict[str, str]:
    """kombu's Redis transport options naming the unacked hash, its index and its mutex for a
    worker consuming `queues`, e.g. ("gpu",) -> {"unacked_key": "unacked:gpu", ...}.

    kombu keeps every message a consumer took but has not acked in one hash, `unacked` by
    default, shared by every worker on the broker. One hash per worker role (its sorted queue
    set) lets an autoscaler count a role's in-flight messages with one HLEN (KEDA's redis
    scaler, infra/k8s/scaledobjects.yaml); without it the gpu workers would be scaled on the
    cpu workers' busy tasks and on webhook retries held until their countdown. Only workers
    consuming a queue restore its overdue messages, which they do from their own hash.
    """
    role = "+".join(sorted({queue.strip() for queue in queues if queue.strip()}))
    return {"unacked_key": f"unacked:{role}", "unacked_index_key": f"unacked_index:{role}",
            "unacked_mutex_key": f"unacked_mutex:{role}"}


def celery_config(settings: Settings, queues: Iterable[str] = QUEUES) -> dict[str, Any]:
    """The app's configuration; `queues` are those this process consumes (a worker's
    `--queues`), which name its unacked hash on Redis (`unacked_keys`)."""
    hard_limit = settings.task_time_limit_s
    config: dict[str, Any] = {
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,
        "result_backend": None,
        "task_time_limit": hard_limit,
        "task_soft_time_limit": max(hard_limit - 60, 30),
        "task_routes": ROUTES,
        "task_default_queue": "cpu",
        # On Redis 0 is read first; normal work waits behind `priority: high` (PRIORITY_HIGH).
        "task_default_priority": PRIORITY_NORMAL,
        "task_queues": [Queue(name) for name in QUEUES],
        "task_serializer": "json",
        "accept_content": ["json"],
        "broker_connection_retry_on_startup": True,
        "worker_hijack_root_logger": False,
        # A task cut off from the broker may finish: its final write is fenced by the page's
        # attempt number, and the redelivered copy finds the page done.
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "imports": ["workers.tasks", "workers.webhooks"],
    }
    if settings.worker_memory_limit_mb:
        # A safety net against leaks, checked after each task (Celery compares the pool process's
        # peak RSS, in KiB); the task finishes first, so nothing is lost. TESSERA_WORKER_MAX_MEMORY_MB.
        config["worker_max_memory_per_child"] = settings.worker_memory_limit_mb * 1024
    if settings.embedded:
        folder = settings.queue_dir.resolve()
        for sub in ("messages", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        config["broker_url"] = "filesystem://"
        config["broker_transport_options"] = {
            "data_folder_in": str(folder / "messages"),
            "data_folder_out": str(folder / "messages"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            # A worker takes its next message only after acknowledging the last (prefetch 1, late
            # acks) and finds it on its next poll: every task waited half an interval on average.
            # Listing an idle folder 20 times a second costs well under 1% of a core.
            "polling_interval": FILESYSTEM_POLL_S,
        }
    else:
        config["broker_url"] = settings.broker_url
        visibility = settings.visibility_timeout_s or hard_limit + 600
        config["broker_transport_options"] = {
            # Above the hard limit, so a healthy task is never delivered twice; a task whose
            # worker died comes back sooner through its page lease (workers/recovery.py).
            "visibility_timeout": visibility,
            # kombu looks for overdue unacked messages this often (default ~100 s).
            "unacked_restore_interval": max(1, min(10, visibility // 2)),
            "unacked_restore_throttle": 1,
            **unacked_keys(queues),
        }
    return config


def configure(settings: Settings, queues: Iterable[str] = QUEUES) -> Celery:
    app.conf.update(celery_config(settings, queues))
    return app
