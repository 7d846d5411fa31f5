"""Database rows to response bodies."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from api.pagination import as_utc
from api.schemas import ErrorInfo, JobOut, PageOut, PageSummary, ProgressOut
from storage import jobs as job_repo
from storage.models import Job, Page, PageStatus
from workers.outputs.pages import is_positioned

def job_out(session: Session, job: Job, progress: job_repo.Progress | None = None) -> JobOut:
    """`progress` may be passed when it was computed for many jobs at once (listings)."""
    progress = progress or job_repo.progress(session, job)
    base = f"/v1/jobs/{job.id}"
    error = _error(job.error_code, job.error_message)
    return JobOut(
        id=job.id, status=job.status, filename=job.filename, media_type=job.media_type,
        input_sha256=job.input_sha256, options=job.options,
        page_count=job.page_count, progress=ProgressOut(**progress.__dict__), error=error,
        cancel_requested=bool(job.cancel_requested), batch_id=getattr(job, "batch_id", None),
        warnings=list(job.warnings or []),
        created_at=as_utc(job.created_at), started_at=_utc(job.started_at),
        finished_at=_utc(job.finished_at), purged_at=_utc(job.purged_at),
        links={"self": base, "pages": f"{base}/pages", "result": f"{base}/result",
               "events": f"{base}/events"},
    )


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else as_utc(moment)


def _error(code: str | None, message: str | None) -> ErrorInfo | None:
    return ErrorInfo(code=code, message=message or "") if code else None


def page_out(page: Page, result: dict | None) -> PageOut:
    """A page: what the split stage did to it (from its row) until it is done, then its stored
    result, which repeats that and adds the engine's text, lines and warnings."""
    error = _error(page.error_code, page.error_message)
    render = dict(page.render or {})
    body = PageOut(job_id=page.job_id, page=page.page_no, status=page.status, width=page.width,
                   height=page.height, attempt=page.attempt, engine=page.engine, error=error,
                   rotation=render.get("rotation", 0), warnings=render.pop("warnings", []),
                   render=render)
    if result is not None:
        body.text = result.get("text")
        body.charts = result.get("charts") or []
        body.tiles = result.get("tiles")
        body.lines = result.get("lines") or []
        body.positioned = is_positioned(result)
        body.recognition = result.get("recognition") or {}
        body.warnings = result.get("warnings") or []
        body.timings = result.get("timings") or {}
        body.error = None
    return body


def page_summary(page: Page, text: str | None = None) -> PageSummary:
    """A page listing entry; a done page shows no error (one from an earlier attempt is history)."""
    error = None if page.status == PageStatus.DONE else _error(page.error_code, page.error_message)
    return PageSummary(
        job_id=page.job_id, page=page.page_no, status=page.status, width=page.width,
        height=page.height, attempt=page.attempt, engine=page.engine,
        text_preview=page.text_preview, text=text, error=error, finished_at=_utc(page.finished_at),
        links={"self": f"/v1/jobs/{page.job_id}/pages/{page.page_no}"},
    )
