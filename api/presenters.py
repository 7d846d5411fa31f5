"""Database rows to response bodies."""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.schemas import ErrorInfo, JobOut, PageOut, ProgressOut
from storage import jobs as job_repo
from storage.models import Job, Page


def job_out(session: Session, job: Job) -> JobOut:
    progress = job_repo.progress(session, job)
    base = f"/v1/jobs/{job.id}"
    error = ErrorInfo(code=job.error_code, message=job.error_message or "") if job.error_code else None
    return JobOut(
        id=job.id, status=job.status, filename=job.filename, media_type=job.media_type,
        input_sha256=job.input_sha256, options=job.options, page_count=job.page_count,
        progress=ProgressOut(**progress.__dict__), error=error, created_at=job.created_at,
        started_at=job.started_at, finished_at=job.finished_at,
        links={"self": base, "pages": f"{base}/pages", "result": f"{base}/result"},
    )


def page_out(page: Page, result: dict | None) -> PageOut:
    error = ErrorInfo(code=page.error_code, message=page.error_message or "") if page.error_code else None
    body = PageOut(job_id=page.job_id, page=page.page_no, status=page.status, width=page.width,
                   height=page.height, attempt=page.attempt, engine=page.engine, error=error)
    if result is not None:
        body.text = result.get("text")
        body.charts = result.get("charts") or []
        body.tiles = result.get("tiles")
        body.warnings = result.get("warnings") or []
        body.timings = result.get("timings") or {}
        body.error = None
    return body
