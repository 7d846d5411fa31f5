"""/v1/jobs: submit a document, follow it, read its pages and result."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Header, Query, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from api.deps import BlobsDep, EnqueuerDep, SessionDep, SettingsDep, TenantDep
from api.presenters import job_out, page_out
from api.schemas import ErrorBody, JobOut, PageOut
from api.submission import create_job, parse_options, read_upload
from storage import jobs as job_repo
from storage.blobs import BlobKeys, BlobNotFound
from storage.models import Job, JobStatus, PageStatus
from tessera.errors import Conflict, NotFound

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
ERRORS = {code: {"model": ErrorBody} for code in (401, 404, 409, 413, 415, 422)}


def _job_or_404(session, tenant_id: str, job_id: str) -> Job:  # noqa: ANN001
    job = job_repo.get_job(session, job_id, tenant_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


@router.post("", status_code=202, response_model=JobOut, responses=ERRORS)
async def submit_job(
    session: SessionDep, tenant: TenantDep, blobs: BlobsDep, enqueue: EnqueuerDep, settings: SettingsDep,
    file: Annotated[UploadFile, File(description="PDF, PNG, JPEG or TIFF")],
    options: Annotated[str | None, Form(description='JSON, e.g. {"max_tiles": 12, "pages": "1-3"}')] = None,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> JSONResponse:
    """Queue one document. Replaying an Idempotency-Key returns the first job (200)."""
    parsed = parse_options(options)
    data = await read_upload(file, settings.max_upload_bytes)
    job, created = await run_in_threadpool(
        create_job, session, blobs, enqueue, settings, tenant_id=tenant.id, data=data,
        filename=file.filename, options=parsed, idempotency_key=idempotency_key,
    )
    body = job_out(session, job).model_dump(mode="json")
    return JSONResponse(body, status_code=202 if created else 200)


@router.get("/{job_id}", response_model=JobOut, responses=ERRORS)
def get_job(job_id: str, session: SessionDep, tenant: TenantDep) -> JobOut:
    return job_out(session, _job_or_404(session, tenant.id, job_id))


@router.get("/{job_id}/pages/{page_no}", response_model=PageOut, responses=ERRORS)
def get_page(job_id: str, page_no: int, session: SessionDep, tenant: TenantDep, blobs: BlobsDep) -> PageOut:
    """One page's result; pages are numbered from 1, as a PDF viewer shows them."""
    _job_or_404(session, tenant.id, job_id)
    page = job_repo.get_page(session, job_id, page_no)
    if page is None:
        raise NotFound(f"job {job_id} has no page {page_no}")
    result = None
    if page.status == PageStatus.DONE and page.result_key:
        result = json.loads(blobs.get(page.result_key))
    return page_out(page, result)


@router.get("/{job_id}/result", responses={**ERRORS, 200: {"content": {"application/json": {},
                                                                        "text/markdown": {}}}})
def get_result(job_id: str, session: SessionDep, tenant: TenantDep, blobs: BlobsDep,
               format: Literal["json", "markdown"] = Query("json")) -> Response:  # noqa: A002
    """The whole document, once the job has finished."""
    job = _job_or_404(session, tenant.id, job_id)
    if job.status not in JobStatus.FINAL:
        raise Conflict(f"job {job_id} is {job.status}; the result exists once it has finished",
                       code="job_not_finished")
    fmt, media = ("json", "application/json") if format == "json" else ("md", "text/markdown; charset=utf-8")
    try:
        data = blobs.get(BlobKeys.result(job.tenant_id, job.id, fmt))
    except BlobNotFound as exc:
        raise NotFound(f"job {job_id} ended {job.status} without a result", code="no_result") from exc
    return Response(content=data, media_type=media)
