"""GET /v1/queue: what the queue and the workers are doing, for the dashboard's queue panel.

Counts come from the database (storage/queue_stats.py), workers from the broker
(workers/presence.py). Both cover the whole service, every tenant's pages together: the queue is
shared, and the answer names no job, document or tenant. Any valid API key may read it.
"""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.deps import SessionDep, TenantDep
from api.schemas import UNAUTHORIZED, error_responses
from storage import queue_stats
from workers.presence import WorkerPresence

router = APIRouter(prefix="/v1/queue", tags=["queue"])


class MinuteOut(BaseModel):
    start: datetime = Field(description="the minute's first instant, UTC")
    queued: int = Field(description="pages that entered the queue in this minute")
    running: int = Field(description="pages a worker started in this minute")
    done: int = Field(description="pages finished with a result in this minute")
    failed: int = Field(description="pages that failed for good (failed or dead) in this minute")


class WorkerOut(BaseModel):
    name: str = Field(description="the Celery worker's hostname, e.g. tessera-4121@gpu-0")
    queues: list[str]
    alive: bool = Field(description="it answered the latest broadcast through the broker")
    last_heartbeat: datetime = Field(description="when it last answered")
    seconds_since_heartbeat: float


class QueueOut(BaseModel):
    now: datetime
    minutes: list[MinuteOut] = Field(description="the last 60 minutes, oldest first; the last is "
                                                 "the minute in progress")
    window: dict[str, int] = Field(description="the minutes' totals: queued, running, done, failed")
    current: dict[str, int] = Field(description="pages pending, queued and running now")
    oldest_waiting_since: datetime | None = Field(description=(
        "when the oldest page not yet started entered the queue; null when none waits"))
    oldest_waiting_seconds: float = Field(description="its age; 0 when none waits")
    pages_per_second: float = Field(description="pages done per second, over the last 5 minutes")
    workers: list[WorkerOut] = Field(description="workers seen through the broker in the last "
                                                 "10 minutes, alive ones first")
    broker_error: str | None = Field(description="why the broker could not be asked; null when it was")


def presence(request: Request) -> WorkerPresence:
    """One per app, made on first use: it remembers when each worker last answered."""
    state = request.app.state
    if getattr(state, "worker_presence", None) is None:
        state.worker_presence = WorkerPresence(state.celery)
    return state.worker_presence


@router.get("", response_model=QueueOut, summary="Pages per minute, waiting pages, workers",
            responses=error_responses(UNAUTHORIZED))
async def get_queue(request: Request, session: SessionDep, _tenant: TenantDep) -> QueueOut:
    """The last hour of the queue, minute by minute, and the workers alive now."""
    activity = await run_in_threadpool(queue_stats.queue_activity, session)
    workers, broker_error = await run_in_threadpool(presence(request).workers)
    oldest = activity.oldest_waiting_since
    return QueueOut(
        now=activity.now, minutes=[MinuteOut(**vars(minute)) for minute in activity.minutes],
        window=activity.window, current=activity.current, oldest_waiting_since=oldest,
        oldest_waiting_seconds=max(0.0, (activity.now - oldest).total_seconds()) if oldest else 0.0,
        pages_per_second=round(activity.pages_per_second, 4),
        workers=[WorkerOut(**vars(w), seconds_since_heartbeat=max(0.0, round(
            (activity.now - w.last_heartbeat).total_seconds(), 1))) for w in workers],
        broker_error=broker_error,
    )
