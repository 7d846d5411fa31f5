"""Archive scale: status counters kept by triggers, partial indexes for the hot queries, and
jobs.purged_at for retention

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-30 14:00:00

Measured with bench/db_scale.py (1 M jobs, 10 M pages): /metrics counted every page by status
on every scrape, the gpu worker's top-up and the sweeper read whole status lists. Now:

- `status_counts` + `status_count_deltas` and one trigger set per counted table (storage/counts.py);
  the counts of the rows already there are taken here, inside the migration's transaction (on
  PostgreSQL the triggers' creation locks the tables until it commits, so nothing slips by);
- partial indexes that hold only open pages / jobs, so their size follows the backlog, not
  the history: pages not done by job (completeness checks, and a job's progress: done = page
  count - open - failed, no need to read its done pages), open pages by age (the oldest-waiting
  metric), by last touch (the sweeper's stale check), never-tried queued pages in id order (the
  top-up), open jobs by status and last touch, processing jobs by id (the sweeper), unpurged
  jobs by finish time
  (retention, recently ended jobs); and jobs by tenant + status + creation time (filtered listings);
- jobs.purged_at (NULL: not purged). A plain ADD COLUMN, no table rebuild on SQLite (see 0002).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None

OPEN_PAGES = "status IN ('pending', 'queued', 'running')"
NOT_DONE_PAGES = "status IN ('pending', 'queued', 'running', 'failed', 'dead')"
WAITING_PAGES = "status IN ('pending', 'queued')"
FRESH_PAGES = "status = 'queued' AND attempt = 0"
OPEN_JOBS = "status IN ('queued', 'splitting', 'processing', 'assembling')"
UNPURGED = "purged_at IS NULL"
INDEXES = (  # name, table, columns, partial-index predicate
    ("ix_pages_not_done_job", "pages", ["job_id", "status"], NOT_DONE_PAGES),
    ("ix_pages_open_created", "pages", ["created_at"], OPEN_PAGES),
    ("ix_pages_waiting_updated", "pages", ["updated_at"], WAITING_PAGES),
    ("ix_pages_fresh", "pages", ["id"], FRESH_PAGES),
    ("ix_jobs_open_updated", "jobs", ["status", "updated_at", "id"], OPEN_JOBS),
    ("ix_jobs_processing", "jobs", ["id"], "status = 'processing'"),
    ("ix_jobs_unpurged_finished", "jobs", ["finished_at"], UNPURGED),
    ("ix_jobs_tenant_status_created", "jobs", ["tenant_id", "status", "created_at"], None),
)
COUNTED = ("jobs", "pages")

PG_FUNCTION = """
CREATE FUNCTION tessera_status_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    INSERT INTO status_count_deltas (kind, status, delta) VALUES (TG_TABLE_NAME, OLD.status, -1);
  END IF;
  IF TG_OP <> 'DELETE' THEN
    INSERT INTO status_count_deltas (kind, status, delta) VALUES (TG_TABLE_NAME, NEW.status, 1);
  END IF;
  RETURN NULL;
END $$
"""
PG_TRIGGERS = (
    "CREATE TRIGGER {t}_status_rows AFTER INSERT OR DELETE ON {t} FOR EACH ROW "
    "EXECUTE FUNCTION tessera_status_delta()",
    "CREATE TRIGGER {t}_status_change AFTER UPDATE OF status ON {t} FOR EACH ROW "
    "WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION tessera_status_delta()",
)
SQLITE_TRIGGERS = (
    "CREATE TRIGGER {t}_status_insert AFTER INSERT ON {t} BEGIN "
    "INSERT INTO status_count_deltas (kind, status, delta) VALUES ('{t}', NEW.status, 1); END",
    "CREATE TRIGGER {t}_status_delete AFTER DELETE ON {t} BEGIN "
    "INSERT INTO status_count_deltas (kind, status, delta) VALUES ('{t}', OLD.status, -1); END",
    "CREATE TRIGGER {t}_status_change AFTER UPDATE OF status ON {t} "
    "WHEN OLD.status IS NOT NEW.status BEGIN "
    "INSERT INTO status_count_deltas (kind, status, delta) VALUES ('{t}', OLD.status, -1), "
    "('{t}', NEW.status, 1); END",
)
TRIGGER_NAMES = {"postgresql": ("status_rows", "status_change"),
                 "sqlite": ("status_insert", "status_delete", "status_change")}


def upgrade() -> None:
    op.add_column("jobs", sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))
    for name, table, columns, where in INDEXES:
        predicate = {} if where is None else {"postgresql_where": sa.text(where),
                                              "sqlite_where": sa.text(where)}
        op.create_index(name, table, columns, **predicate)
    op.create_table(
        "status_counts",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "status"),
    )
    op.create_table(
        "status_count_deltas",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
    )
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(PG_FUNCTION)
    for table in COUNTED:
        for statement in PG_TRIGGERS if dialect == "postgresql" else SQLITE_TRIGGERS:
            op.execute(statement.format(t=table))
        op.execute(f"INSERT INTO status_counts (kind, status, n) SELECT '{table}', status, COUNT(*) "
                   f"FROM {table} GROUP BY status")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in COUNTED:
        for name in TRIGGER_NAMES.get(dialect, ()):
            op.execute(f"DROP TRIGGER IF EXISTS {table}_{name}" + (f" ON {table}" if dialect == "postgresql" else ""))
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS tessera_status_delta()")
    op.drop_table("status_count_deltas")
    op.drop_table("status_counts")
    for name, table, _, _ in INDEXES:
        op.drop_index(name, table_name=table)
    op.drop_column("jobs", "purged_at")
