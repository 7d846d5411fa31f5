"""The webhook outbox and the per-tenant signing secrets.

`enqueue_job_finished_webhook(session, job)` is called in the transaction that makes a job
final, so the event is recorded if and only if the job really finished; workers/webhooks.py
sends what is due. Delivery is at least once: a receiver dedupes on the delivery id.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from storage import batches as batch_repo
from storage import jobs as job_repo
from storage.models import Batch, Job, JobStatus, Tenant, WebhookDelivery, new_id, utcnow

JOB_FINISHED = "job.finished"
BATCH_FINISHED = "batch.finished"
CLAIM_EARLY = timedelta(seconds=2)  # a task's retry may arrive a moment before the row is due


def enqueue_job_finished_webhook(session: Session, job: Job) -> list[str]:
    """Outbox rows for a job that has just turned final (in the caller's transaction): the
    job's event, to its `webhook_url` or else its batch's, and the batch's event if this job
    was its last open one. Returns the new delivery ids; calling it again adds nothing."""
    job = session.get(Job, job.id, populate_existing=True)
    if job is None or job.status not in JobStatus.FINAL:
        return []
    batch = session.get(Batch, job.batch_id) if job.batch_id else None
    ids = []
    url = job.options.get("webhook_url") or (batch.webhook_url if batch else None)
    if url:
        ids += _add_once(session, job.tenant_id, JOB_FINISHED, job.id, url,
                         {"job": job_summary(session, job)})
    if batch is not None and batch_repo.finish_if_complete(session, batch.id):
        ids += enqueue_batch_finished_webhook(session, batch.id)
    return ids


def enqueue_batch_finished_webhook(session: Session, batch_id: str) -> list[str]:
    batch = session.get(Batch, batch_id, populate_existing=True)
    if batch is None or not batch.webhook_url or batch.finished_at is None:
        return []
    jobs = batch_repo.jobs_of(session, batch.id)
    body = {"batch": {"id": batch.id, "finished_at": _iso(batch.finished_at),
                      "totals": batch_repo.totals(jobs, batch.entries),
                      "links": {"self": f"/v1/batches/{batch.id}"}}}
    return _add_once(session, batch.tenant_id, BATCH_FINISHED, batch.id, batch.webhook_url, body)


def job_summary(session: Session, job: Job) -> dict[str, Any]:
    progress = job_repo.progress(session, job)
    error = {"code": job.error_code, "message": job.error_message or ""} if job.error_code else None
    base = f"/v1/jobs/{job.id}"
    return {"id": job.id, "status": job.status, "batch_id": job.batch_id, "filename": job.filename,
            "page_count": job.page_count, "progress": dict(progress.__dict__), "error": error,
            "finished_at": _iso(job.finished_at),
            "links": {"self": base, "result": f"{base}/result"}}


def _add_once(session: Session, tenant_id: str, event: str, subject_id: str, url: str,
              data: dict[str, Any]) -> list[str]:
    seen = session.scalar(select(WebhookDelivery.id).where(WebhookDelivery.subject_id == subject_id,
                                                           WebhookDelivery.event == event))
    if seen is not None:
        return []
    now = utcnow()
    delivery = WebhookDelivery(id=new_id(), tenant_id=tenant_id, event=event, subject_id=subject_id, url=url,
                               attempts=0, next_try_at=now, created_at=now, payload={})
    delivery.payload = {"id": delivery.id, "event": event, "created_at": _iso(now), "data": data}
    session.add(delivery)
    session.flush()
    return [delivery.id]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# ---------------------------------------------------------------- secrets


def webhook_secret(session: Session, tenant_id: str) -> str:
    """The tenant's signing secret, created on first use (race-safe). The caller commits."""
    secret = session.scalar(select(Tenant.webhook_secret).where(Tenant.id == tenant_id))
    if secret is None:
        session.execute(update(Tenant).where(Tenant.id == tenant_id, Tenant.webhook_secret.is_(None))
                        .values(webhook_secret="whsec_" + secrets.token_hex(24)))
        secret = session.scalar(select(Tenant.webhook_secret).where(Tenant.id == tenant_id))
    return secret


# ---------------------------------------------------------------- delivery bookkeeping


def due_ids(session: Session, now: datetime, limit: int) -> list[str]:
    return list(session.scalars(
        select(WebhookDelivery.id)
        .where(WebhookDelivery.next_try_at.is_not(None), WebhookDelivery.next_try_at <= now)
        .order_by(WebhookDelivery.next_try_at).limit(limit)))


def claim(session: Session, delivery_id: str, now: datetime, hold_s: float) -> WebhookDelivery | None:
    """Take one attempt of a due delivery: bumps `attempts` and pushes `next_try_at` past the
    attempt, so no one else sends it meanwhile and a sender that dies is retried after `hold_s`.
    The compare-and-set on `attempts` lets exactly one of two racing senders win."""
    row = session.get(WebhookDelivery, delivery_id, populate_existing=True)
    if row is None or row.next_try_at is None or _naive(row.next_try_at) > _naive(now) + CLAIM_EARLY:
        return None
    result = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.attempts == row.attempts,
               WebhookDelivery.delivered_at.is_(None))
        .values(attempts=row.attempts + 1, next_try_at=now + timedelta(seconds=hold_s))
    )
    if result.rowcount != 1:
        return None
    return session.get(WebhookDelivery, delivery_id, populate_existing=True)


def record_success(session: Session, delivery_id: str, attempt: int, status: int) -> None:
    session.execute(update(WebhookDelivery)
                    .where(WebhookDelivery.id == delivery_id, WebhookDelivery.attempts == attempt)
                    .values(delivered_at=utcnow(), next_try_at=None, last_status=status, last_error=None))


def record_failure(session: Session, delivery_id: str, attempt: int, status: int | None, error: str,
                   retry_at: datetime | None) -> None:
    """A failed attempt: try again at `retry_at`, or give up when it is None."""
    values: dict[str, Any] = {"next_try_at": retry_at, "last_status": status, "last_error": error[:2000]}
    if retry_at is None:
        values["failed_at"] = utcnow()
    session.execute(update(WebhookDelivery)
                    .where(WebhookDelivery.id == delivery_id, WebhookDelivery.attempts == attempt)
                    .values(**values))


def _naive(value: datetime) -> datetime:
    """SQLite hands back naive UTC datetimes, PostgreSQL aware ones: compare both as naive UTC."""
    return value if value.tzinfo is None else value.astimezone(timezone.utc).replace(tzinfo=None)
