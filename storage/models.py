"""The system of record: tenants, their keys, jobs and pages.

Status strings are the public ones (DESIGN.md). Every row below `tenants`
carries `tenant_id` so that every query can be scoped to the caller.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return uuid.uuid4().hex


class JobStatus:
    QUEUED = "queued"
    SPLITTING = "splitting"
    PROCESSING = "processing"
    ASSEMBLING = "assembling"
    SUCCEEDED = "succeeded"
    PARTIALLY_SUCCEEDED = "partially_succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    FINAL = (SUCCEEDED, PARTIALLY_SUCCEEDED, FAILED, CANCELLED)
    OPEN = (QUEUED, SPLITTING, PROCESSING, ASSEMBLING)


class PageStatus:
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    DEAD = "dead"
    FINAL = (DONE, FAILED, DEAD)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: DateTime(timezone=True)}


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # HMAC key for signing webhooks (storage/webhooks.py creates it on first use).
    webhook_secret: Mapped[str | None] = mapped_column(String(64), default=None)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_jobs_tenant_idempotency"),
        Index("ix_jobs_tenant_created", "tenant_id", "created_at"),
        Index("ix_jobs_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(32), default=JobStatus.QUEUED)
    filename: Mapped[str | None] = mapped_column(String(255), default=None)
    media_type: Mapped[str] = mapped_column(String(100))
    input_sha256: Mapped[str] = mapped_column(String(64))
    input_size: Mapped[int] = mapped_column(BigInteger)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    page_count: Mapped[int | None] = mapped_column(Integer, default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    # sha256 over the input and canonical options: an Idempotency-Key replay must match it.
    request_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    # what was noticed about the whole document (e.g. its page tree disagreeing with /Count)
    warnings: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    batch_id: Mapped[str | None] = mapped_column(
        ForeignKey("batches.id", ondelete="SET NULL", name="fk_jobs_batch_id"), default=None, index=True)
    # when retention (workers/retention.py) removed its input, page images and results
    purged_at: Mapped[datetime | None] = mapped_column(default=None)
    # Partial indexes for the hot queries and the status-count triggers: migration 0006.


class Page(Base):
    __tablename__ = "pages"
    __table_args__ = (
        UniqueConstraint("job_id", "page_no", name="uq_pages_job_page"),
        Index("ix_pages_status", "status"),
        # the queue panel's per-minute counts over the last hour (storage/queue_stats.py)
        Index("ix_pages_created_at", "created_at"),
        Index("ix_pages_started_at", "started_at"),
        Index("ix_pages_finished_at", "finished_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    tenant_id: Mapped[str] = mapped_column(String(32))
    page_no: Mapped[int] = mapped_column(Integer)  # from 1, as a PDF viewer numbers pages
    status: Mapped[str] = mapped_column(String(16), default=PageStatus.PENDING)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    worker_id: Mapped[str | None] = mapped_column(String(255), default=None)
    image_key: Mapped[str] = mapped_column(String(512))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    tile_grid: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    # What the split stage did to the page (box, dpi, EXIF, turn applied, warnings): render.py, split.py
    render: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    result_key: Mapped[str | None] = mapped_column(String(512), default=None)
    text_preview: Mapped[str | None] = mapped_column(String(500), default=None)
    engine: Mapped[str | None] = mapped_column(String(32), default=None)
    timings: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)  # its latest attempt's claim
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class BatchSource:
    ARCHIVE = "archive"
    SOURCES = "sources"
    S3_PREFIX = "s3_prefix"


class Batch(Base):
    """One bulk submission. Its totals come from its jobs; `entries` is the manifest, in input
    order: {index, name, job_id} or {index, name, error: {code, message}} for a refused entry."""

    __tablename__ = "batches"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_batches_tenant_idempotency"),
        Index("ix_batches_tenant_created", "tenant_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    webhook_url: Mapped[str | None] = mapped_column(String(2000), default=None)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    entries: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sealed_at: Mapped[datetime | None] = mapped_column(default=None)  # every entry is in
    finished_at: Mapped[datetime | None] = mapped_column(default=None)  # and every job is final


class WebhookDelivery(Base):
    """The webhook outbox: written in the transaction that makes its event true, then sent
    (and re-sent with backoff) until the receiver answers 2xx or attempts run out."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_next_try", "next_try_at"),
        Index("ix_webhook_deliveries_subject", "subject_id", "event"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(64))
    subject_id: Mapped[str] = mapped_column(String(32))  # the job or batch the event is about
    url: Mapped[str] = mapped_column(String(2000))
    payload: Mapped[dict[str, Any]] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_try_at: Mapped[datetime | None] = mapped_column(default=None)  # None: nothing left to do
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    failed_at: Mapped[datetime | None] = mapped_column(default=None)  # gave up
    last_status: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
