"""Re-send work that no live task holds: after a restart, or when a lease has expired.

Safe to run at any time: every stage is idempotent and every final write is
fenced, so re-sending work that is in fact still running changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from sqlalchemy import or_, update

from storage import jobs as job_repo
from storage.models import JobStatus, Page, PageStatus, utcnow
from workers.enqueue import Enqueuer
from workers.runtime import Runtime

log = structlog.get_logger(__name__)


@dataclass
class Recovered:
    splits: int = 0
    pages: int = 0
    assemblies: int = 0


def recover(rt: Runtime, enqueue: Enqueuer, *, all_running: bool = False) -> Recovered:
    """Re-enqueue unfinished work. `all_running` also takes back running pages whose lease
    has not expired: right only when no worker can be alive (embedded start-up)."""
    counts = Recovered()
    with rt.sessions.begin() as session:
        expired = or_(Page.lease_expires_at.is_(None), Page.lease_expires_at < utcnow())
        condition = Page.status == PageStatus.RUNNING
        if not all_running:
            condition = condition & expired
        session.execute(update(Page).where(condition).values(status=PageStatus.QUEUED, lease_expires_at=None))
        jobs = job_repo.open_jobs(session)
        waiting = {job.id: job_repo.waiting_page_ids(session, job.id)
                   for job in jobs if job.status == JobStatus.PROCESSING}
    batch = rt.settings.engine_batch_size
    for job in jobs:
        if job.status in (JobStatus.QUEUED, JobStatus.SPLITTING):
            enqueue.split(job.id)
            counts.splits += 1
        elif job.status == JobStatus.ASSEMBLING:
            enqueue.assemble(job.id)
            counts.assemblies += 1
        elif job.status == JobStatus.PROCESSING:
            ids = waiting[job.id]
            for start in range(0, len(ids), batch):
                enqueue.infer(ids[start:start + batch])
            counts.pages += len(ids)
            if not ids:
                _assemble_if_complete(rt, enqueue, job.id, counts)
    if counts.splits or counts.pages or counts.assemblies:
        log.info("recovery.requeued", **counts.__dict__)
    return counts


def _assemble_if_complete(rt: Runtime, enqueue: Enqueuer, job_id: str, counts: Recovered) -> None:
    with rt.sessions.begin() as session:
        complete = job_repo.mark_assembling_if_complete(session, job_id)
    if complete:
        enqueue.assemble(job_id)
        counts.assemblies += 1
