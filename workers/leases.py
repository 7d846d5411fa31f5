"""Heartbeats that keep a running page's lease alive while its worker is.

A worker that dies stops renewing; the lease expires within `lease_s` and the
sweeper sends the page again. A live but slow worker keeps its pages, so work
longer than any timeout is never handed to a second worker.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import structlog
from sqlalchemy import update

from storage.models import Page, PageStatus, utcnow
from workers.runtime import Runtime

log = structlog.get_logger(__name__)


class Heartbeat:
    """Renews the leases of (page id, attempt) pairs every lease_s / 3 until stopped."""

    def __init__(self, rt: Runtime, claims: list[tuple[int, int]]):
        self.rt = rt
        self.claims = claims
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        interval = self.rt.settings.lease_s / 3
        while not self._stop.wait(interval):
            try:
                self.renew()
            except Exception as exc:  # noqa: BLE001 (a DB blip must not kill the task; the lease may lapse)
                log.warning("lease.renew_failed", error=repr(exc))

    def renew(self) -> None:
        until = utcnow() + timedelta(seconds=self.rt.settings.lease_s)
        with self.rt.sessions.begin() as session:
            for page_id, attempt in self.claims:
                session.execute(
                    update(Page)
                    .where(Page.id == page_id, Page.attempt == attempt, Page.status == PageStatus.RUNNING)
                    .values(lease_expires_at=until)
                )
