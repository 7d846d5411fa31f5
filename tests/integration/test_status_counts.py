"""The status counts the database keeps itself (migration 0006, storage/counts.py) on SQLite and
PostgreSQL: rows already there are counted by the migration, every later insert, status change
and delete is counted by the triggers, folding the delta log changes no count, and the
migration goes down and up again with the data in place."""

from __future__ import annotations

from collections import defaultdict

from alembic import command
from sqlalchemy import Engine, func, select, text

from storage import counts
from storage import jobs as job_repo
from storage.db import make_engine, make_session_factory
from storage.migrate import alembic_config, upgrade
from storage.models import Job, JobStatus, Page, PageStatus, utcnow

SEED = [
    "INSERT INTO tenants (id, name, created_at) VALUES ('t1', 'counts', CURRENT_TIMESTAMP)",
    *(f"INSERT INTO jobs (id, tenant_id, status, media_type, input_sha256, input_size, options, "
      f"cancel_requested, created_at, updated_at) VALUES ('{job}', 't1', '{status}', "
      "'application/pdf', 's', 1, '{}', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
      for job, status in (("j1", "processing"), ("j2", "succeeded"))),
    *(f"INSERT INTO pages (job_id, tenant_id, page_no, status, attempt, image_key, width, height, "
      f"created_at, updated_at) VALUES ('{job}', 't1', {n}, '{status}', 0, 'k', 1, 1, "
      "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
      for job, n, status in (("j1", 1, "queued"), ("j1", 2, "done"), ("j2", 1, "done"))),
]


def seeded(database_url: str, *more: str) -> Engine:
    """The database at head, with the SEED rows (and `more` statements) written at 0004."""
    upgrade(database_url, "0004")
    engine = make_engine(database_url)
    with engine.begin() as connection:
        for statement in (*SEED, *more):
            connection.execute(text(statement))
    upgrade(database_url)
    return engine


def by_group_by(session) -> dict[str, dict[str, int]]:  # noqa: ANN001
    truth: dict[str, dict[str, int]] = defaultdict(dict)
    for model, kind in ((Job, "jobs"), (Page, "pages")):
        for status, n in session.execute(select(model.status, func.count()).group_by(model.status)):
            truth[kind][status] = n
    return truth


def counted(session) -> dict[str, dict[str, int]]:  # noqa: ANN001
    return {kind: values for kind, values in counts.read_counts(session).items()
            if kind in counts.COUNTED_TABLES}


def test_counts_follow_every_change(database_url: str) -> None:
    engine = seeded(database_url)  # 0006 counts the rows already there
    sessions = make_session_factory(engine)
    with sessions() as session:
        assert counted(session) == by_group_by(session) == {
            "jobs": {"processing": 1, "succeeded": 1}, "pages": {"queued": 1, "done": 2}}

    with sessions.begin() as session:  # the pipeline's own writes
        page = session.scalar(select(Page).where(Page.job_id == "j1", Page.page_no == 1))
        claimed = job_repo.claim_pages(session, [page.id], "w", utcnow())[0]
        job_repo.finish_page(session, claimed, PageStatus.FAILED, error_code="engine_error")
        session.add(Page(job_id="j1", tenant_id="t1", page_no=3, status=PageStatus.QUEUED,
                         image_key="k", width=1, height=1))
    with sessions.begin() as session:
        job_repo.request_cancel(session, "j1")
        job_repo.touch_job(session, "j2")  # no status change: nothing counted
    with sessions() as session:
        assert counted(session) == by_group_by(session)
        assert counted(session)["jobs"] == {"cancelled": 1, "succeeded": 1}
    with sessions.begin() as session:
        job_repo.delete_job(session, "j2", "t1")
        counts.add(session, counts.PURGES, "jobs")
    with sessions.begin() as session:
        counts.fold_deltas(session)
    with sessions() as session:
        assert session.execute(text("SELECT COUNT(*) FROM status_count_deltas")).scalar_one() == 0
        assert counted(session) == by_group_by(session)
        assert counts.read_counts(session)[counts.PURGES] == {"jobs": 1}
    engine.dispose()


def test_0006_down_and_up_keeps_the_data_and_counts_again(database_url: str) -> None:
    engine = seeded(database_url)
    command.downgrade(alembic_config(database_url), "0004")
    with engine.begin() as connection:  # no trigger left behind to write to a dropped table
        connection.execute(text("UPDATE pages SET status = 'done'"))
    upgrade(database_url)
    with make_session_factory(engine)() as session:
        assert counted(session) == by_group_by(session) == {
            "jobs": {"processing": 1, "succeeded": 1}, "pages": {"done": 3}}
        assert session.get(Job, "j1").purged_at is None
    engine.dispose()


def test_a_job_is_purged_once_and_only_when_final(database_url: str) -> None:
    engine = seeded(database_url, "UPDATE pages SET text_preview = 'secret text'")
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        assert job_repo.mark_purged(session, "j1") is False  # still processing
        assert job_repo.mark_purged(session, "j2") is True
        assert job_repo.mark_purged(session, "j2") is False
    with sessions() as session:
        previews = dict(session.execute(select(Page.job_id, Page.text_preview).where(Page.page_no == 1)).all())
        assert previews == {"j1": "secret text", "j2": None}
        assert session.get(Job, "j2").status == JobStatus.SUCCEEDED
    engine.dispose()


def test_progress_reads_only_pages_not_done(database_url: str) -> None:
    """A split job's done pages are its page count less its pages not done (the partial index of
    migration 0006); a job still splitting (no page count yet) has its rows counted."""
    engine = seeded(database_url)
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        session.execute(text("UPDATE jobs SET page_count = 5 WHERE id = 'j1'"))
        for number, status in ((3, "failed"), (4, "dead"), (5, "running")):
            session.add(Page(job_id="j1", tenant_id="t1", page_no=number, status=status,
                             image_key="k", width=1, height=1))
        session.execute(text("UPDATE jobs SET page_count = NULL, status = 'splitting' WHERE id = 'j2'"))
    with sessions() as session:
        jobs = [session.get(Job, "j1"), session.get(Job, "j2")]
        progress = job_repo.progress_many(session, jobs)
    assert progress["j1"] == job_repo.Progress(pages_total=5, pages_done=1, pages_failed=2)
    assert progress["j2"] == job_repo.Progress(pages_total=1, pages_done=1, pages_failed=0)
    engine.dispose()
