"""Batches: one bulk submission and the jobs it created.

A batch is `receiving` while its entries are being turned into jobs, then sealed with its
manifest; it is finished once sealed and every job of it is final. `finish_if_complete` is
called in the transaction that makes a job final (storage/webhooks.py) and at sealing, and
locks the batch row so that of two jobs finishing at once exactly one finishes the batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import and_, event, exists, func, or_, select, update
from sqlalchemy.orm import Session

from storage.models import Batch, Job, JobStatus, utcnow


def create_batch(session: Session, *, tenant_id: str, source: str, webhook_url: str | None,
                 options: dict[str, Any], idempotency_key: str | None) -> Batch:
    batch = Batch(tenant_id=tenant_id, source=source, webhook_url=webhook_url, options=options,
                  idempotency_key=idempotency_key, entries=[])
    session.add(batch)
    session.flush()
    return batch


def get_batch(session: Session, batch_id: str, tenant_id: str | None = None) -> Batch | None:
    query = select(Batch).where(Batch.id == batch_id)
    if tenant_id is not None:
        query = query.where(Batch.tenant_id == tenant_id)
    return session.scalar(query)


def find_by_idempotency_key(session: Session, tenant_id: str, key: str) -> Batch | None:
    return session.scalar(select(Batch).where(Batch.tenant_id == tenant_id, Batch.idempotency_key == key))


def entry_idempotency_key(batch_id: str, index: int) -> str:
    """The job idempotency key of a batch entry: a retried submission of the same batch (same
    Idempotency-Key) finds the jobs made the first time instead of making them again."""
    return f"batch:{batch_id}:{index}"


@contextmanager
def new_jobs_join(session: Session, batch_id: str) -> Iterator[None]:
    """Jobs added to `session` inside this block are flushed with `batch_id` set, so a job is
    committed together with its batch link (api.submission.create_job knows nothing of batches)."""

    def _tag(sess: Session, _context: object, _instances: object) -> None:
        for obj in sess.new:
            if isinstance(obj, Job) and obj.batch_id is None:
                obj.batch_id = batch_id

    event.listen(session, "before_flush", _tag)
    try:
        yield
    finally:
        event.remove(session, "before_flush", _tag)


def jobs_of(session: Session, batch_id: str) -> list[Job]:
    return list(session.scalars(select(Job).where(Job.batch_id == batch_id)
                                .order_by(Job.created_at, Job.id)))


def totals(jobs: list[Job], entries: list[dict[str, Any]]) -> dict[str, int]:
    """Counts by job status, plus `entries`, `jobs` and `rejected` (entries without a job)."""
    return totals_of(Counter(job.status for job in jobs), entries)


def totals_of(counts: Counter[str], entries: list[dict[str, Any]]) -> dict[str, int]:
    """`totals` from the batch's job counts by status."""
    jobs = sum(counts.values())
    out = {status: counts.get(status, 0) for status in
           (JobStatus.QUEUED, JobStatus.SPLITTING, JobStatus.PROCESSING, JobStatus.ASSEMBLING,
            *JobStatus.FINAL)}
    rejected = sum(1 for entry in entries if entry.get("error"))
    return {"entries": max(len(entries), jobs + rejected), "jobs": jobs, "rejected": rejected, **out}


def list_batches(session: Session, tenant_id: str, *, before: tuple[datetime, str] | None = None,
                 limit: int = 20) -> list[Batch]:
    """A tenant's batches, newest first; `before` is the (created_at, id) of the previous page's
    last batch (keyset pagination, as storage.jobs.list_jobs)."""
    query = select(Batch).where(Batch.tenant_id == tenant_id)
    if before is not None:
        created_at, batch_id = before
        query = query.where(or_(Batch.created_at < created_at,
                                and_(Batch.created_at == created_at, Batch.id < batch_id)))
    return list(session.scalars(query.order_by(Batch.created_at.desc(), Batch.id.desc()).limit(limit)))


def job_counts(session: Session, batch_ids: list[str]) -> dict[str, Counter[str]]:
    """Each batch's jobs counted by status, in one query."""
    counts: dict[str, Counter[str]] = {batch_id: Counter() for batch_id in batch_ids}
    if batch_ids:
        rows = session.execute(select(Job.batch_id, Job.status, func.count())
                               .where(Job.batch_id.in_(batch_ids)).group_by(Job.batch_id, Job.status))
        for batch_id, status, count in rows:
            counts[batch_id][status] = count
    return counts


def seal(session: Session, batch_id: str, entries: list[dict[str, Any]]) -> bool:
    """Record the manifest and mark every entry in; returns True if the batch is already finished
    (every job final, or no job at all). The caller commits."""
    session.execute(update(Batch).where(Batch.id == batch_id)
                    .values(entries=entries, sealed_at=utcnow()))
    return finish_if_complete(session, batch_id)


def finish_if_complete(session: Session, batch_id: str) -> bool:
    """Mark the batch finished if it is sealed and none of its jobs is open; True only for the
    call that finished it. The row lock serialises concurrent callers (PostgreSQL; SQLite
    serialises writers anyway), so each sees the other's committed job status."""
    query = select(Batch.id).where(Batch.id == batch_id)
    if session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    if session.scalar(query) is None:
        return False
    open_job = exists().where(Job.batch_id == batch_id, Job.status.not_in(JobStatus.FINAL))
    result = session.execute(
        update(Batch)
        .where(Batch.id == batch_id, Batch.sealed_at.is_not(None), Batch.finished_at.is_(None), ~open_job)
        .values(finished_at=utcnow())
    )
    return result.rowcount == 1
