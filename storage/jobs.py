"""Queries and state transitions for jobs and pages.

Transitions are conditional UPDATEs (`WHERE status = ...`), so two workers that
race on the same row cannot both win, and running a task twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from collections.abc import Iterable

from sqlalchemy import Row, bindparam, delete, exists, func, literal, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from storage.models import Job, JobStatus, Page, PageStatus, utcnow


PENDING_WEBHOOKS = "tessera.pending_webhooks"  # session.info key: outbox ids to send after commit
OPEN_PAGE = (PageStatus.PENDING, PageStatus.QUEUED, PageStatus.RUNNING)
WAITING_PAGE = (PageStatus.PENDING, PageStatus.QUEUED)
NOT_DONE_PAGE = (*OPEN_PAGE, PageStatus.FAILED, PageStatus.DEAD)


def const_in(column: ColumnElement, values: Iterable[str]) -> ColumnElement[bool]:
    """`column IN (...)` with the values written into the SQL rather than bound: PostgreSQL
    matches a partial index (migration 0006) only against constants, and a prepared statement's
    generic plan sees none."""
    return column.in_(bindparam(None, list(values), expanding=True, literal_execute=True))


def const(value: object) -> ColumnElement:
    """A constant written into the SQL (see `const_in`)."""
    return literal(value, literal_execute=True)


@dataclass
class Progress:
    pages_total: int
    pages_done: int
    pages_failed: int


def get_job(session: Session, job_id: str, tenant_id: str | None = None) -> Job | None:
    query = select(Job).where(Job.id == job_id)
    if tenant_id is not None:
        query = query.where(Job.tenant_id == tenant_id)
    return session.scalar(query)


def find_by_idempotency_key(session: Session, tenant_id: str, key: str) -> Job | None:
    return session.scalar(select(Job).where(Job.tenant_id == tenant_id, Job.idempotency_key == key))


def progress(session: Session, job: Job) -> Progress:
    return progress_many(session, [job])[job.id]


def transition_job(
    session: Session, job_id: str, from_statuses: tuple[str, ...], to_status: str, **values: object
) -> bool:
    """Move a job between states if (and only if) it is in one of `from_statuses`."""
    if to_status in JobStatus.FINAL:
        values.setdefault("finished_at", utcnow())
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(from_statuses))
        .values(status=to_status, updated_at=utcnow(), **values)
    )
    moved = result.rowcount == 1
    if moved and to_status in JobStatus.FINAL:
        _record_finished_webhooks(session, job_id)
    return moved


def _record_finished_webhooks(session: Session, job_id: str) -> None:
    """Every way a job ends comes through here, so its `job.finished` event is written to the
    outbox in the same transaction. The ids wait in `session.info` for the commit hook
    (workers/runtime.py) to hand them to the webhooks queue."""
    from storage.webhooks import enqueue_job_finished_webhook  # it imports this module

    job = session.get(Job, job_id, populate_existing=True)
    if job is not None:
        session.info.setdefault(PENDING_WEBHOOKS, []).extend(enqueue_job_finished_webhook(session, job))


def fail_job(session: Session, job_id: str, code: str, message: str) -> bool:
    """Fail a job that is not final yet (whatever stage it reached)."""
    return transition_job(session, job_id, JobStatus.OPEN, JobStatus.FAILED,
                          error_code=code, error_message=message[:2000])


def mark_assembling_if_complete(session: Session, job_id: str) -> bool:
    """Atomically move a processing job to assembling once no page is left unfinished.

    One statement, so of two workers finishing the last two pages at once,
    exactly one sees the job complete and enqueues assembly.
    """
    unfinished = exists().where(Page.job_id == job_id, const_in(Page.status, OPEN_PAGE))
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.PROCESSING, ~unfinished)
        .values(status=JobStatus.ASSEMBLING, updated_at=utcnow())
    )
    return result.rowcount == 1


def pages_of(session: Session, job_id: str) -> list[Page]:
    return list(session.scalars(select(Page).where(Page.job_id == job_id).order_by(Page.page_no)))


def get_page(session: Session, job_id: str, page_no: int) -> Page | None:
    return session.scalar(select(Page).where(Page.job_id == job_id, Page.page_no == page_no))


def page_result_key(session: Session, page_id: int) -> str | None:
    """The result blob the page row points at (None: no result, or no such page)."""
    return session.scalar(select(Page.result_key).where(Page.id == page_id))


def claimable(session: Session, page_ids: list[int]) -> list[tuple[int, int]]:
    """(page id, attempts so far) of the given pages that are waiting to run, in page order."""
    rows = session.execute(
        select(Page.id, Page.attempt)
        .where(Page.id.in_(page_ids), Page.status.in_((PageStatus.QUEUED, PageStatus.PENDING)))
        .order_by(Page.job_id, Page.page_no)
    )
    return [(row.id, row.attempt) for row in rows]


def claim_pages(session: Session, page_ids: list[int], worker_id: str, lease_until: datetime) -> list[Page]:
    """Claim the given pages that are still waiting; returns the ones this call won.

    Each claim bumps the attempt number, which fences the final write.
    """
    claimed: list[Page] = []
    for page_id in page_ids:
        result = session.execute(
            update(Page)
            .where(Page.id == page_id, Page.status.in_((PageStatus.QUEUED, PageStatus.PENDING)))
            .values(status=PageStatus.RUNNING, attempt=Page.attempt + 1, worker_id=worker_id,
                    lease_expires_at=lease_until, started_at=utcnow(), updated_at=utcnow())
        )
        if result.rowcount == 1:
            claimed.append(session.get(Page, page_id, populate_existing=True))
    return claimed


def fresh_queued_page_ids(session: Session, limit: int, exclude: list[int]) -> list[int]:
    """Never-tried queued pages of live jobs, oldest first: the gpu worker fills its batch with
    them across documents. Rows locked by another claimer are skipped (PostgreSQL)."""
    query = (
        select(Page.id)
        .join(Job, Job.id == Page.job_id)
        .where(Page.status == const(PageStatus.QUEUED), Page.attempt == const(0),  # ix_pages_fresh
               Page.id.not_in(exclude or [-1]),
               Job.status == JobStatus.PROCESSING, Job.cancel_requested.is_(False))
        .order_by(Page.id)
        .limit(limit)
    )
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=Page)
    return list(session.scalars(query))


def finish_page(session: Session, page: Page, status: str, **values: object) -> bool:
    """Final write for one attempt: lands only if this attempt still owns the page."""
    result = session.execute(
        update(Page)
        .where(Page.id == page.id, Page.status == PageStatus.RUNNING, Page.attempt == page.attempt)
        .values(status=status, finished_at=utcnow(), updated_at=utcnow(), lease_expires_at=None, **values)
    )
    return result.rowcount == 1


def requeue_page(session: Session, page: Page, error_code: str, error_message: str) -> bool:
    result = session.execute(
        update(Page)
        .where(Page.id == page.id, Page.status == PageStatus.RUNNING, Page.attempt == page.attempt)
        .values(status=PageStatus.QUEUED, lease_expires_at=None, updated_at=utcnow(),
                error_code=error_code, error_message=error_message[:2000])
    )
    return result.rowcount == 1


def open_jobs(session: Session) -> list[Job]:
    """Jobs not in a final state (for recovery after a restart)."""
    return list(session.scalars(select(Job).where(Job.status.not_in(JobStatus.FINAL))))


def waiting_page_ids(session: Session, job_id: str) -> list[int]:
    """Pages of a job that wait for inference (queued or pending), in page order."""
    return list(session.scalars(
        select(Page.id).where(Page.job_id == job_id,
                              Page.status.in_((PageStatus.PENDING, PageStatus.QUEUED)))
        .order_by(Page.page_no)
    ))


def touch_job(session: Session, job_id: str) -> bool:
    """Mark the job alive now (the split's heartbeat, which the sweeper reads). Returns whether
    it still wants its pages: False when it is gone, ended or asked to cancel (the same answer
    as `cancel_requested`, in the same round trip)."""
    row = session.execute(update(Job).where(Job.id == job_id).values(updated_at=utcnow())
                          .returning(Job.status, Job.cancel_requested)).first()
    return not _stopped(row)


def cancel_requested(session: Session, job_id: str) -> bool:
    """True when the client asked to cancel, or the job ended or is gone."""
    return _stopped(session.execute(select(Job.status, Job.cancel_requested).where(Job.id == job_id)).first())


def _stopped(row: Row | None) -> bool:
    """A (status, cancel_requested) row, or None for a job that is gone: whether the job wants
    no more work."""
    return row is None or row.cancel_requested or row.status in JobStatus.FINAL


# --- Reads and writes for the REST API: listing, pagination, events, cancel, delete ---------


def list_jobs(session: Session, tenant_id: str, *, statuses: list[str] | None = None,
              batch_id: str | None = None, ids: list[str] | None = None,
              before: tuple[datetime, str] | None = None, limit: int = 50) -> list[Job]:
    """A tenant's jobs, newest first. `before` is the (created_at, id) of the last job of the
    previous page (keyset pagination: stable while new jobs arrive); `ids` keeps only those jobs
    (a client following many jobs reads them in one query)."""
    query = select(Job).where(Job.tenant_id == tenant_id)
    if statuses:
        query = query.where(Job.status.in_(statuses))
    if batch_id is not None:
        query = query.where(Job.batch_id == batch_id)
    if ids is not None:
        query = query.where(Job.id.in_(ids))
    if before is not None:
        created_at, job_id = before
        # `created_at <= t` alone is what an index range can use; the OR only breaks the tie
        query = query.where(Job.created_at <= created_at,
                            or_(Job.created_at < created_at, Job.id < job_id))
    return list(session.scalars(query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit)))


def progress_many(session: Session, jobs: list[Job]) -> dict[str, Progress]:
    """`progress` for many jobs in at most two queries. A split job's done pages are its page
    count less its pages not done, so only those are read (ix_pages_not_done_job, migration 0006:
    a few rows, not every page of every job); a job still splitting has its pages counted."""
    counts: dict[str, dict[str, int]] = {job.id: {} for job in jobs}
    split = [job.id for job in jobs if job.page_count is not None]
    splitting = [job.id for job in jobs if job.page_count is None]
    queries = []
    if split:
        queries.append(select(Page.job_id, Page.status, func.count()).where(
            Page.job_id.in_(split), const_in(Page.status, NOT_DONE_PAGE)))
    if splitting:
        queries.append(select(Page.job_id, Page.status, func.count()).where(Page.job_id.in_(splitting)))
    for query in queries:
        for job_id, status, count in session.execute(query.group_by(Page.job_id, Page.status)):
            counts[job_id][status] = count
    return {job.id: _progress_of(job, counts[job.id]) for job in jobs}


def _progress_of(job: Job, counts: dict[str, int]) -> Progress:
    failed = counts.get(PageStatus.FAILED, 0) + counts.get(PageStatus.DEAD, 0)
    if job.page_count is None:
        return Progress(pages_total=sum(counts.values()), pages_done=counts.get(PageStatus.DONE, 0),
                        pages_failed=failed)
    unfinished = sum(counts.get(status, 0) for status in OPEN_PAGE)
    return Progress(pages_total=job.page_count, pages_done=max(job.page_count - unfinished - failed, 0),
                    pages_failed=failed)


def list_pages(session: Session, job_id: str, *, after: int = 0, limit: int = 50) -> list[Page]:
    """A job's pages in page order, starting after page number `after`."""
    return list(session.scalars(
        select(Page).where(Page.job_id == job_id, Page.page_no > after)
        .order_by(Page.page_no).limit(limit)
    ))


def final_page_numbers(session: Session, job_id: str) -> list[int]:
    """Numbers of the job's pages that have reached a final state (done, failed, dead)."""
    return list(session.scalars(
        select(Page.page_no).where(Page.job_id == job_id, Page.status.in_(PageStatus.FINAL))
    ))


def final_pages_finished_before(session: Session, job_id: str, moment: datetime) -> list[int]:
    return list(session.scalars(
        select(Page.page_no).where(Page.job_id == job_id, Page.status.in_(PageStatus.FINAL),
                                   Page.finished_at < moment)
    ))


def pages_numbered(session: Session, job_id: str, numbers: list[int]) -> list[Page]:
    return list(session.scalars(
        select(Page).where(Page.job_id == job_id, Page.page_no.in_(numbers)).order_by(Page.page_no)
    ))


def request_cancel(session: Session, job_id: str) -> bool:
    """Flag the job and end it as `cancelled` in one conditional UPDATE; False if it was already
    final. Workers see a final job and stop; a split that is running stops at its next page."""
    return transition_job(session, job_id, JobStatus.OPEN, JobStatus.CANCELLED, cancel_requested=True)


def mark_purged(session: Session, job_id: str) -> bool:
    """Record that retention removed the job's files; the page previews (text) go too. Only a
    final, not yet purged job is marked; returns whether this call marked it."""
    result = session.execute(
        update(Job).where(Job.id == job_id, Job.purged_at.is_(None), Job.status.in_(JobStatus.FINAL))
        .values(purged_at=utcnow()))
    if result.rowcount != 1:
        return False
    session.execute(update(Page).where(Page.job_id == job_id, Page.text_preview.is_not(None))
                    .values(text_preview=None))
    return True


def delete_job(session: Session, job_id: str, tenant_id: str) -> bool:
    """Delete the job's rows (pages first, though the foreign key cascades too)."""
    session.execute(delete(Page).where(Page.job_id == job_id, Page.tenant_id == tenant_id))
    result = session.execute(delete(Job).where(Job.id == job_id, Job.tenant_id == tenant_id))
    return result.rowcount == 1
