"""What the queue is doing, from the system of record: pages entering, starting and leaving it
per minute, what waits now, the oldest waiting page and the throughput.

Counted over every tenant: the queue and the workers are shared, and these are counts only (no
document, job or tenant is named). Each count is one GROUP BY over an indexed timestamp
(migration 0008), so a dashboard refreshing every few seconds reads the last hour's rows only.

A page is counted at its latest transition of each kind: a page retried after its worker died
started twice but counts once, in the minute of its last start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Integer, cast, extract, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from storage.models import Page, PageStatus, utcnow

WINDOW_MINUTES = 60
THROUGHPUT_WINDOW_S = 300  # pages/s is the average over the last five minutes
WAITING = (PageStatus.PENDING, PageStatus.QUEUED)
OPEN = (*WAITING, PageStatus.RUNNING)
FAILED = (PageStatus.FAILED, PageStatus.DEAD)


@dataclass
class Minute:
    """Pages that, during the minute starting at `start` (UTC): entered the queue (`queued`),
    were claimed by a worker (`running`), finished with a result (`done`), or failed for good
    (`failed`: failed or dead)."""

    start: datetime
    queued: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0


@dataclass
class QueueActivity:
    now: datetime
    minutes: list[Minute]  # oldest first, the last one is the minute in progress
    current: dict[str, int]  # pages pending, queued and running now
    oldest_waiting_since: datetime | None  # created_at of the oldest page not yet started
    pages_per_second: float  # pages done per second over the last THROUGHPUT_WINDOW_S
    window: dict[str, int] = field(default_factory=dict)  # totals of `minutes`


def queue_activity(session: Session, now: datetime | None = None,
                   window_minutes: int = WINDOW_MINUTES) -> QueueActivity:
    """Counts for the `window_minutes` whole minutes up to and including the current one."""
    now = now or utcnow()
    first = now.replace(second=0, microsecond=0) - timedelta(minutes=window_minutes - 1)
    minutes = [Minute(first + timedelta(minutes=i)) for i in range(window_minutes)]
    for index, count in _per_minute(session, Page.created_at, first):
        _bucket(minutes, index).queued += count
    for index, count in _per_minute(session, Page.started_at, first):
        _bucket(minutes, index).running += count
    for index, count in _per_minute(session, Page.finished_at, first, (PageStatus.DONE,)):
        _bucket(minutes, index).done += count
    for index, count in _per_minute(session, Page.finished_at, first, FAILED):
        _bucket(minutes, index).failed += count
    current = {status: 0 for status in OPEN}
    current.update(session.execute(select(Page.status, func.count()).where(Page.status.in_(OPEN))
                                   .group_by(Page.status)).all())
    oldest = session.scalar(select(func.min(Page.created_at)).where(Page.status.in_(WAITING)))
    recent = session.scalar(select(func.count()).where(
        Page.status == PageStatus.DONE,
        Page.finished_at >= now - timedelta(seconds=THROUGHPUT_WINDOW_S)))
    window = {name: sum(getattr(m, name) for m in minutes) for name in ("queued", "running", "done", "failed")}
    return QueueActivity(now=now, minutes=minutes, current=current,
                         oldest_waiting_since=_aware(oldest),
                         pages_per_second=(recent or 0) / THROUGHPUT_WINDOW_S, window=window)


def _per_minute(session: Session, column: InstrumentedAttribute, since: datetime,
                statuses: tuple[str, ...] | None = None) -> list[tuple[int, int]]:
    """(minutes after `since`, pages) for pages whose `column` is at or after `since`."""
    index = _minutes_after(session, column, since).label("minute")
    query = select(index, func.count()).where(column >= since)
    if statuses is not None:
        query = query.where(Page.status.in_(statuses))
    return [(int(minute), count) for minute, count in session.execute(query.group_by(index))]


def _minutes_after(session: Session, column: InstrumentedAttribute, since: datetime) -> ColumnElement:
    """Whole minutes from `since` (a whole minute) to `column`, in SQL, for rows at or after
    `since`. PostgreSQL: epoch arithmetic on timestamptz; SQLite (which stores naive UTC text):
    whole seconds since the epoch, in integers (julian days, in floating point, put a timestamp
    on a minute's first instant into the minute before)."""
    if session.bind.dialect.name == "postgresql":
        return func.floor(extract("epoch", column - since) / 60)
    return (cast(func.strftime("%s", column), Integer) - int(since.timestamp())) // 60


def _bucket(minutes: list[Minute], index: int) -> Minute:
    """The minute at `index`; a timestamp a little ahead of this host's clock (another host's)
    counts in the current minute."""
    return minutes[min(max(index, 0), len(minutes) - 1)]


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite gives back naive UTC datetimes."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=utcnow().tzinfo)
    return moment
