"""Which Celery workers are alive, asked through the broker, with when each last answered.

A broadcast `active_queues` (Celery's remote control: the same pidbox `celery inspect` uses)
reaches every worker consuming from the broker, Redis or the embedded filesystem transport alike
(both implement the fanout exchange it needs), and each answers with its name and its queues.
The answer proves the worker's main process is alive and reading the broker; it is the
heartbeat this module records. Workers started with `--without-heartbeat` (the embedded ones)
answer too: that flag only stops the event heartbeats Flower listens to.

A broadcast waits its whole timeout (it cannot know how many workers will answer), so answers
are kept for `ttl_s` and concurrent callers share one broadcast. A worker that stops answering
stays listed, not alive, with its last heartbeat, for `forget_after_s`. What is remembered lives
in this process: each API replica keeps its own record.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery import Celery

from storage.models import utcnow

REPLY_TIMEOUT_S = 1.0
TTL_S = 5.0
FORGET_AFTER_S = 600.0


@dataclass
class WorkerSeen:
    """One worker: its Celery hostname (`tessera-<pid>@<host>`), the queues it consumes, and the
    last time it answered through the broker."""

    name: str
    queues: list[str]
    last_heartbeat: datetime
    alive: bool


class WorkerPresence:
    def __init__(self, celery: Celery, ttl_s: float = TTL_S, timeout_s: float = REPLY_TIMEOUT_S,
                 forget_after_s: float = FORGET_AFTER_S):
        self.celery, self.ttl_s, self.timeout_s, self.forget_after_s = celery, ttl_s, timeout_s, forget_after_s
        self._seen: dict[str, WorkerSeen] = {}
        self._asked_at = -float("inf")  # time.monotonic() of the last broadcast
        self._error: str | None = None
        self._lock = threading.Lock()

    def workers(self) -> tuple[list[WorkerSeen], str | None]:
        """(every worker seen lately, alive ones first, by name; the broker error of the last
        broadcast or None). Blocks up to the reply timeout when the answers are older than ttl."""
        with self._lock:
            if time.monotonic() - self._asked_at >= self.ttl_s:
                self._ask()
            seen = sorted(self._seen.values(), key=lambda w: (not w.alive, w.name))
            return [WorkerSeen(**vars(worker)) for worker in seen], self._error

    def _ask(self) -> None:
        now = utcnow()
        try:
            replies = self.celery.control.inspect(timeout=self.timeout_s).active_queues() or {}
            self._error = None
        except Exception as exc:  # noqa: BLE001 (a broker outage is shown, not raised)
            replies, self._error = None, f"{type(exc).__name__}: {str(exc)[:200]}"
        self._asked_at = time.monotonic()
        for worker in self._seen.values():
            worker.alive = False  # until it answers again
        for name, queues in (replies or {}).items():
            self._seen[name] = WorkerSeen(name, _queue_names(queues), now, True)
        horizon = now - timedelta(seconds=self.forget_after_s)
        self._seen = {name: w for name, w in self._seen.items() if w.last_heartbeat >= horizon}


def _queue_names(queues: Any) -> list[str]:
    """The names in an `active_queues` reply (a list of kombu Queue dicts)."""
    if not isinstance(queues, list):
        return []
    return sorted(str(q.get("name")) for q in queues if isinstance(q, dict) and q.get("name"))
