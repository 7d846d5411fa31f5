"""/v1/batches: many documents in one request, one job per document.

POST takes either a multipart archive (`file`: zip, tar or tar.gz; optional `options` JSON for
every job, `webhook_url`) or JSON: `{"sources": [{"url"} | {"s3_uri"}], "options", "webhook_url"}`
or `{"s3_prefix": "s3://bucket/prefix/", ...}`. Every entry goes through the same checks as
POST /v1/jobs (api.submission.create_job); one that fails them is listed with its error code
and the batch goes on. An `Idempotency-Key` replays a finished submission and resumes one that
was cut off (each entry's job has a key derived from the batch, so none is made twice).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.archives import Entry, open_archive
from api import pagination
from api.bodies import openapi_body, read_json, read_multipart
from api.pagination import as_utc
from api.deps import BlobsDep, EnqueuerDep, SessionDep, SettingsDep, TenantDep
from api.schemas import ErrorBody, ErrorInfo, JobOptions
from api.sources import S3Source, UrlSource, check_url, fetch_all, list_s3_prefix, s3_client
from api.submission import create_job
from storage import batches as batch_repo
from storage.models import Batch, BatchSource, JobStatus
from storage.webhooks import enqueue_batch_finished_webhook
from tessera.config import Settings
from tessera.errors import (
    TRANSIENT_ERRORS,
    Conflict,
    EmptyBatch,
    InvalidInput,
    NotFound,
    TesseraError,
    TooManyEntries,
    UnsupportedMediaType,
)
from workers.enqueue import Enqueuer
from workers.webhooks import send_soon

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/v1/batches", tags=["batches"])
ERRORS = {code: {"model": ErrorBody} for code in (401, 404, 409, 413, 415, 422, 429)}


class BatchSourcesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sources: list[UrlSource | S3Source] | None = Field(None, min_length=1)
    s3_prefix: str | None = Field(None, max_length=2000)
    options: JobOptions = Field(default_factory=JobOptions)
    webhook_url: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _one_kind(self) -> BatchSourcesIn:
        if (self.sources is None) == (self.s3_prefix is None):
            raise ValueError("send either 'sources' or 's3_prefix'")
        return self


class EntryOut(BaseModel):
    index: int | None
    name: str
    job_id: str | None = None
    status: str  # the job's status; `rejected` (no job) or `deleted` (job deleted since)
    error: ErrorInfo | None = None


class BatchOut(BaseModel):
    id: str
    status: str  # receiving | processing | finished
    source: str
    webhook_url: str | None
    options: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None
    totals: dict[str, int]
    entries: list[EntryOut]
    links: dict[str, str]


class BatchSummary(BaseModel):
    id: str
    status: str  # receiving | processing | finished
    source: str
    created_at: datetime
    totals: dict[str, int]
    links: dict[str, str]


class BatchList(BaseModel):
    batches: list[BatchSummary] = Field(description="newest first")
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


OPENAPI_BODY = openapi_body({
    "file": {"type": "string", "format": "binary", "description": "zip, tar or tar.gz"},
    "options": {"type": "string", "description": "job options as JSON, for every job"},
    "webhook_url": {"type": "string"}}, BatchSourcesIn)


SUBMIT_RESPONSES = {
    200: {"model": BatchOut, "description": "an Idempotency-Key replay: the first batch"},
    400: {"model": ErrorBody, "description": "`bad_request`: the multipart body cannot be parsed"},
    **ERRORS,
}


@router.post("", status_code=202, response_model=BatchOut, responses=SUBMIT_RESPONSES,
             openapi_extra=OPENAPI_BODY)
async def submit_batch(
    request: Request, session: SessionDep, tenant: TenantDep, blobs: BlobsDep, enqueue: EnqueuerDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> JSONResponse:
    """Queue one job per document of an archive or a list of sources (202; 200 on a replay)."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        source, webhook_url, options, entries = await _archive_request(request, settings)
    elif content_type.startswith("application/json"):
        source, webhook_url, options, entries = await _sources_request(request, settings)
    else:
        raise UnsupportedMediaType("send multipart/form-data with an archive in 'file', "
                                   "or application/json with 'sources' or 's3_prefix'")
    if webhook_url:
        try:
            check_url(webhook_url)
        except InvalidInput as exc:
            raise InvalidInput(f"webhook_url: {exc.message}") from exc
    batch, created = await run_in_threadpool(
        _submit, session, blobs, enqueue, settings, tenant_id=tenant.id, source=source,
        webhook_url=webhook_url, options=options, idempotency_key=idempotency_key, entries=entries)
    body = (await run_in_threadpool(batch_out, session, batch)).model_dump(mode="json")
    return JSONResponse(body, status_code=202 if created else 200)


@router.get("", response_model=BatchList, summary="List batches, newest first", responses=ERRORS)
def list_batches(
    session: SessionDep, tenant: TenantDep,
    limit: Annotated[int, Query(ge=1, le=100, description="batches per page")] = 20,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> BatchList:
    """The caller's batches with their totals; a batch's entries are at GET /v1/batches/{id}."""
    before = pagination.decode_job_cursor(cursor) if cursor is not None else None
    batches = batch_repo.list_batches(session, tenant.id, before=before, limit=limit + 1)
    more, batches = len(batches) > limit, batches[:limit]
    counts = batch_repo.job_counts(session, [batch.id for batch in batches])
    summaries = [BatchSummary(
        id=batch.id, source=batch.source, created_at=as_utc(batch.created_at),
        status=_status(batch, any(counts[batch.id][s] for s in JobStatus.OPEN)),
        totals=batch_repo.totals_of(counts[batch.id], batch.entries),
        links={"self": f"/v1/batches/{batch.id}"}) for batch in batches]
    last = batches[-1] if more else None
    return BatchList(batches=summaries,
                     next_cursor=pagination.job_cursor(last.created_at, last.id) if last else None)


@router.get("/{batch_id}", response_model=BatchOut, responses=ERRORS)
def get_batch(batch_id: str, session: SessionDep, tenant: TenantDep) -> BatchOut:
    """Totals by status and every entry (with its job, or the error that refused it)."""
    batch = batch_repo.get_batch(session, batch_id, tenant.id)
    if batch is None:
        raise NotFound(f"no batch {batch_id}")
    return batch_out(session, batch)


# ---------------------------------------------------------------- reading the request


async def _archive_request(request: Request, settings: Settings
                           ) -> tuple[str, str | None, JobOptions, Callable[[], Iterator[Entry]]]:
    form, data, _, options = await read_multipart(request, settings.max_upload_bytes)
    webhook_url = form.get("webhook_url")
    hook = webhook_url if isinstance(webhook_url, str) and webhook_url.strip() else None
    return BatchSource.ARCHIVE, hook, options, lambda: open_archive(data, settings)


async def _sources_request(request: Request, settings: Settings
                           ) -> tuple[str, str | None, JobOptions, Callable[[], Iterator[Entry]]]:
    body = await read_json(request, settings.max_json_body_bytes, BatchSourcesIn, "batch request")
    if body.sources is not None:
        if len(body.sources) > settings.archive_max_entries:
            raise TooManyEntries(f"{len(body.sources)} sources; the limit is {settings.archive_max_entries}")
        sources = body.sources
        return BatchSource.SOURCES, body.webhook_url, body.options, lambda: fetch_all(sources, settings)
    prefix = body.s3_prefix or ""

    def from_prefix() -> Iterator[Entry]:
        uris = list_s3_prefix(s3_client(settings), prefix, settings)
        return fetch_all([S3Source(s3_uri=uri) for uri in uris], settings)

    return BatchSource.S3_PREFIX, body.webhook_url, body.options, from_prefix


# ---------------------------------------------------------------- making the jobs


def _submit(session: Session, blobs, enqueue: Enqueuer, settings: Settings, *,  # noqa: ANN001
            tenant_id: str, source: str, webhook_url: str | None, options: JobOptions,
            idempotency_key: str | None, entries: Callable[[], Iterator[Entry]]) -> tuple[Batch, bool]:
    batch = None
    if idempotency_key:
        batch = batch_repo.find_by_idempotency_key(session, tenant_id, idempotency_key)
    if batch is not None and batch.sealed_at is not None:
        return batch, False
    stream = entries()  # the whole-archive checks run here, before anything is stored
    first = next(stream, None)
    if first is None:
        raise EmptyBatch("the batch holds no documents")
    batch = batch or _new_batch(session, tenant_id, source, webhook_url, options, idempotency_key)
    manifest = []
    with batch_repo.new_jobs_join(session, batch.id):
        for index, entry in enumerate(itertools.chain([first], stream)):
            manifest.append(_accept(session, blobs, enqueue, settings, batch, index, entry, options))
    finished = batch_repo.seal(session, batch.id, manifest)
    deliveries = enqueue_batch_finished_webhook(session, batch.id) if finished else []
    session.commit()
    send_soon(deliveries)
    session.refresh(batch)
    log.info("batch.submitted", batch_id=batch.id, entries=len(manifest),
             jobs=sum(1 for entry in manifest if entry.get("job_id")))
    return batch, True


def _new_batch(session: Session, tenant_id: str, source: str, webhook_url: str | None,
               options: JobOptions, idempotency_key: str | None) -> Batch:
    try:  # create_batch flushes: a duplicate key fails there, before the commit
        batch = batch_repo.create_batch(session, tenant_id=tenant_id, source=source,
                                        webhook_url=webhook_url,
                                        options=options.model_dump(exclude_none=True),
                                        idempotency_key=idempotency_key)
        session.commit()
    except IntegrityError:  # a concurrent request with the same key made it first: resume that one
        session.rollback()
        batch = batch_repo.find_by_idempotency_key(session, tenant_id, idempotency_key or "")
        if batch is None:
            raise
    return batch


def _accept(session: Session, blobs, enqueue: Enqueuer, settings: Settings, batch: Batch,  # noqa: ANN001
            index: int, entry: Entry, options: JobOptions) -> dict[str, Any]:
    """One entry: a job, or the reason there is none (the batch goes on either way)."""
    base: dict[str, Any] = {"index": index, "name": entry.name}
    if entry.error is not None:
        return {**base, "error": _error(entry.error)}
    try:
        job, _ = create_job(session, blobs, enqueue, settings, tenant_id=batch.tenant_id, data=entry.data,
                            filename=entry.name, options=options,
                            idempotency_key=batch_repo.entry_idempotency_key(batch.id, index))
    except (InvalidInput, Conflict) as exc:
        session.rollback()
        return {**base, "error": _error(exc)}
    except TRANSIENT_ERRORS:
        raise  # 503; the client retries with its Idempotency-Key and the batch resumes
    except Exception:  # noqa: BLE001 (one odd document must not sink the batch)
        session.rollback()
        log.exception("batch.entry_crashed", batch_id=batch.id, index=index)
        return {**base, "error": {"code": "internal_error", "message": "the document could not be inspected"}}
    return {**base, "job_id": job.id}


def _error(exc: TesseraError) -> dict[str, str]:
    return {"code": exc.code, "message": exc.message[:500]}


# ---------------------------------------------------------------- the response


def batch_out(session: Session, batch: Batch) -> BatchOut:
    jobs = batch_repo.jobs_of(session, batch.id)
    by_id = {job.id: job for job in jobs}
    entries = [_entry_out(entry, by_id) for entry in batch.entries]
    listed = {entry.get("job_id") for entry in batch.entries}
    entries += [EntryOut(index=None, name=job.filename or job.id, job_id=job.id, status=job.status)
                for job in jobs if job.id not in listed]  # still receiving, or cut off
    status = _status(batch, any(job.status not in JobStatus.FINAL for job in jobs))
    finished_at = None
    if status == "finished":
        finished_at = batch.finished_at or max((j.finished_at for j in jobs if j.finished_at),
                                               default=batch.sealed_at)
    return BatchOut(id=batch.id, status=status, source=batch.source, webhook_url=batch.webhook_url,
                    options=batch.options, created_at=as_utc(batch.created_at),
                    finished_at=None if finished_at is None else as_utc(finished_at),
                    totals=batch_repo.totals(jobs, batch.entries), entries=entries,
                    links={"self": f"/v1/batches/{batch.id}"})


def _status(batch: Batch, open_jobs: bool) -> str:
    return "receiving" if batch.sealed_at is None else "processing" if open_jobs else "finished"


def _entry_out(entry: dict[str, Any], jobs: dict) -> EntryOut:
    if entry.get("error"):
        return EntryOut(index=entry["index"], name=entry["name"], status="rejected",
                        error=ErrorInfo(**entry["error"]))
    job = jobs.get(entry.get("job_id"))
    if job is None:
        return EntryOut(index=entry["index"], name=entry["name"], job_id=entry.get("job_id"),
                        status="deleted")
    error = ErrorInfo(code=job.error_code, message=job.error_message or "") if job.error_code else None
    return EntryOut(index=entry["index"], name=entry["name"], job_id=job.id, status=job.status, error=error)

