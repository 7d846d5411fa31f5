"""The sweeper's pass as it was reshaped for archive scale (workers/recovery.py), on SQLite and
PostgreSQL: stale work is re-sent oldest first and a bounded amount per pass, a processing job
whose pages are all final is moved on in one query, pages of ended jobs are closed (every ended
job on a sweeper's first pass, recently ended ones after), and a pass folds the count log.

Messages go to a LocalEnqueuer (the in-process queue of `tessera run`) whose handlers record
them instead of running the stages."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import text, update

from storage.migrate import upgrade
from storage.models import Job, JobStatus, Page, PageStatus, utcnow
from tessera.config import Settings
from workers.enqueue import ASSEMBLE, INFER, SPLIT, LocalEnqueuer
from workers.recovery import SWEEP_BATCH, Sweeper, recover
from workers.runtime import Runtime


def runtime(url: str, tmp_path: Path) -> Runtime:
    upgrade(url)
    rt = Runtime(Settings(home=tmp_path, database_url=url))
    with rt.sessions.begin() as session:
        session.execute(text("INSERT INTO tenants (id, name, created_at) VALUES ('t', 'sweep', CURRENT_TIMESTAMP)"))
    return rt


def recording() -> tuple[LocalEnqueuer, dict[str, list]]:
    """A LocalEnqueuer whose messages are only recorded (by stage name) when drained."""
    sent: dict[str, list] = {SPLIT: [], INFER: [], ASSEMBLE: []}
    enqueue = LocalEnqueuer({name: (lambda *args, n=name: sent[n].append(args)) for name in sent})
    return enqueue, sent


def add_job(rt: Runtime, job_id: str, status: str, pages: list[str], **job: object) -> None:
    with rt.sessions.begin() as session:
        session.add(Job(id=job_id, tenant_id="t", status=status, media_type="application/pdf",
                        input_sha256="s", input_size=1, options={}, page_count=len(pages), **job))
        session.flush()
        for number, state in enumerate(pages, start=1):
            session.add(Page(job_id=job_id, tenant_id="t", page_no=number, status=state,
                             image_key="k", width=1, height=1))


def test_stale_pages_are_resent_oldest_first_a_batch_per_pass(database_url: str, tmp_path: Path) -> None:
    rt = runtime(database_url, tmp_path)
    add_job(rt, "big", JobStatus.PROCESSING, [PageStatus.QUEUED] * (SWEEP_BATCH + 200))
    with rt.sessions.begin() as session:
        long_ago = utcnow() - timedelta(hours=1)
        session.execute(update(Page).values(updated_at=long_ago))
        session.execute(update(Page).where(Page.page_no <= 10).values(updated_at=long_ago - timedelta(hours=1)))
    enqueue, sent = recording()
    assert recover(rt, enqueue).pages == SWEEP_BATCH  # an empty queue: their messages were lost
    enqueue.drain()
    first_pass = {ids[0][0] for ids in sent[INFER]}
    with rt.sessions() as session:
        oldest = set(session.scalars(text("SELECT id FROM pages WHERE page_no <= 10")))
    assert oldest <= first_pass
    assert recover(rt, enqueue).pages == 200  # the rest on the next pass
    enqueue.drain()
    assert recover(rt, enqueue).pages == 0  # touched: not stale again until stale_queued_s


def test_a_long_backlog_is_not_mistaken_for_lost_messages(database_url: str, tmp_path: Path) -> None:
    rt = runtime(database_url, tmp_path)
    waiting = 4 * rt.settings.engine_batch_size
    add_job(rt, "backlog", JobStatus.PROCESSING, [PageStatus.QUEUED] * waiting)
    with rt.sessions.begin() as session:
        session.execute(update(Page).values(updated_at=utcnow() - timedelta(hours=3)))
    enqueue, _ = recording()
    for index in range(4):  # the split's messages are still in the queue, 4 pages each
        enqueue.infer(list(range(index * 4, index * 4 + 4)))
    assert recover(rt, enqueue).pages == 0
    enqueue.pending.pop()  # one message lost: its pages must be sent again
    assert recover(rt, enqueue).pages == waiting


def test_a_processing_job_with_every_page_final_is_moved_on(database_url: str, tmp_path: Path) -> None:
    rt = runtime(database_url, tmp_path)
    add_job(rt, "stuck", JobStatus.PROCESSING, [PageStatus.DONE, PageStatus.FAILED])
    add_job(rt, "busy", JobStatus.PROCESSING, [PageStatus.DONE, PageStatus.RUNNING])
    enqueue, sent = recording()
    with rt.sessions.begin() as session:  # leases still valid: nothing else to recover
        session.execute(update(Page).values(lease_expires_at=utcnow() + timedelta(minutes=5)))
    recover(rt, enqueue)
    enqueue.drain()
    assert sent[ASSEMBLE] == [("stuck",)]
    with rt.sessions() as session:
        assert session.get(Job, "stuck").status == JobStatus.ASSEMBLING
        assert session.get(Job, "busy").status == JobStatus.PROCESSING


def test_pages_of_ended_jobs_are_closed(database_url: str, tmp_path: Path) -> None:
    rt = runtime(database_url, tmp_path)
    long_ago = utcnow() - timedelta(days=2)
    add_job(rt, "old", JobStatus.CANCELLED, [PageStatus.QUEUED], finished_at=long_ago)
    enqueue, _ = recording()
    sweeper = Sweeper(rt, enqueue)
    assert not any(isinstance(v, Exception) for v in sweeper.pass_once().values())
    add_job(rt, "new", JobStatus.CANCELLED, [PageStatus.QUEUED], finished_at=utcnow())
    add_job(rt, "late", JobStatus.CANCELLED, [PageStatus.QUEUED], finished_at=long_ago)
    sweeper.pass_once()  # after the first pass: recently ended jobs only
    with rt.sessions() as session:
        states = dict(session.execute(text("SELECT job_id, status FROM pages")).all())
        deltas = session.execute(text("SELECT COUNT(*) FROM status_count_deltas")).scalar_one()
    assert states == {"old": PageStatus.FAILED, "new": PageStatus.FAILED, "late": PageStatus.QUEUED}
    assert deltas == 0  # the pass folded the count log
