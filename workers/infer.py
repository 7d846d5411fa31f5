"""The infer stage: run the engine on a batch of pages and store one result per page.

Each claim bumps the page's attempt number and every final write is fenced by
it, so a duplicate delivery or a stale worker cannot write a second result.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta

import structlog
from PIL import Image

from storage import jobs as job_repo
from storage.blobs import BlobKeys
from storage.models import JobStatus, Page, PageStatus, utcnow
from workers.engines.base import PageInput, PageResult
from workers.enqueue import Enqueuer
from workers.runtime import Runtime

log = structlog.get_logger(__name__)
PREVIEW_CHARS = 280


def infer_pages(rt: Runtime, enqueue: Enqueuer, page_ids: list[int]) -> None:
    pages, options = _claim(rt, page_ids)
    if not pages:
        return
    results = _run_engine(rt, pages, options)
    for page, outcome in zip(pages, results):
        if isinstance(outcome, PageResult):
            _store_result(rt, page, outcome)
        else:
            _record_failure(rt, enqueue, page, outcome)
    for job_id in dict.fromkeys(page.job_id for page in pages):
        with rt.sessions.begin() as session:
            complete = job_repo.mark_assembling_if_complete(session, job_id)
        if complete:
            enqueue.assemble(job_id)


def _claim(rt: Runtime, page_ids: list[int]) -> tuple[list[Page], dict[str, dict]]:
    """Claim the pages; returns them with their jobs' options (by job id)."""
    lease = utcnow() + timedelta(seconds=rt.settings.task_time_limit_s)
    with rt.sessions.begin() as session:
        pages = job_repo.claim_pages(session, page_ids, rt.worker_id, lease)
        options = {}
        for job_id in {page.job_id for page in pages}:
            job = job_repo.get_job(session, job_id)
            options[job_id] = dict(job.options) if job else {}
    return pages, options


def _run_engine(rt: Runtime, pages: list[Page], options: dict[str, dict]) -> list[PageResult | Exception]:
    """Run the batch; if it fails as a whole, run each page alone so one bad page fails alone."""
    inputs = [_page_input(rt, page, options[page.job_id]) for page in pages]
    try:
        return list(rt.engine.process(inputs))
    except Exception as exc:  # noqa: BLE001 (the engine may fail in any way; isolate the page)
        if len(pages) == 1:
            log.warning("infer.page_failed", page_id=pages[0].id, error=repr(exc))
            return [exc]
    outcomes: list[PageResult | Exception] = []
    for single in inputs:
        try:
            outcomes.extend(rt.engine.process([single]))
        except Exception as exc:  # noqa: BLE001
            outcomes.append(exc)
    return outcomes


def _page_input(rt: Runtime, page: Page, options: dict) -> PageInput:
    image = Image.open(io.BytesIO(rt.blobs.get(page.image_key)))
    image.load()
    return PageInput(image=image, tasks=tuple(options.get("tasks") or ("ocr",)),
                     max_tiles=int(options.get("max_tiles") or 12), ref=f"{page.job_id}/{page.page_no}")


def _store_result(rt: Runtime, page: Page, result: PageResult) -> None:
    key = BlobKeys.page_result(page.tenant_id, page.job_id, page.page_no)
    body = {"page": page.page_no, "width": page.width, "height": page.height, **result.to_json()}
    rt.blobs.put(key, json.dumps(body, ensure_ascii=False).encode("utf-8"), "application/json")
    with rt.sessions.begin() as session:
        job_repo.finish_page(session, page, PageStatus.DONE, result_key=key, engine=result.engine,
                             text_preview=result.text[:PREVIEW_CHARS], timings=result.timings,
                             tile_grid=result.tiles, error_code=None, error_message=None)


def _record_failure(rt: Runtime, enqueue: Enqueuer, page: Page, error: Exception) -> None:
    message = f"{type(error).__name__}: {error}"[:2000]
    with rt.sessions.begin() as session:
        if page.attempt < rt.settings.max_page_attempts:
            retry = job_repo.requeue_page(session, page, "engine_error", message)
        else:
            retry = False
            job_repo.finish_page(session, page, PageStatus.FAILED, error_code="engine_error",
                                 error_message=message)
    if retry:
        enqueue.infer([page.id])
