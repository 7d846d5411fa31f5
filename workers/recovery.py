"""The sweeper: re-send work that no live task holds. Run periodically and at start-up.

Postgres is the source of truth, so the sweeper reads only rows:
- a running page whose lease expired lost its worker: queue it again, or mark
  it `dead` once it has used all its attempts (a page that kills its worker
  every time must not loop);
- queued work untouched for `stale_queued_s` may have lost its message (a
  broker restart): send it again, oldest first, at most SWEEP_BATCH of each kind per pass;
- a job stuck in splitting or assembling past its lease is sent again;
- a job whose pages are all final but that never reached assembling is moved on;
- pages of jobs that ended (cancelled) are closed.
Safe at any time and from several processes: every stage is idempotent and
every final write is fenced, so re-sending live work changes nothing.

At archive scale (bench/db_scale.py) a pass must cost what the work to do costs, not what the
backlog or the history holds:
- every query reads open work only, through the partial indexes of migration 0006;
- waiting work is old because the backlog is long, not because its message was lost: queued
  pages (and queued jobs) are re-sent only when the broker's queue holds too few messages to
  cover them (`Enqueuer.depth`: messages x pages per message < pages waiting), which is what a
  lost message looks like; a broker that cannot say counts as having lost them;
- a `Sweeper` checks processing jobs for completeness PROCESSING_CHUNK at a time, in id order,
  one chunk per pass (every pass at ordinary sizes), and closes pages of every ended job on its
  first pass, then only of jobs that ended since its previous pass (with a margin for commits in
  flight; a page queued later for a long-ended job is dropped when a worker claims it).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import and_, exists, func, or_, select, update

from storage.counts import fold_deltas, read_counts
from storage.jobs import OPEN_PAGE, WAITING_PAGE, const, const_in
from storage.models import Job, JobStatus, Page, PageStatus, utcnow
from workers.enqueue import QUEUE_OF, INFER, SPLIT, Enqueuer
from workers.infer import assemble_if_complete
from workers.runtime import Runtime

log = structlog.get_logger(__name__)
SWEEP_BATCH = 1000  # stale pages, and stale jobs, re-sent per pass at most
PROCESSING_CHUNK = 500  # processing jobs checked for completeness per pass
ENDED_MARGIN = timedelta(minutes=5)  # a job that ended just before a pass may commit after it


@dataclass
class Recovered:
    splits: int = 0
    pages: int = 0  # sent again: lease expired, or queued and untouched too long
    expired: int = 0  # of those, pages whose worker lost them (lease expired)
    dead: int = 0
    assemblies: int = 0


@dataclass
class SweepState:
    """What a Sweeper carries from one pass to the next."""

    ended_since: datetime | None = None  # None: look at every ended job
    processing_after: str = ""  # the last processing job id checked


def recover(rt: Runtime, enqueue: Enqueuer, *, all_running: bool = False,
            state: SweepState | None = None) -> Recovered:
    """One sweep. `all_running` treats every lease as expired and all queued work as stale:
    right only when no worker can be alive (embedded start-up). Without `state` everything is
    looked at (no window, no chunks)."""
    now = utcnow()
    stale = now if all_running else now - timedelta(seconds=rt.settings.stale_queued_s)
    job_stale = now if all_running else now - timedelta(seconds=2 * rt.settings.lease_s)
    limit = None if all_running else SWEEP_BATCH
    counts = Recovered()
    with rt.sessions.begin() as session:
        _close_pages_of_ended_jobs(session, state.ended_since if state else None)
        requeued, counts.dead = _expire_leases(session, rt.settings.max_page_attempts,
                                               None if all_running else now)
        counts.expired = len(requeued)
        lost_pages, lost_splits = (True, True) if all_running else _lost_messages(rt, enqueue, session)
        # Only pages of processing jobs: a split sends its pages' messages when it ends, so the
        # early pages of a long split are waiting for it, not lost.
        resend = requeued + (_touch(session, select(Page.id).join(Job, Job.id == Page.job_id).where(
            Job.status == const(JobStatus.PROCESSING), const_in(Page.status, WAITING_PAGE),
            Page.updated_at < stale).order_by(Page.updated_at).limit(limit)) if lost_pages else [])
        splits = _touch_jobs(session, and_(Job.status == const(JobStatus.SPLITTING),
                                           Job.updated_at < job_stale), limit)
        if lost_splits:
            splits += _touch_jobs(session, and_(Job.status == const(JobStatus.QUEUED),
                                                Job.updated_at < stale), limit)
        assemblies = _touch_jobs(session, and_(Job.status == const(JobStatus.ASSEMBLING),
                                               Job.updated_at < job_stale), limit)
        complete = _complete_processing_jobs(session, state)
    _send(rt, enqueue, counts, resend, splits, assemblies, complete)
    if counts.splits or counts.pages or counts.assemblies or counts.dead:  # (expired is in pages)
        log.info("sweep.recovered", **counts.__dict__)
    return counts


def _lost_messages(rt: Runtime, enqueue: Enqueuer, session) -> tuple[bool, bool]:  # noqa: ANN001
    """(infer messages may be missing, split messages may be missing): the broker's queues hold
    fewer messages than the waiting pages (queued jobs) need."""
    waiting = read_counts(session)
    pages = sum(waiting.get("pages", {}).get(status, 0) for status in WAITING_PAGE)
    jobs = waiting.get("jobs", {}).get(JobStatus.QUEUED, 0)
    infer, split = enqueue.depth(QUEUE_OF[INFER]), enqueue.depth(QUEUE_OF[SPLIT])
    return (pages > 0 and (infer is None or infer * rt.settings.engine_batch_size < pages),
            jobs > 0 and (split is None or split < jobs))


def _complete_processing_jobs(session, state: SweepState | None) -> list[str]:  # noqa: ANN001
    """Processing jobs none of whose pages is open (the worker that finished the last one died
    before moving the job on), among the next PROCESSING_CHUNK after `state.processing_after`
    (all of them without a state)."""
    processing = select(Job.id).where(Job.status == const(JobStatus.PROCESSING))
    open_page = exists().where(Page.job_id == Job.id, const_in(Page.status, OPEN_PAGE))
    if state is None:
        return list(session.scalars(processing.where(~open_page)))
    after = state.processing_after  # a range of ix_jobs_processing (migration 0006), not a list
    chunk = processing.where(Job.id > after).order_by(Job.id).limit(PROCESSING_CHUNK).subquery()
    last = session.scalar(select(func.max(chunk.c.id)))
    state.processing_after = last or ""
    if last is None:
        return []
    return list(session.scalars(processing.where(Job.id > after, Job.id <= last, ~open_page)))


def _send(rt: Runtime, enqueue: Enqueuer, counts: Recovered, pages: list[int], splits: list[str],
          assemblies: list[str], complete: list[str]) -> None:
    for job_id in splits:
        enqueue.split(job_id)
    for page_id in pages:  # one message each: batches are refilled by the gpu worker itself
        enqueue.infer([page_id])
    for job_id in assemblies:
        enqueue.assemble(job_id)
    for job_id in complete:
        assemble_if_complete(rt, enqueue, job_id)
    counts.splits, counts.pages, counts.assemblies = len(splits), len(pages), len(assemblies)


def _expire_leases(session, max_attempts: int, now) -> tuple[list[int], int]:  # noqa: ANN001
    """Queue again (or kill) running pages whose lease ran out; fenced by attempt number."""
    query = select(Page.id, Page.attempt).where(Page.status == const(PageStatus.RUNNING))
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


def _touch_jobs(session, condition, limit: int | None) -> list[str]:  # noqa: ANN001
    ids = list(session.scalars(select(Job.id).where(condition).order_by(Job.updated_at).limit(limit)))
    if ids:
        session.execute(update(Job).where(Job.id.in_(ids)).values(updated_at=utcnow()))
    return ids


def _close_pages_of_ended_jobs(session, since: datetime | None) -> None:  # noqa: ANN001
    ended = select(Job.id).where(Job.status.in_(JobStatus.FINAL))
    if since is not None:  # ix_jobs_unpurged_finished: recently ended jobs are not purged
        ended = ended.where(Job.purged_at.is_(None), Job.finished_at >= since)
    session.execute(
        update(Page).where(Page.job_id.in_(ended), const_in(Page.status, OPEN_PAGE)).values(
            status=PageStatus.FAILED, error_code="cancelled", error_message="the job ended first",
            lease_expires_at=None, finished_at=utcnow(), updated_at=utcnow()),
        execution_options={"synchronize_session": False})


class Sweeper:
    """Every `sweep_interval_s`, in a daemon thread (inside `tessera serve`; `tessera sweep`
    calls `pass_once` itself): `recover`, deliver due webhooks, purge expired jobs (retention),
    fold the status-count log (storage/counts.py). A step that fails (the database is down) is
    tried again on the next pass; the others still run."""

    def __init__(self, rt: Runtime, enqueue: Enqueuer):
        self.rt, self.enqueue = rt, enqueue
        self.state = SweepState()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sweeper", daemon=True)

    def start(self) -> Sweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def pass_once(self) -> dict[str, object]:
        """One pass; returns what each step did (or the error that stopped it)."""
        from workers.retention import purge_expired
        from workers.webhooks import deliver_due_webhooks

        started = utcnow()
        report: dict[str, object] = {}
        steps = (("recovered", lambda: recover(self.rt, self.enqueue, state=self.state)),
                 ("webhooks_delivered", lambda: deliver_due_webhooks(self.rt)),
                 ("jobs_purged", lambda: purge_expired(self.rt)),
                 ("counts_folded", self._fold))
        for name, step in steps:
            try:
                report[name] = step()
            except Exception as exc:  # noqa: BLE001 (the database may be down; try next time)
                log.warning("sweep.failed", step=name, error=repr(exc)[:300])
                report[name] = exc
        if not isinstance(report["recovered"], Exception):
            self.state.ended_since = started - ENDED_MARGIN
        return report

    def _fold(self) -> bool:
        with self.rt.sessions.begin() as session:
            fold_deltas(session)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.rt.settings.sweep_interval_s):
            self.pass_once()
