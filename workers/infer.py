"""The infer stage: run the engine on a batch of pages and store one result per page.

- Each claim bumps the page's attempt number and every final write is fenced
  by it, so a duplicate delivery or a stale worker cannot write a second result.
- A heartbeat renews the claimed pages' leases while the engine runs; a worker
  that dies stops renewing and the sweeper sends its pages again.
- A page that has failed before runs alone, so a page that kills its worker
  takes no other page down with it (and goes `dead` after its last attempt).
- A batch is topped up with never-tried pages of other documents, so many
  small documents still fill the engine's batch.
"""

from __future__ import annotations

import dataclasses
import io
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TypeVar

import structlog
from PIL import Image

from storage import jobs as job_repo
from storage.blobs import BlobKeys, read_ahead
from storage.models import JobStatus, Page, PageStatus, utcnow
from tessera.errors import TRANSIENT_ERRORS
from workers.engines.base import PageInput, PageResult, results_as_ready
from workers.enqueue import Enqueuer
from workers.leases import Heartbeat
from workers.runtime import Runtime

log = structlog.get_logger(__name__)
PREVIEW_CHARS = 280
WRITE_RETRY_S = 120.0
T = TypeVar("T")


def infer_pages(rt: Runtime, enqueue: Enqueuer, page_ids: list[int]) -> None:
    pages, options = _claim(rt, enqueue, page_ids)
    live = _drop_cancelled(rt, pages, options)
    if live:
        started = time.monotonic()
        # Each page is stored as soon as the engine hands it over, by writer threads, so the
        # engine's device does not wait on S3 and the database between pages (nor one page's
        # write on another's round trip). The heartbeat covers the pages until their writes are
        # done; a failed write fails the task.
        with Heartbeat(rt, [(page.id, page.attempt) for page in live]), ThreadPoolExecutor(
            max_workers=rt.writes_in_flight, thread_name_prefix="page-writer"
        ) as writer:
            writes = [
                writer.submit(_settle, rt, enqueue, page, outcome, len(live))
                for page, outcome in _run_engine(rt, live, options)
            ]
            for write in writes:
                write.result()
        seconds = time.monotonic() - started
        log.info("infer.batch_done", engine=rt.engine.name, pages=len(live),
                 seconds=round(seconds, 3), pages_per_s=round(len(live) / seconds, 3),
                 **_engine_totals(rt.engine))
    for job_id in dict.fromkeys(page.job_id for page in pages):
        _durably(lambda j=job_id: assemble_if_complete(rt, enqueue, j))


def _engine_totals(engine: object) -> dict[str, float]:
    """An engine's running totals (InternVL: requests, tokens, vision and decode seconds), for
    the batch log line; empty for engines that keep none."""
    stats = getattr(engine, "stats", None)
    if not dataclasses.is_dataclass(stats):
        return {}
    return {f"total_{name}": value for name, value in dataclasses.asdict(stats).items()}


def _settle(
    rt: Runtime, enqueue: Enqueuer, page: Page, outcome: PageResult | Exception, batch_pages: int
) -> None:
    if isinstance(outcome, PageResult):
        outcome.timings["batch_pages"] = float(batch_pages)
        _durably(lambda: _store_result(rt, page, outcome))
    else:
        _durably(lambda: _record_failure(rt, enqueue, page, outcome))


def assemble_if_complete(rt: Runtime, enqueue: Enqueuer, job_id: str) -> None:
    with rt.sessions.begin() as session:
        complete = job_repo.mark_assembling_if_complete(session, job_id)
    if complete:
        enqueue.assemble(job_id)


def _claim(rt: Runtime, enqueue: Enqueuer, page_ids: list[int]) -> tuple[list[Page], dict[str, dict | None]]:
    """Claim this task's pages (topped up, or one retried page alone); returns them with their
    jobs' options by job id (None: the job no longer wants work). Pages this task will not run
    are sent again in their own messages."""
    lease = utcnow() + timedelta(seconds=rt.settings.lease_s)
    with rt.sessions.begin() as session:
        waiting = job_repo.claimable(session, page_ids)
        fresh = [page_id for page_id, attempts in waiting if attempts == 0]
        retried = [page_id for page_id, attempts in waiting if attempts > 0]
        if retried:
            targets, later = retried[:1], [[page_id] for page_id in retried[1:]] + ([fresh] if fresh else [])
        else:
            room = rt.settings.engine_batch_size - len(fresh)
            extra = job_repo.fresh_queued_page_ids(session, room, fresh) if room > 0 and fresh else []
            targets, later = fresh + extra, []
        pages = job_repo.claim_pages(session, targets, rt.worker_id, lease)
        options = {job_id: _options(session, job_id) for job_id in {page.job_id for page in pages}}
    for ids in later:
        enqueue.infer(ids)
    return pages, options


def _options(session, job_id: str) -> dict | None:
    """The job's options; None when it no longer wants work (gone, cancelled or ended). A job
    still splitting wants its stored pages done like any other."""
    job = job_repo.get_job(session, job_id)
    if job is None or job.cancel_requested or job.status in JobStatus.FINAL:
        return None
    return dict(job.options)


def _drop_cancelled(rt: Runtime, pages: list[Page], options: dict[str, dict | None]) -> list[Page]:
    """Pages of a cancelled (or deleted, or already ended) job end here: no engine work for them."""
    live = []
    with rt.sessions.begin() as session:
        for page in pages:
            if options[page.job_id] is None:
                job_repo.finish_page(session, page, PageStatus.FAILED, error_code="cancelled",
                                     error_message="the job was cancelled")
            else:
                live.append(page)
    return live


def _run_engine(
    rt: Runtime, pages: list[Page], options: dict[str, dict]
) -> Iterator[tuple[Page, PageResult | Exception]]:
    """Each page's outcome as the engine finishes it. If the batch fails, the pages it had
    not finished run alone, so one bad page fails alone."""
    # Read through a short blob-store outage while the heartbeat keeps the claim: giving up here
    # would leave the pages to their leases and spend one of their attempts on the outage.
    images = read_ahead(lambda key: _durably(lambda: rt.blobs.get(key)), [page.image_key for page in pages])
    inputs = [_page_input(page, png, options[page.job_id]) for page, png in zip(pages, images)]
    finished: set[int] = set()
    try:
        for index, result in _engine_results(rt, inputs):
            finished.add(index)
            yield pages[index], result
        return
    except _EngineFault as fault:
        if len(pages) == 1:
            log.warning("infer.page_failed", page_id=pages[0].id, error=repr(fault.error))
            yield pages[0], fault.error
            return
    for index in (i for i in range(len(pages)) if i not in finished):
        try:
            for _, result in _engine_results(rt, [inputs[index]]):
                yield pages[index], result
        except _EngineFault as fault:
            yield pages[index], fault.error


class _EngineFault(Exception):
    """The engine raised; carries its error (kept apart from errors of storing results)."""

    def __init__(self, error: Exception):
        super().__init__(repr(error))
        self.error = error


def _engine_results(rt: Runtime, inputs: list[PageInput]) -> Iterator[tuple[int, PageResult]]:
    results = results_as_ready(rt.engine, inputs)
    while True:
        try:
            item = next(results)
        except StopIteration:
            return
        except Exception as exc:  # the engine may fail in any way: isolate the page
            raise _EngineFault(exc) from exc
        yield item


def _page_input(page: Page, png: bytes, options: dict) -> PageInput:
    image = Image.open(io.BytesIO(png))
    image.load()
    return PageInput(image=image, tasks=tuple(options.get("tasks") or ("ocr",)),
                     max_tiles=int(options.get("max_tiles") or 12), ref=f"{page.job_id}/{page.page_no}")


def _durably(operation: Callable[[], T]) -> T:
    """Retry a write (or a read of the pages' inputs) through a short database or blob-store
    outage: the engine's work, and the page's attempts, are too expensive to throw away for a
    blip. Gives up after WRITE_RETRY_S."""
    deadline, delay = time.monotonic() + WRITE_RETRY_S, 0.5
    while True:
        try:
            return operation()
        except TRANSIENT_ERRORS as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("infer.storage_retry", error=repr(exc)[:200], delay=delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def _store_result(rt: Runtime, page: Page, result: PageResult) -> None:
    """Store this attempt's result under a key of its own, then point the page at it if this
    attempt still owns the page. A stale attempt (lease lost, redelivered task) writes beside
    the winner's result, never over it, and removes what it wrote."""
    key = BlobKeys.page_result(page.tenant_id, page.job_id, page.page_no, page.attempt)
    body = page_result_body(page, result)
    rt.blobs.put(key, json.dumps(body, ensure_ascii=False).encode("utf-8"), "application/json")
    with rt.sessions.begin() as session:
        landed = job_repo.finish_page(session, page, PageStatus.DONE, result_key=key, engine=result.engine,
                                      text_preview=result.text[:PREVIEW_CHARS], timings=result.timings,
                                      tile_grid=result.tiles, error_code=None, error_message=None)
        # A retry of this write after a commit whose answer was lost finds its own key there.
        lost = not landed and job_repo.page_result_key(session, page.id) != key
        gone = lost and job_repo.get_job(session, page.job_id) is None
    if gone:  # the job was deleted while its page ran: leave no orphan behind
        rt.blobs.delete_prefix(BlobKeys.job_prefix(page.tenant_id, page.job_id))
    elif lost:
        log.info("infer.stale_attempt", page_id=page.id, attempt=page.attempt)
        rt.blobs.delete(key)


def page_result_body(page: Page, result: PageResult) -> dict:
    """A page's stored result: what the engine said, what the split stage did to the page
    (`render`, `rotation`), and every warning from both, so nothing done to it is silent."""
    render = dict(page.render or {})
    warnings = list(render.pop("warnings", [])) + result.warnings
    return {"page": page.page_no, "width": page.width, "height": page.height,
            "rotation": render.get("rotation", 0), "render": render,
            **result.to_json(), "warnings": warnings}


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
