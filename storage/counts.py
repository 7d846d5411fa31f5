"""Rows by status, kept by the database itself, so /metrics reads a few rows instead of
counting millions of pages on every scrape.

Triggers (migration 0006) append one delta row per change of a job's or page's status
(+1 to the new status, -1 to the old; inserts and deletes too) to `status_count_deltas`: an
append-only log, so concurrent writers never wait on each other the way they would on a shared
counter row. `fold_deltas` (run by the sweeper) moves the log into `status_counts`; a count is
always `status_counts` plus whatever deltas are not folded yet, so a reader is exact whenever
the sweeper last ran.

Other monotonic counts use the same tables through `add` (`kind="purges"`: jobs purged by
retention, workers/retention.py).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

COUNTED_TABLES = ("jobs", "pages")
PURGES = "purges"

READ = text(
    "SELECT kind, status, SUM(n) FROM ("
    " SELECT kind, status, n FROM status_counts"
    " UNION ALL SELECT kind, status, delta FROM status_count_deltas) AS all_counts"
    " GROUP BY kind, status")
FOLD_POSTGRES = text(
    "WITH moved AS (DELETE FROM status_count_deltas RETURNING kind, status, delta)"
    " INSERT INTO status_counts (kind, status, n)"
    " SELECT kind, status, SUM(delta) FROM moved GROUP BY kind, status ORDER BY kind, status"
    " ON CONFLICT (kind, status) DO UPDATE SET n = status_counts.n + excluded.n")
FOLD_SQLITE = (
    text("INSERT INTO status_counts (kind, status, n)"
         " SELECT kind, status, SUM(delta) FROM status_count_deltas WHERE true GROUP BY kind, status"
         " ON CONFLICT (kind, status) DO UPDATE SET n = status_counts.n + excluded.n"),
    text("DELETE FROM status_count_deltas"),
)


def read_counts(session: Session) -> dict[str, dict[str, int]]:
    """{kind: {status: count}} for `jobs`, `pages` and the other counts; statuses at 0 are left out."""
    counts: dict[str, dict[str, int]] = defaultdict(dict)
    for kind, status, n in session.execute(READ):
        if n:
            counts[kind][status] = int(n)
    return counts


def add(session: Session, kind: str, status: str, n: int = 1) -> None:
    """Count `n` more of (kind, status), in the caller's transaction."""
    session.execute(text("INSERT INTO status_count_deltas (kind, status, delta) VALUES (:k, :s, :n)"),
                    {"k": kind, "s": status, "n": n})


def fold_deltas(session: Session) -> None:
    """Move the delta log into the totals, in the caller's transaction. Safe from several
    processes at once: on PostgreSQL a delta row is deleted (and so counted) by one of them only;
    SQLite has one writer at a time."""
    if session.bind.dialect.name == "postgresql":
        session.execute(FOLD_POSTGRES)
        return
    for statement in FOLD_SQLITE:  # the INSERT takes SQLite's write lock: no delta slips between
        session.execute(statement)


def rebuild_counts(connection: Any) -> None:
    """Count every row again (after a bulk load with triggers off, or in the migration): a DB-API
    or SQLAlchemy connection, inside the caller's transaction."""
    run = connection.exec_driver_sql if hasattr(connection, "exec_driver_sql") else connection.execute
    for table in COUNTED_TABLES:
        run(f"DELETE FROM status_count_deltas WHERE kind = '{table}'")
        run(f"DELETE FROM status_counts WHERE kind = '{table}'")
        run(f"INSERT INTO status_counts (kind, status, n) SELECT '{table}', status, COUNT(*) "
            f"FROM {table} GROUP BY status")
