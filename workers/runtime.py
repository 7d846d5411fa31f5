"""Per-process resources: database sessions, blob store and the inference engine.

Built lazily inside the process that uses them, never in a Celery parent
before fork (CUDA and forked children do not mix; neither do pooled DB
connections). The engine loads once per process on first use.
"""

from __future__ import annotations

import os
import socket
from functools import cached_property

from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from storage.blobs import BlobStore, create_blob_store
from storage.db import make_engine, make_session_factory
from storage.jobs import PENDING_WEBHOOKS
from tessera.config import Settings
from workers.engines.base import Engine
from workers.orientation import OrientationDetector

WRITES_IN_FLIGHT = 4  # within botocore's pool of 10 connections and the database pool of 10


class Runtime:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.db = make_engine(settings.sqlalchemy_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        factory = make_session_factory(self.db)
        event.listen(factory, "after_commit", _send_recorded_webhooks)
        event.listen(factory, "after_rollback", lambda session: session.info.pop(PENDING_WEBHOOKS, None))
        return factory

    @cached_property
    def blobs(self) -> BlobStore:
        return create_blob_store(self.settings)

    @property
    def writes_in_flight(self) -> int:
        """Page writes (blob + row) a stage keeps going at once: WRITES_IN_FLIGHT against S3,
        whose round trips (tens of milliseconds to a real bucket) are worth overlapping
        (bench/pipeline_scale.py --s3-latency-ms); one against a local folder, which has no
        latency to hide and whose SQLite database takes one writer at a time."""
        return 1 if self.settings.s3_bucket is None else WRITES_IN_FLIGHT

    @cached_property
    def engine(self) -> Engine:
        from workers.engines.registry import create_engine

        return create_engine(self.settings)

    @cached_property
    def orientation(self) -> OrientationDetector:
        return OrientationDetector(threads=1)

    @property
    def worker_id(self) -> str:
        return f"{socket.gethostname()}:{os.getpid()}"


def _send_recorded_webhooks(session: Session) -> None:
    """After a commit that ended jobs, hand their outbox rows to the webhooks queue at once
    (best effort: the sweeper delivers whatever this misses)."""
    delivery_ids = session.info.pop(PENDING_WEBHOOKS, None)
    if delivery_ids:
        from workers.webhooks import send_soon

        send_soon(delivery_ids)


_runtime: Runtime | None = None
_runtime_pid: int | None = None


def get_runtime() -> Runtime:
    """The runtime of this process (rebuilt after a fork)."""
    global _runtime, _runtime_pid
    if _runtime is None or _runtime_pid != os.getpid():
        from tessera.config import get_settings

        _runtime, _runtime_pid = Runtime(get_settings()), os.getpid()
    return _runtime
