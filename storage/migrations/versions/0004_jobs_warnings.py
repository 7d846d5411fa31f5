"""jobs.warnings: what was noticed about a whole document (its page tree disagreeing with
its /Count, say), shown with the job so nothing done to a document is silent

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 13:40:00

A plain ADD COLUMN, nullable (no batch rebuild of `jobs` on SQLite: see 0002); jobs created
before it read as having no warnings.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("warnings", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("jobs", "warnings")
