"""The queue panel's counts (storage/queue_stats.py) on pages with known timestamps, on SQLite and
on PostgreSQL (each computes the minute of a timestamp its own way)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from storage.db import make_engine, make_session_factory
from storage.migrate import upgrade
from storage.models import Job, Page, PageStatus, Tenant
from storage.queue_stats import queue_activity

NOW = datetime(2031, 5, 6, 10, 30, 20, tzinfo=timezone.utc)  # 20 s into the minute 10:30
OWN_DB = "tessera_queue_stats"


def at(minutes_ago: float, seconds: float = 0.0) -> datetime:
    """A moment `minutes_ago` whole minutes before the current minute's start, plus `seconds`."""
    return NOW.replace(second=0) - timedelta(minutes=minutes_ago) + timedelta(seconds=seconds)


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path):  # noqa: ANN201
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'queue.db'}"
    else:
        server_url = request.getfixturevalue("postgres").url
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f"drop database if exists {OWN_DB}")
            conn.execute(f"create database {OWN_DB}")
        url = "postgresql+psycopg://" + server_url.split("://", 1)[1].rsplit("/", 1)[0] + f"/{OWN_DB}"
    upgrade(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


def add_pages(sessions, pages: list[dict]) -> None:  # noqa: ANN001
    with sessions.begin() as session:
        session.add(Tenant(id="t" * 32, name="t"))
        session.flush()  # no ORM relationships: rows go in the order they are flushed
        session.add(Job(id="j" * 32, tenant_id="t" * 32, media_type="application/pdf", input_sha256="0" * 64,
                        input_size=1, status="processing"))
        session.flush()
        for number, values in enumerate(pages, start=1):
            session.add(Page(job_id="j" * 32, tenant_id="t" * 32, page_no=number, image_key=f"k/{number}",
                             width=1, height=1, **values))


def test_pages_are_counted_in_the_minute_of_each_transition(sessions) -> None:  # noqa: ANN001
    add_pages(sessions, [
        # done: queued 5 min ago, started 3 min ago (at :59), done in the current minute
        {"status": PageStatus.DONE, "created_at": at(5, 1), "started_at": at(3, 59), "finished_at": at(0, 10)},
        # failed for good: every transition 2 minutes ago
        {"status": PageStatus.FAILED, "created_at": at(2), "started_at": at(2, 30), "finished_at": at(2, 31)},
        {"status": PageStatus.DEAD, "created_at": at(2), "started_at": at(2, 30), "finished_at": at(1, 59.5)},
        # running now, since the current minute
        {"status": PageStatus.RUNNING, "created_at": at(59), "started_at": at(0, 5)},
        # waiting: the oldest was queued 70 minutes ago (outside the window), one 10 minutes ago
        {"status": PageStatus.QUEUED, "created_at": at(70)},
        {"status": PageStatus.PENDING, "created_at": at(10, 30)},
        # done 61 minutes ago: outside the window, and outside the throughput's five minutes
        {"status": PageStatus.DONE, "created_at": at(62), "started_at": at(61), "finished_at": at(61, 1)},
        # done 4 minutes ago: inside the throughput's five minutes
        {"status": PageStatus.DONE, "created_at": at(4), "started_at": at(4, 1), "finished_at": at(4, 2)},
    ])
    with sessions() as session:
        activity = queue_activity(session, now=NOW)
    minutes = activity.minutes
    assert len(minutes) == 60 and minutes[-1].start == NOW.replace(second=0)
    assert minutes[0].start == NOW.replace(second=0) - timedelta(minutes=59)
    counts = {59 - index: (m.queued, m.running, m.done, m.failed) for index, m in enumerate(minutes)
              if (m.queued, m.running, m.done, m.failed) != (0, 0, 0, 0)}  # minutes ago -> counts
    assert counts == {
        59: (1, 0, 0, 0),  # the running page's arrival
        10: (1, 0, 0, 0),
        5: (1, 0, 0, 0),
        4: (1, 1, 1, 0),
        3: (0, 1, 0, 0),
        2: (2, 2, 0, 1),
        1: (0, 0, 0, 1),  # dead at 1:59.5 before the minute: one minute ago
        0: (0, 1, 1, 0),
    }
    assert activity.window == {"queued": 6, "running": 5, "done": 2, "failed": 2}
    assert activity.current == {"pending": 1, "queued": 1, "running": 1}
    assert activity.oldest_waiting_since == at(70)
    assert activity.pages_per_second == pytest.approx(2 / 300)  # the page done now and 4 min ago


def test_an_idle_service_counts_nothing(sessions) -> None:  # noqa: ANN001
    with sessions() as session:
        activity = queue_activity(session, now=NOW)
    assert all((m.queued, m.running, m.done, m.failed) == (0, 0, 0, 0) for m in activity.minutes)
    assert activity.current == {"pending": 0, "queued": 0, "running": 0}
    assert activity.oldest_waiting_since is None and activity.pages_per_second == 0
