"""/v1/jobs: submit documents, list and follow them, cancel or delete them."""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy.orm import Session

from api import pagination
from api.bodies import openapi_body, read_json, read_multipart
from api.deps import BlobsDep, EnqueuerDep, SessionDep, SettingsDep, TenantDep
from api.presenters import job_out
from api.schemas import (
    INVALID_CURSOR,
    INVALID_REQUEST,
    JOB_NOT_FOUND,
    UNAUTHORIZED,
    JobList,
    JobOptions,
    JobOut,
    error_responses,
)
from api.sources import JobSourceIn, fetch_source, source_name
from api.submission import create_job
from storage import jobs as job_repo
from storage.blobs import BlobKeys, BlobStore
from storage.models import Job, JobStatus
from tessera.config import Settings
from tessera.errors import (
    TRANSIENT_ERRORS,
    Conflict,
    InvalidInput,
    NotFound,
    TransientError,
    UnsupportedMediaType,
)

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
JOB_STATUSES = (*JobStatus.OPEN, *JobStatus.FINAL)
MAX_IDS = 200
SUBMIT_BODY = openapi_body({
    "file": {"type": "string", "format": "binary",
             "description": "PDF, PNG, JPEG or TIFF; its name may come as filename, "
                            "filename* (RFC 5987) or RFC 2047 encoded words"},
    "options": {"type": "string", "description": 'JobOptions as JSON, e.g. {"max_tiles": 12, '
                '"pages": "1-3"}', "contentMediaType": "application/json",
                "contentSchema": JobOptions.model_json_schema()},
}, JobSourceIn, title="JobUpload")
SUBMIT_ERRORS = error_responses(
    UNAUTHORIZED,
    (400, "`bad_request`: the multipart body cannot be parsed"),
    (409, "`idempotency_conflict`: the Idempotency-Key was used for another file or options"),
    (413, "`payload_too_large`: the file (or the fetched source) is over the upload limit, or "
          "the JSON body over its own"),
    (415, "`unsupported_media_type`: not a PDF, PNG, JPEG or TIFF; or a body that is neither "
          "multipart/form-data nor application/json"),
    (422, "`invalid_options`, `empty_document`, `corrupt_document`, `encrypted_pdf`, "
          "`too_many_pages`, `image_too_large` or `invalid_request`; for a JSON source also "
          "`source_not_allowed`, `source_unavailable` or `source_not_found`"),
)
DELETE_UNAVAILABLE = (503, "`service_unavailable`: the blob store did not answer; the job is "
                           "cancelled but not deleted: try again")


def job_or_404(session: Session, tenant_id: str, job_id: str) -> Job:
    """The caller's job; another tenant's job, or an id that cannot exist, is 404 alike."""
    job = None
    if pagination.is_plausible_id(job_id):
        job = job_repo.get_job(session, job_id, tenant_id)
    if job is None:
        raise NotFound(f"no job {job_id[:64]!r}")
    return job


REPLAYED = {"model": JobOut, "description": "an Idempotency-Key replay: the first job"}


@router.post("", status_code=202, response_model=JobOut, summary="Submit a document",
             responses={200: REPLAYED, **SUBMIT_ERRORS}, openapi_extra=SUBMIT_BODY)
async def submit_job(
    request: Request, session: SessionDep, tenant: TenantDep, blobs: BlobsDep,
    enqueue: EnqueuerDep, settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=255, description=(
        "the same key with the same file and options returns the first job (200); "
        "with another file or options: 409 idempotency_conflict"))] = None,
) -> JSONResponse:
    """Queue one document (202): a multipart upload (`file`, optional `options` as JSON), or JSON
    `{"source": {"url"} | {"s3_uri"}, "options"}`, fetched under the same rules as a batch's
    sources. Replaying an Idempotency-Key returns the first job (200)."""
    data, filename, options = await _read_document(request, settings)
    job, created = await run_in_threadpool(
        create_job, session, blobs, enqueue, settings, tenant_id=tenant.id, data=data,
        filename=filename, options=options, idempotency_key=idempotency_key,
    )
    body = job_out(session, job).model_dump(mode="json")
    return JSONResponse(body, status_code=202 if created else 200)


async def _read_document(request: Request, settings: Settings
                         ) -> tuple[bytes, str | None, JobOptions]:
    """(document bytes, display name, options) from either kind of body."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        _, data, filename, options = await read_multipart(request, settings.max_upload_bytes)
        return data, filename, options
    if content_type.startswith("application/json"):
        body = await read_json(request, settings.max_json_body_bytes, JobSourceIn, "job request")
        data = await run_in_threadpool(fetch_source, body.source, settings)
        return data, source_name(body.source), body.options
    raise UnsupportedMediaType("send multipart/form-data with the document in 'file', or "
                               "application/json with a 'source' ({\"url\"} or {\"s3_uri\"})")


@router.get("", response_model=JobList, summary="List jobs, newest first",
            responses=error_responses(UNAUTHORIZED, INVALID_REQUEST, INVALID_CURSOR))
def list_jobs(
    session: SessionDep, tenant: TenantDep,
    status: Annotated[list[str] | None, Query(description=(
        "only jobs in these statuses: repeat the parameter or separate with commas"))] = None,
    batch_id: Annotated[str | None, Query(max_length=64, description="this batch's jobs")] = None,
    ids: Annotated[list[str] | None, Query(description=(
        f"only these jobs (at most {MAX_IDS}): repeat the parameter or separate with commas; "
        "ids of no job of yours are left out. One call reads the progress of many jobs"))] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="jobs per page")] = 50,
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
) -> JobList:
    """The caller's jobs, newest first, `limit` at a time; follow `next_cursor` for more."""
    statuses = _statuses(status)
    wanted = _ids(ids)
    before = pagination.decode_job_cursor(cursor) if cursor is not None else None
    if batch_id is not None and not pagination.is_plausible_id(batch_id):
        return JobList(jobs=[], next_cursor=None)
    jobs = job_repo.list_jobs(session, tenant.id, statuses=statuses, batch_id=batch_id,
                              ids=wanted, before=before, limit=limit + 1)
    more, jobs = len(jobs) > limit, jobs[:limit]
    progress = job_repo.progress_many(session, jobs)
    next_cursor = pagination.job_cursor(jobs[-1].created_at, jobs[-1].id) if more else None
    return JobList(jobs=[job_out(session, job, progress[job.id]) for job in jobs],
                   next_cursor=next_cursor)


def _statuses(values: list[str] | None) -> list[str] | None:
    names = [name.strip() for value in values or [] for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in JOB_STATUSES]
    if unknown:
        raise InvalidInput(f"status: unknown {unknown[0][:40]!r}; "
                           f"expected one of {', '.join(JOB_STATUSES)}")
    return names or None


def _ids(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    if len(names) > MAX_IDS:
        raise InvalidInput(f"ids: {len(names)} ids; at most {MAX_IDS} per call")
    return [name for name in names if pagination.is_plausible_id(name)]


@router.get("/{job_id}", response_model=JobOut, summary="Get a job: status, progress, timestamps",
            responses=error_responses(UNAUTHORIZED, JOB_NOT_FOUND, INVALID_REQUEST))
def get_job(job_id: str, session: SessionDep, tenant: TenantDep) -> JobOut:
    return job_out(session, job_or_404(session, tenant.id, job_id))


@router.post("/{job_id}/cancel", response_model=JobOut, summary="Cancel a job",
             responses=error_responses(UNAUTHORIZED, JOB_NOT_FOUND, INVALID_REQUEST,
                                       (409, "`job_finished`: the job has already ended")))
def cancel_job(job_id: str, session: SessionDep, tenant: TenantDep) -> JobOut:
    """End a job that has not finished: it is `cancelled` at once (one conditional update) and
    workers stop working on it. Pages already done keep their results."""
    job = job_or_404(session, tenant.id, job_id)
    if job.status not in JobStatus.FINAL and job_repo.request_cancel(session, job.id):
        session.commit()
        session.refresh(job)
        log.info("job.cancelled", job_id=job.id)
        return job_out(session, job)
    session.rollback()
    session.refresh(job)
    raise Conflict(f"job {job.id} has already ended ({job.status})", code="job_finished")


@router.delete("/{job_id}", status_code=204, response_class=Response,
               summary="Delete a job, its pages and its files",
               responses={204: {"description": "deleted"},
                          **error_responses(UNAUTHORIZED, JOB_NOT_FOUND, INVALID_REQUEST,
                                            DELETE_UNAVAILABLE)})
def delete_job(job_id: str, session: SessionDep, tenant: TenantDep, blobs: BlobsDep) -> Response:
    """Stop the job if it runs, then remove its files and its rows. Irreversible."""
    job = job_or_404(session, tenant.id, job_id)
    prefix = BlobKeys.job_prefix(job.tenant_id, job.id)
    job_repo.request_cancel(session, job.id)  # running work sees a final job and stops
    session.commit()
    _delete_blobs(blobs, prefix, strict=True)
    job_repo.delete_job(session, job.id, job.tenant_id)
    session.commit()
    _delete_blobs(blobs, prefix, strict=False)  # whatever in-flight work wrote meanwhile
    log.info("job.deleted", job_id=job.id)
    return Response(status_code=204)


def _delete_blobs(blobs: BlobStore, prefix: str, *, strict: bool) -> None:
    try:
        blobs.delete_prefix(prefix)
    except TRANSIENT_ERRORS as exc:
        if strict:
            raise TransientError("the blob store is not answering; try the delete again") from exc
        log.warning("job.delete_blobs_failed", prefix=prefix, error=repr(exc)[:200])
