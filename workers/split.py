"""The split stage: validate the input, render its pages, queue them for inference.

Safe to run twice: pages already stored are skipped, and a job past
`splitting` is left alone.
"""

from __future__ import annotations

import structlog
from sqlalchemy.exc import IntegrityError

from storage import jobs as job_repo
from storage.blobs import BlobKeys
from storage.models import Job, JobStatus, Page, PageStatus, utcnow
from tessera.errors import TRANSIENT_ERRORS, InvalidInput
from workers.documents import check_page_pixels, inspect_document, parse_page_range
from workers.enqueue import Enqueuer
from workers.render import encode_png, render_pages
from workers.runtime import Runtime

log = structlog.get_logger(__name__)


class JobCancelled(Exception):
    """Raised between pages when the client cancelled the job: stop rendering."""


def split_job(rt: Runtime, enqueue: Enqueuer, job_id: str) -> None:
    job = _start(rt, job_id)
    if job is None:
        return
    try:
        page_numbers = _render_and_store(rt, job)
    except InvalidInput as exc:
        _fail(rt, job_id, exc.code, exc.message)
        return
    except JobCancelled:
        with rt.sessions.begin() as session:
            job_repo.transition_job(session, job_id, (JobStatus.QUEUED, JobStatus.SPLITTING),
                                    JobStatus.CANCELLED)
            gone = job_repo.get_job(session, job_id) is None
        if gone:  # deleted while rendering: remove the pages this task stored after the delete
            rt.blobs.delete_prefix(BlobKeys.job_prefix(job.tenant_id, job_id))
        log.info("split.cancelled", job_id=job_id)
        return
    except TRANSIENT_ERRORS:
        raise  # the task retries with backoff
    except Exception as exc:  # noqa: BLE001 (a job must end in a final state, whatever broke)
        log.exception("split.crashed", job_id=job_id)
        _fail(rt, job_id, "internal_error", f"the document could not be split: {type(exc).__name__}")
        return
    with rt.sessions.begin() as session:
        job_repo.transition_job(session, job_id, (JobStatus.SPLITTING,), JobStatus.PROCESSING,
                                page_count=len(page_numbers))
        waiting = job_repo.waiting_page_ids(session, job_id)
    batch, high = rt.settings.engine_batch_size, job.options.get("priority") == "high"
    for start in range(0, len(waiting), batch):
        enqueue.infer(waiting[start:start + batch], high=high)
    log.info("split.done", job_id=job_id, pages=len(page_numbers))


def _fail(rt: Runtime, job_id: str, code: str, message: str) -> None:
    with rt.sessions.begin() as session:
        job_repo.fail_job(session, job_id, code, message)
    log.info("split.rejected", job_id=job_id, code=code)


def _start(rt: Runtime, job_id: str) -> Job | None:
    """Move the job to `splitting`; None when there is nothing (more) to do."""
    with rt.sessions.begin() as session:
        job = job_repo.get_job(session, job_id)
        if job is None or job.status not in (JobStatus.QUEUED, JobStatus.SPLITTING):
            return None
        if job.cancel_requested:
            job_repo.transition_job(session, job_id, (JobStatus.QUEUED, JobStatus.SPLITTING),
                                    JobStatus.CANCELLED)
            return None
        job_repo.transition_job(session, job_id, (JobStatus.QUEUED, JobStatus.SPLITTING),
                                JobStatus.SPLITTING, started_at=job.started_at or utcnow())
        return job


def _render_and_store(rt: Runtime, job: Job) -> list[int]:
    settings = rt.settings
    data = rt.blobs.get(BlobKeys.input(job.tenant_id, job.id))
    info = inspect_document(data, settings.max_pages)
    page_numbers = parse_page_range(job.options.get("pages"), info.page_count)
    dpi = int(job.options.get("dpi") or settings.default_dpi)
    check_page_pixels(info, page_numbers, dpi, settings.max_page_pixels)
    with rt.sessions() as session:
        stored = {page.page_no for page in job_repo.pages_of(session, job.id)}
    todo = [n for n in page_numbers if n not in stored]
    if todo:
        for page_no, image in render_pages(data, info.media_type, todo, dpi, settings.max_page_pixels):
            _store_page(rt, job, page_no, image)
    return page_numbers


def _store_page(rt: Runtime, job: Job, page_no: int, image) -> None:  # noqa: ANN001 (PIL image)
    key = BlobKeys.page_image(job.tenant_id, job.id, page_no)
    rt.blobs.put(key, encode_png(image), "image/png")
    try:
        with rt.sessions.begin() as session:
            session.add(Page(job_id=job.id, tenant_id=job.tenant_id, page_no=page_no,
                             status=PageStatus.QUEUED, image_key=key,
                             width=image.width, height=image.height))
            job_repo.touch_job(session, job.id)  # the split's heartbeat, read by the sweeper
    except IntegrityError:
        pass  # a concurrent copy of this task stored the same page: same key, same bytes
    with rt.sessions() as session:
        if job_repo.cancel_requested(session, job.id):
            raise JobCancelled()
