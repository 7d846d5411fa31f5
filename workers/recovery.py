"""The sweeper: re-send work that no live task holds. Run periodically and at start-up.

Postgres is the source of truth, so the sweeper reads only rows:
- a running page whose lease expired lost its worker: queue it again, or mark
  it `dead` once it has used all its attempts (a page that kills its worker
  every time must not loop);
- queued work untouched for `stale_queued_s` may have lost its message (a
  broker restart): send it again;
- a job stuck in splitting or assembling past its lease is sent again;
- a job whose pages are all final but that never reached assembling is moved on;
- pages of jobs that ended (cancelled) are closed.
Safe at any time and from several processes: every stage is idempotent and
every final write is fenced, so re-sending live work changes nothing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import and_, or_, select, update

from storage.models import Job, JobStatus, Page, PageStatus, utcnow
from workers.enqueue import Enqueuer
from workers.infer import assemble_if_complete
from workers.runtime import Runtime

log = structlog.get_logger(__name__)
OPEN_PAGE = (PageStatus.PENDING, PageStatus.QUEUED, PageStatus.RUNNING)


@dataclass
class Recovered:
    splits: int = 0
    pages: int = 0  # sent again: lease expired, or queued and untouched too long
    expired: int = 0  # of those, pages whose worker lost them (lease expired)
    dead: int = 0
    assemblies: int = 0


def recover(rt: Runtime, enqueue: Enqueuer, *, all_running: bool = False) -> Recovered:
    """One sweep. `all_running` treats every lease as expired and all queued work as stale:
    right only when no worker can be alive (embedded start-up)."""
    now = utcnow()
    stale = now if all_running else now - timedelta(seconds=rt.settings.stale_queued_s)
    job_stale = now if all_running else now - timedelta(seconds=2 * rt.settings.lease_s)
    counts = Recovered()
    with rt.sessions.begin() as session:
        _close_pages_of_ended_jobs(session)
        requeued, counts.dead = _expire_leases(session, rt.settings.max_page_attempts,
                                               None if all_running else now)
        counts.expired = len(requeued)
        # Only pages of processing jobs: a split sends its pages' messages when it ends, so the
        # early pages of a long split are waiting for it, not lost.
        resend = requeued + _touch(session, select(Page.id).join(Job, Job.id == Page.job_id).where(
            Job.status == JobStatus.PROCESSING, Page.status.in_((PageStatus.QUEUED, PageStatus.PENDING)),
            Page.updated_at < stale))
        splits = _touch_jobs(session, or_(
            and_(Job.status == JobStatus.QUEUED, Job.updated_at < stale),
            and_(Job.status == JobStatus.SPLITTING, Job.updated_at < job_stale)))
        assemblies = _touch_jobs(session, and_(Job.status == JobStatus.ASSEMBLING, Job.updated_at < job_stale))
        processing = list(session.scalars(select(Job.id).where(Job.status == JobStatus.PROCESSING)))
    _send(rt, enqueue, counts, resend, splits, assemblies, processing)
    if counts.splits or counts.pages or counts.assemblies or counts.dead:  # (expired is in pages)
        log.info("sweep.recovered", **counts.__dict__)
    return counts


def _send(rt: Runtime, enqueue: Enqueuer, counts: Recovered, pages: list[int], splits: list[str],
          assemblies: list[str], processing: list[str]) -> None:
    for job_id in splits:
        enqueue.split(job_id)
    for page_id in pages:  # one message each: batches are refilled by the gpu worker itself
        enqueue.infer([page_id])
    for job_id in assemblies:
        enqueue.assemble(job_id)
    for job_id in processing:
        assemble_if_complete(rt, enqueue, job_id)
    counts.splits, counts.pages, counts.assemblies = len(splits), len(pages), len(assemblies)


def _expire_leases(session, max_attempts: int, now) -> tuple[list[int], int]:  # noqa: ANN001
    """Queue again (or kill) running pages whose lease ran out; fenced by attempt number."""
    query = select(Page.id, Page.attempt).where(Page.status == PageStatus.RUNNING)
    if now is not None:
        query = query.where(or_(Page.lease_expires_at.is_(None), Page.lease_expires_at < now))
    requeued, dead = [], 0
    for page_id, attempt in session.execute(query).all():
        fence = and_(Page.id == page_id, Page.attempt == attempt, Page.status == PageStatus.RUNNING)
        if attempt >= max_attempts:
            message = f"the page stopped its worker (crash or stall) on all {attempt} attempts"
            session.execute(update(Page).where(fence).values(
                status=PageStatus.DEAD, error_code="worker_lost", error_message=message,
                lease_expires_at=None, finished_at=utcnow(), updated_at=utcnow()))
            dead += 1
        elif session.execute(update(Page).where(fence).values(
                status=PageStatus.QUEUED, lease_expires_at=None, updated_at=utcnow())).rowcount:
            requeued.append(page_id)
    return requeued, dead


def _touch(session, ids_query) -> list[int]:  # noqa: ANN001
    ids = list(session.scalars(ids_query))
    if ids:
        session.execute(update(Page).where(Page.id.in_(ids)).values(updated_at=utcnow()))
    return ids


def _touch_jobs(session, condition) -> list[str]:  # noqa: ANN001
    ids = list(session.scalars(select(Job.id).where(condition)))
    if ids:
        session.execute(update(Job).where(Job.id.in_(ids)).values(updated_at=utcnow()))
    return ids


def _close_pages_of_ended_jobs(session) -> None:  # noqa: ANN001
    ended = select(Job.id).where(Job.status.in_(JobStatus.FINAL))
    session.execute(
        update(Page).where(Page.job_id.in_(ended), Page.status.in_(OPEN_PAGE)).values(
            status=PageStatus.FAILED, error_code="cancelled", error_message="the job ended first",
            lease_expires_at=None, finished_at=utcnow(), updated_at=utcnow()))


class Sweeper:
    """Runs `recover` and delivers due webhooks every `sweep_interval_s`, in a daemon thread
    (inside `tessera serve`)."""

    def __init__(self, rt: Runtime, enqueue: Enqueuer):
        self.rt, self.enqueue = rt, enqueue
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sweeper", daemon=True)

    def start(self) -> Sweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        from workers.webhooks import deliver_due_webhooks

        while not self._stop.wait(self.rt.settings.sweep_interval_s):
            for step in (lambda: recover(self.rt, self.enqueue), lambda: deliver_due_webhooks(self.rt)):
                try:
                    step()
                except Exception as exc:  # noqa: BLE001 (the database may be down; try next time)
                    log.warning("sweep.failed", error=repr(exc)[:300])
