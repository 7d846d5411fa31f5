"""Retention: after `TESSERA_RETENTION_DAYS` a finished job's input, page images, page results
and document results are deleted; the job row stays, marked `purged_at`, so clients and
operators can still see what it was and when it ended (its result answers 410 `result_purged`).

The sweeper runs `purge_expired` on every pass (workers/recovery.py); each pass purges at most
PURGE_BATCH jobs, oldest first, so a first run on a large history spreads over passes. Blobs
go first and the mark after: a purge cut off between the two is repeated on the next pass, and
deleting what is already gone changes nothing. Each purge counts towards the
`tessera_jobs_purged_total` metric (storage/counts.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlalchemy import select

from storage import counts
from storage import jobs as job_repo
from storage.blobs import BlobKeys
from storage.models import Job, utcnow
from workers.runtime import Runtime

log = structlog.get_logger(__name__)
PURGE_BATCH = 200


def purge_expired(rt: Runtime, now: datetime | None = None, limit: int = PURGE_BATCH) -> int:
    """Purge jobs that finished more than `retention_days` ago (none when retention is off).
    Returns how many jobs this call purged."""
    days = rt.settings.retention_days
    if not days:
        return 0
    cutoff = (now or utcnow()) - timedelta(days=days)
    with rt.sessions() as session:
        expired = session.execute(  # ix_jobs_unpurged_finished (migration 0006)
            select(Job.id, Job.tenant_id).where(Job.purged_at.is_(None), Job.finished_at < cutoff)
            .order_by(Job.finished_at).limit(limit)).all()
    purged = 0
    for job_id, tenant_id in expired:
        rt.blobs.delete_prefix(BlobKeys.job_prefix(tenant_id, job_id))
        with rt.sessions.begin() as session:
            if job_repo.mark_purged(session, job_id):
                counts.add(session, counts.PURGES, "jobs")
                purged += 1
    if purged:
        log.info("retention.purged", jobs=purged, older_than_days=days)
    return purged
