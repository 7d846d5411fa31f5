"""jobs.request_sha256: the fingerprint an Idempotency-Key replay is compared with

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 06:40:00

A plain ADD COLUMN (no batch rebuild of `jobs` on SQLite: see 0002). Jobs created before it
keep NULL and are compared by recomputing the fingerprint from their input and options.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("request_sha256", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "request_sha256")
