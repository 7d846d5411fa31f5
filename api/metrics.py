"""/metrics: what operators watch, read from PostgreSQL at scrape time.

Workers are separate processes (often on other machines), so in-process counters in the
API would see none of their work. The system of record already knows every job's and
page's state, and keeps their counts by status itself (storage/counts.py, triggers), so a
scrape reads a few rows whatever the size of the history, and any API replica can answer it.
"""

from __future__ import annotations

from collections.abc import Iterator

import structlog
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import func, select

from storage.counts import PURGES, read_counts
from storage.models import Page, PageStatus, utcnow
from workers.runtime import Runtime

log = structlog.get_logger(__name__)


class PipelineCollector:
    """Jobs by status, pages by status, the age of the oldest page still waiting, and jobs
    purged by retention."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        try:
            counts, oldest = self._read()
        except Exception as exc:  # noqa: BLE001 (a scrape during a database outage reports nothing)
            log.warning("metrics.unavailable", error=repr(exc)[:200])
            return
        yield _by_status("tessera_jobs", "Jobs by status", counts.get("jobs", {}))
        yield _by_status("tessera_pages", "Pages by status", counts.get("pages", {}))
        waiting = GaugeMetricFamily("tessera_oldest_waiting_page_seconds",
                                    "Age of the oldest queued or running page (0 when none)")
        waiting.add_metric([], (utcnow() - oldest).total_seconds() if oldest else 0.0)
        yield waiting
        purged = CounterMetricFamily("tessera_jobs_purged", "Jobs whose files and results "
                                     "retention removed (TESSERA_RETENTION_DAYS)")
        purged.add_metric([], counts.get(PURGES, {}).get("jobs", 0))
        yield purged

    def _read(self):  # noqa: ANN202
        with self.runtime.sessions() as session:
            counts = read_counts(session)
            # the partial index ix_pages_open_created holds only these pages (migration 0006)
            oldest = session.scalar(select(func.min(Page.created_at)).where(
                Page.status.in_((PageStatus.PENDING, PageStatus.QUEUED, PageStatus.RUNNING))))
        if oldest is not None and oldest.tzinfo is None:  # SQLite returns naive UTC
            oldest = oldest.replace(tzinfo=utcnow().tzinfo)
        return counts, oldest


def _by_status(name: str, documentation: str, counts: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=["status"])
    for status, count in sorted(counts.items()):
        family.add_metric([status], count)
    return family


router = APIRouter(tags=["health"])


def metrics_registry(runtime: Runtime) -> CollectorRegistry:
    """A registry of this app's own (several apps may live in one test process)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    registry.register(PipelineCollector(runtime))
    return registry


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(request: Request) -> Response:
    body = await run_in_threadpool(generate_latest, request.app.state.metrics_registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
