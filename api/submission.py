"""Accepting a document: size limit, type and readability checks, then row + blob + message.

Order matters for 'nothing accepted is ever lost': the input blob is stored
before the job row is committed, and the row is committed before the split
message is sent; if the broker is down the job stays `queued` and recovery
re-sends it.
"""

from __future__ import annotations

import hashlib
import json
import os

import structlog
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.schemas import JobOptions
from storage import jobs as job_repo
from storage.blobs import BlobKeys, BlobStore
from storage.models import Job, new_id
from tessera.config import Settings
from tessera.errors import Conflict, InvalidOptions
from workers.documents import inspect_document, parse_page_range, plan_renders
from workers.enqueue import Enqueuer

log = structlog.get_logger(__name__)


def parse_options(raw: str | None) -> JobOptions:
    if raw is None or not raw.strip():
        return JobOptions()
    try:
        return JobOptions.model_validate(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise InvalidOptions(f"options is not valid JSON: {exc.msg}") from exc
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5])
        raise InvalidOptions(f"invalid options: {details}") from exc
    except (ValueError, RecursionError) as exc:  # a number of thousands of digits, or deep nesting
        raise InvalidOptions("options is not JSON this service reads (a number too long, or "
                             "nesting too deep)") from exc


def safe_display_name(name: str | None) -> str | None:
    """The client's file name, for display only (never used in a key or path)."""
    if not name:
        return None
    base = os.path.basename(name.replace("\\", "/"))
    cleaned = "".join(ch for ch in base if ch.isprintable())[:255]
    return cleaned or None


def create_job(session: Session, blobs: BlobStore, enqueue: Enqueuer, settings: Settings, *,
               tenant_id: str, data: bytes, filename: str | None, options: JobOptions,
               idempotency_key: str | None) -> tuple[Job, bool]:
    """Validate and accept a document. Returns (job, created); an idempotent replay returns created=False.

    Idempotency-Key: the same key with the same request (file bytes and options) returns the
    first job; the same key with a different request is refused (409 idempotency_conflict).
    """
    input_sha256 = hashlib.sha256(data).hexdigest()
    fingerprint = request_fingerprint(input_sha256, options.model_dump(exclude_none=True))
    if idempotency_key:
        existing = job_repo.find_by_idempotency_key(session, tenant_id, idempotency_key)
        if existing is not None:
            return _replay(existing, fingerprint), False
    info = inspect_document(data, settings.max_pages)
    pages = parse_page_range(options.pages, info.page_count)
    plan_renders(info, pages, options.dpi, settings.default_dpi, settings.max_page_pixels)
    job = Job(id=new_id(), tenant_id=tenant_id, filename=safe_display_name(filename),
              media_type=info.media_type, input_sha256=input_sha256,
              input_size=len(data), options=options.model_dump(exclude_none=True),
              idempotency_key=idempotency_key, request_sha256=fingerprint)
    blobs.put(BlobKeys.input(tenant_id, job.id), data, info.media_type)
    session.add(job)
    try:
        session.commit()
    except IntegrityError:  # a concurrent request with the same idempotency key won the race
        session.rollback()
        blobs.delete_prefix(BlobKeys.job_prefix(tenant_id, job.id))
        winner = job_repo.find_by_idempotency_key(session, tenant_id, idempotency_key or "")
        if winner is None:
            raise
        return _replay(winner, fingerprint), False
    _send_split(enqueue, job.id, options.priority == "high")
    return job, True


def request_fingerprint(input_sha256: str, options: dict) -> str:
    """sha256 over the input's sha256 and the options as canonical JSON (defaults filled in,
    keys sorted, tasks as a set), so equivalent requests share a fingerprint."""
    canonical_options = dict(options)
    if isinstance(canonical_options.get("tasks"), list):
        canonical_options["tasks"] = sorted(canonical_options["tasks"])
    canonical = json.dumps(canonical_options, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(f"{input_sha256}\n{canonical}".encode()).hexdigest()


def _replay(existing: Job, fingerprint: str) -> Job:
    """The first job of an Idempotency-Key, if this request is the same request."""
    stored = existing.request_sha256 or request_fingerprint(existing.input_sha256, existing.options)
    if stored != fingerprint:
        raise Conflict(f"the Idempotency-Key was first used for another request (job {existing.id}); "
                       "use a new key for a different file or options", code="idempotency_conflict")
    return existing


def _send_split(enqueue: Enqueuer, job_id: str, high: bool) -> None:
    try:
        enqueue.split(job_id, high=high)
    except Exception:  # noqa: BLE001 (the job is saved; recovery re-sends it)
        log.exception("submit.enqueue_failed", job_id=job_id)
