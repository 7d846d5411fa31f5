"""jobs.warnings and pages.render: what was done to a document and to each of its pages (the box
and resolution rendered, the turn applied, what could lower its quality), so nothing is silent

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 13:40:00

Plain ADD COLUMNs, nullable (no batch rebuild on SQLite: see 0002); rows created before it read
as having no warnings and no render record.
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
    op.add_column("pages", sa.Column("render", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("pages", "render")
    op.drop_column("jobs", "warnings")
