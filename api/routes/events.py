"""GET /v1/jobs/{id}/events: a job's progress as Server-Sent Events.

The server polls the database every POLL_S (no extra infrastructure) and sends:

- `event: page`, `id: page:<n>`: once per page that reached a final state (done, failed,
  dead); data is a PageSummary. Pages come in the order they finished.
- `event: status`, `id: status:<status>`: once per job status the poll observes (a change
  faster than POLL_S may be folded into the next one); data is the JobOut. A final status is
  the last event, sent after the events of every page final by then, and ends the stream.
- `event: error` (no id) if the job is deleted while followed; the stream ends.
- a comment line (`: keep-alive`) after KEEPALIVE_S without an event.

A stream still open after MAX_STREAM_S ends without a final event: reconnect (an EventSource
does so by itself) with Last-Event-ID.

Resumption (`Last-Event-ID`): after `page:<n>`, pages that finished well before page n are
not sent again (those within RESUME_GRACE of it may be: key pages by number), and the current
status is sent again. After `status:<s>`, every final page is sent again and the status only
if it changed; after the final status the answer is 204, which stops an EventSource.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated

import structlog
from fastapi import APIRouter, Header
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session

from api.deps import RuntimeDep, SessionDep, TenantDep
from api.pagination import MAX_PAGE_NO, as_utc
from api.presenters import job_out, page_summary
from api.routes.jobs import job_or_404
from api.schemas import (
    INVALID_REQUEST,
    JOB_NOT_FOUND,
    UNAUTHORIZED,
    JobOut,
    PageSummary,
    error_responses,
)
from storage import jobs as job_repo
from storage.models import JobStatus, Page
from tessera.errors import TRANSIENT_ERRORS
from workers.runtime import Runtime

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/v1/jobs", tags=["events"])
POLL_S = 0.5
KEEPALIVE_S = 15.0
MAX_STREAM_S = 3600.0  # then the client reconnects with Last-Event-ID
RESUME_GRACE = timedelta(seconds=2)
RETRY_MS = 3000
FETCH_CHUNK = 500


def _event_schema(kind: str, id_pattern: str | None, data_schema: str) -> dict:
    """One event of the stream, as SSE parsers see it (`event`, `id`, `data`); Open API before
    3.2 has the `schema` of an event stream describe each event, with its JSON in `data`."""
    properties = {
        "event": {"const": kind},
        "data": {"type": "string", "contentMediaType": "application/json",
                 "contentSchema": {"$ref": f"#/components/schemas/{data_schema}"}},
    }
    if id_pattern is not None:
        properties["id"] = {"type": "string", "pattern": id_pattern}
    return {"type": "object", "required": ["event", "data"], "properties": properties}


STREAM_OK = {
    "description": "`page` events (data: PageSummary) and `status` events (data: JobOut), "
                   "ending after the final status event; `error` (data: ErrorBody) if the job "
                   "is deleted meanwhile. The schema describes one event.",
    "content": {"text/event-stream": {"schema": {"oneOf": [
        _event_schema("page", r"^page:[0-9]+$", "PageSummary"),
        _event_schema("status", r"^status:[a-z_]+$", "JobOut"),
        _event_schema("error", None, "ErrorBody"),
    ]}}},
}
RESUME_DONE = {"description": "Last-Event-ID names the job's final status: nothing more will come"}


@dataclass
class Resume:
    status: str | None = None
    page: int | None = None


@dataclass
class Snapshot:
    status: str
    job: JobOut | None = None  # set when the status differs from the last one sent
    pages: list[PageSummary] = field(default_factory=list)


@router.get("/{job_id}/events", response_class=StreamingResponse,
            summary="Follow a job as Server-Sent Events",
            responses={200: STREAM_OK, 204: RESUME_DONE,
                       **error_responses(UNAUTHORIZED, JOB_NOT_FOUND, INVALID_REQUEST)})
def job_events(
    job_id: str, session: SessionDep, tenant: TenantDep, runtime: RuntimeDep,
    last_event_id: Annotated[str | None, Header(description="resume after this event id")] = None,
) -> Response:
    """One `page` event per page finished and one `status` event per status change; the stream
    ends after the final status. Send `Last-Event-ID` to resume."""
    job = job_or_404(session, tenant.id, job_id)
    resume = parse_last_event_id(last_event_id)
    if resume.status is not None and resume.status == job.status and job.status in JobStatus.FINAL:
        return Response(status_code=204)
    sent_pages = _pages_seen(session, job.id, resume.page) if resume.page is not None else set()
    session.close()  # give the connection back: the stream polls with short sessions of its own
    return StreamingResponse(_stream(runtime, job.id, resume.status, sent_pages),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def parse_last_event_id(value: str | None) -> Resume:
    kind, _, rest = (value or "").strip()[:100].partition(":")
    if kind == "status" and rest in (*JobStatus.OPEN, *JobStatus.FINAL):
        return Resume(status=rest)
    if kind == "page" and rest.isascii() and rest.isdigit() and 1 <= int(rest) <= MAX_PAGE_NO:
        return Resume(page=int(rest))
    return Resume()


def _pages_seen(session: Session, job_id: str, page_no: int) -> set[int]:
    """Pages a client that saw `page:<page_no>` has surely seen: that page and the pages that
    finished more than RESUME_GRACE before it."""
    named = job_repo.get_page(session, job_id, page_no)
    if named is None or named.finished_at is None:
        return set()
    mark = as_utc(named.finished_at) - RESUME_GRACE
    return {page_no, *job_repo.final_pages_finished_before(session, job_id, mark)}


async def _stream(runtime: Runtime, job_id: str, sent_status: str | None,
                  sent_pages: set[int]) -> AsyncIterator[str]:
    yield f"retry: {RETRY_MS}\n\n"
    started = last_write = time.monotonic()
    while time.monotonic() - started < MAX_STREAM_S:
        try:
            snapshot = await run_in_threadpool(_poll, runtime, job_id, sent_status,
                                               frozenset(sent_pages))
        except TRANSIENT_ERRORS as exc:  # a database blip: keep the client, try again
            log.warning("events.poll_failed", job_id=job_id, error=repr(exc)[:200])
            snapshot = Snapshot(status=sent_status or "")
        if snapshot is None:
            gone = {"code": "not_found", "message": f"job {job_id} was deleted"}
            yield _event("error", None, {"error": gone})
            return
        for page in snapshot.pages:
            sent_pages.add(page.page)
            yield _event("page", f"page:{page.page}", page.model_dump(mode="json"))
        if snapshot.job is not None:
            sent_status = snapshot.status
            yield _event("status", f"status:{sent_status}", snapshot.job.model_dump(mode="json"))
        if sent_status in JobStatus.FINAL:
            return
        now = time.monotonic()
        if snapshot.pages or snapshot.job is not None:
            last_write = now
        elif now - last_write >= KEEPALIVE_S:
            yield ": keep-alive\n\n"
            last_write = now
        await asyncio.sleep(POLL_S)


def _poll(runtime: Runtime, job_id: str, sent_status: str | None,
          sent_pages: frozenset[int]) -> Snapshot | None:
    """What changed since the last poll; None when the job is gone."""
    with runtime.sessions() as session:
        job = job_repo.get_job(session, job_id)
        if job is None:
            return None
        new = sorted(set(job_repo.final_page_numbers(session, job_id)) - sent_pages)
        pages = []
        for start in range(0, len(new), FETCH_CHUNK):
            pages += job_repo.pages_numbered(session, job_id, new[start:start + FETCH_CHUNK])
        pages.sort(key=_finish_order)
        snapshot = Snapshot(status=job.status, pages=[page_summary(page) for page in pages])
        if job.status != sent_status:
            snapshot.job = job_out(session, job)
        return snapshot


def _finish_order(page: Page) -> tuple[bool, datetime | None, int]:
    finished = as_utc(page.finished_at) if page.finished_at else None
    return finished is None, finished, page.page_no


def _event(kind: str, event_id: str | None, data: dict) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"{head}event: {kind}\ndata: {body}\n\n"
