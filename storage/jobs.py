"""Queries and state transitions for jobs and pages.

Transitions are conditional UPDATEs (`WHERE status = ...`), so two workers that
race on the same row cannot both win, and running a task twice changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from storage.models import Job, JobStatus, Page, PageStatus, utcnow


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
    counts = dict(
        session.execute(
            select(Page.status, func.count()).where(Page.job_id == job.id).group_by(Page.status)
        ).all()
    )
    failed = counts.get(PageStatus.FAILED, 0) + counts.get(PageStatus.DEAD, 0)
    total = job.page_count if job.page_count is not None else sum(counts.values())
    return Progress(pages_total=total, pages_done=counts.get(PageStatus.DONE, 0), pages_failed=failed)


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
    return result.rowcount == 1


def fail_job(session: Session, job_id: str, code: str, message: str) -> bool:
    """Fail a job that is not final yet (whatever stage it reached)."""
    open_statuses = tuple(s for s in (JobStatus.QUEUED, JobStatus.SPLITTING, JobStatus.PROCESSING,
                                      JobStatus.ASSEMBLING))
    return transition_job(session, job_id, open_statuses, JobStatus.FAILED,
                          error_code=code, error_message=message[:2000])


def mark_assembling_if_complete(session: Session, job_id: str) -> bool:
    """Atomically move a processing job to assembling once no page is left unfinished.

    One statement, so of two workers finishing the last two pages at once,
    exactly one sees the job complete and enqueues assembly.
    """
    unfinished = exists().where(Page.job_id == job_id, Page.status.not_in(PageStatus.FINAL))
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
                    lease_expires_at=lease_until, updated_at=utcnow())
        )
        if result.rowcount == 1:
            claimed.append(session.get(Page, page_id, populate_existing=True))
    return claimed


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
    """Pages of a job that still need inference (queued, or running when nothing runs them)."""
    return list(session.scalars(
        select(Page.id).where(Page.job_id == job_id,
                              Page.status.in_((PageStatus.PENDING, PageStatus.QUEUED, PageStatus.RUNNING)))
        .order_by(Page.page_no)
    ))
