"""pages.started_at and indexes on the pages' timestamps: the dashboard's queue panel counts pages
queued, started, done and failed per minute over the last hour (storage/queue_stats.py)

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-30 15:00:00

A plain ADD COLUMN, nullable (no batch rebuild on SQLite: see 0002): pages claimed before it have
no start time and count as started in no minute. The three indexes keep the per-minute counts a
range scan of the last hour instead of a scan of every page ever processed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None

INDEXED = ("created_at", "started_at", "finished_at")


def upgrade() -> None:
    op.add_column("pages", sa.Column("started_at", sa.DateTime(timezone=True), nullable=True))
    for column in INDEXED:
        op.create_index(f"ix_pages_{column}", "pages", [column])


def downgrade() -> None:
    for column in INDEXED:
        op.drop_index(f"ix_pages_{column}", table_name="pages")
    op.drop_column("pages", "started_at")
