"""The split stage: validate the input, render its pages as a viewer shows them, turn each
upright, queue them for inference.

Every stored page carries a record of what was done to it (`Page.render`: the box and
resolution rendered, EXIF or /Rotate applied, the turn orientation detection applied, and
warnings), which its result repeats. Safe to run twice: pages already stored are skipped, and a
job past `splitting` is left alone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import structlog
from sqlalchemy.exc import IntegrityError

from storage import jobs as job_repo
from storage.blobs import BlobKeys
from storage.models import Job, JobStatus, Page, PageStatus, utcnow
from tessera.errors import TRANSIENT_ERRORS, InvalidInput
from workers.documents import DocumentInfo, inspect_document, parse_page_range, plan_renders
from workers.enqueue import Enqueuer
from workers.infer import assemble_if_complete
from workers.orientation import turn_upright
from workers.render import RenderedPage, encode_png, render_pages
from workers.runtime import Runtime

log = structlog.get_logger(__name__)


class JobCancelled(Exception):
    """Raised between pages when the client cancelled the job: stop rendering."""


def split_job(rt: Runtime, enqueue: Enqueuer, job_id: str) -> None:
    job = _start(rt, job_id)
    if job is None:
        return
    sender = _PageSender(enqueue, rt.settings.engine_batch_size, job.options.get("priority") == "high")
    try:
        page_numbers, info = _render_and_store(rt, job, sender)
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
                                page_count=len(page_numbers), warnings=info.warnings or None)
        waiting = job_repo.waiting_page_ids(session, job_id)
    # The rest: the last, short batch, and pages an earlier run of this task stored.
    sender.send_all([page_id for page_id in waiting if page_id not in sender.sent])
    # Every page may be done already (they were sent while the split went on); an infer task
    # that finished the last of them saw the job still splitting and left it.
    assemble_if_complete(rt, enqueue, job_id)
    log.info("split.done", job_id=job_id, pages=len(page_numbers))


class _PageSender:
    """Sends the pages to inference a batch (`engine_batch_size`) at a time as they are stored,
    so the engine starts on a document's first pages while the split renders the rest (in its
    own worker process: tessera/supervisor.py) instead of after the last. The pages of a job
    still splitting are not taken as lost by the sweeper, nor used to top up other batches
    (workers/recovery.py, storage/jobs.py `fresh_queued_page_ids`)."""

    def __init__(self, enqueue: Enqueuer, batch: int, high: bool):
        self.enqueue, self.batch, self.high = enqueue, max(1, batch), high
        self.sent: set[int] = set()
        self._pending: list[int] = []

    def stored(self, page_id: int) -> None:
        """The document's first page goes at once (the engine may be idle, waiting for it), the
        rest a batch at a time."""
        self._pending.append(page_id)
        if len(self._pending) >= self.batch or not self.sent:
            self.send_all(self._pending)
            self._pending = []

    def send_all(self, page_ids: list[int]) -> None:
        """Send `page_ids` a batch at a time. A send the broker refuses is logged and left: its
        pages stay queued in the database, the end of the split sends them again, and past it
        the sweeper does (stale queued pages of a processing job). A broker outage must not
        fail, or restart, the split of a document whose pages are safely stored."""
        for start in range(0, len(page_ids), self.batch):
            chunk = page_ids[start:start + self.batch]
            try:
                self.enqueue.infer(chunk, high=self.high)
            except Exception as exc:  # noqa: BLE001 (kombu's OperationalError, redis errors, ...)
                log.warning("split.send_failed", pages=len(chunk), error=repr(exc)[:200])
                continue
            self.sent.update(chunk)


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


def _render_and_store(rt: Runtime, job: Job, sender: _PageSender) -> tuple[list[int], DocumentInfo]:
    settings = rt.settings
    data = rt.blobs.get(BlobKeys.input(job.tenant_id, job.id))
    info = inspect_document(data, settings.max_pages)
    page_numbers = parse_page_range(job.options.get("pages"), info.page_count)
    plans = plan_renders(info, page_numbers, job.options.get("dpi"), settings.default_dpi,
                         settings.max_page_pixels)
    with rt.sessions() as session:
        stored = {page.page_no for page in job_repo.pages_of(session, job.id)}
    todo = [n for n in page_numbers if n not in stored]
    if todo:
        _store_pages(rt, job, sender, (_upright(rt, page) for page in
                                       render_pages(info, data, todo, plans, settings.max_page_pixels)))
    return page_numbers, info


def _store_pages(rt: Runtime, job: Job, sender: _PageSender, pages: Iterator[RenderedPage]) -> None:
    """Store each page: its image (PNG encoding, blob write) on writer threads while the next
    pages are rendered and turned upright, so the blob store's round trips (tens of milliseconds
    each to a real bucket) overlap the rendering instead of adding to it; then, in page order on
    this thread, its row, and its send. At most `rt.writes_in_flight` images are being written
    at once (held in memory). The first error (a blob-store outage, JobCancelled) stops the
    split when its page's turn comes."""
    ahead = rt.writes_in_flight
    with ThreadPoolExecutor(max_workers=ahead, thread_name_prefix="page-image") as writers:
        writes: deque[tuple[RenderedPage, Future[str]]] = deque()
        for page in pages:
            writes.append((page, writers.submit(_store_image, rt, job, page)))
            while writes and (len(writes) >= ahead or writes[0][1].done()):
                _record_and_send(rt, job, sender, *writes.popleft())
        while writes:
            _record_and_send(rt, job, sender, *writes.popleft())


def _record_and_send(rt: Runtime, job: Job, sender: _PageSender, page: RenderedPage,
                     image: Future[str]) -> None:
    page_id = _store_row(rt, job, page, image.result())
    if page_id is not None:  # None: a concurrent copy of this task stored the page and sends it
        sender.stored(page_id)


def _upright(rt: Runtime, page: RenderedPage) -> RenderedPage:
    """The page turned upright when the detector is sure which way up it is (workers/orientation.py);
    as it is, with a warning, when it is not."""
    if not rt.settings.detect_orientation:
        return page
    verdict = rt.orientation.detect(page.image)
    page.render.update(rotation=verdict.rotate, orientation=verdict.to_json())
    if verdict.rotate:
        page.image = turn_upright(page.image, verdict.rotate)
    elif not verdict.decided and not verdict.blank:
        page.warnings.append(f"orientation undecided (confidence {verdict.confidence:.2f}): "
                             "the page was read as it is")
    return page


def _store_image(rt: Runtime, job: Job, page: RenderedPage) -> str:
    """Write the page's image; its key."""
    key = BlobKeys.page_image(job.tenant_id, job.id, page.page_no)
    rt.blobs.put(key, encode_png(page.image), "image/png")
    return key


def _store_row(rt: Runtime, job: Job, page: RenderedPage, key: str) -> int | None:
    """Store the page's row (its image is stored under `key`); its id (None: a concurrent copy
    of this task stored it). Raises JobCancelled when the job no longer wants its pages."""
    render = {**page.render, "warnings": page.warnings}
    row = Page(job_id=job.id, tenant_id=job.tenant_id, page_no=page.page_no, status=PageStatus.QUEUED,
               image_key=key, render=render, width=page.image.width, height=page.image.height)
    try:
        with rt.sessions.begin() as session:  # one transaction: the row, the heartbeat, the cancel check
            session.add(row)
            session.flush()
            page_id: int | None = row.id
            wanted = job_repo.touch_job(session, job.id)
    except IntegrityError:
        page_id = None  # a concurrent copy of this task stored the same page: same key, same bytes
        with rt.sessions() as session:
            wanted = not job_repo.cancel_requested(session, job.id)
    if not wanted:
        raise JobCancelled()
    return page_id
