"""Per-process resources: database sessions, blob store and the inference engine.

Built lazily inside the process that uses them, never in a Celery parent
before fork (CUDA and forked children do not mix; neither do pooled DB
connections). The engine loads once per process on first use.
"""

from __future__ import annotations

import os
import socket
from functools import cached_property

from sqlalchemy.orm import Session, sessionmaker

from storage.blobs import BlobStore, create_blob_store
from storage.db import make_engine, make_session_factory
from tessera.config import Settings
from workers.engines.base import Engine


class Runtime:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.db = make_engine(settings.sqlalchemy_url)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return make_session_factory(self.db)

    @cached_property
    def blobs(self) -> BlobStore:
        return create_blob_store(self.settings)

    @cached_property
    def engine(self) -> Engine:
        from workers.engines.registry import create_engine

        return create_engine(self.settings)

    @property
    def worker_id(self) -> str:
        return f"{socket.gethostname()}:{os.getpid()}"


_runtime: Runtime | None = None
_runtime_pid: int | None = None


def get_runtime() -> Runtime:
    """The runtime of this process (rebuilt after a fork)."""
    global _runtime, _runtime_pid
    if _runtime is None or _runtime_pid != os.getpid():
        from tessera.config import get_settings

        _runtime, _runtime_pid = Runtime(get_settings()), os.getpid()
    return _runtime
