"""batches, webhook outbox, jobs.batch_id, tenants.webhook_secret

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 10:00:00

Only additive changes. On SQLite the new `jobs.batch_id` column and its foreign key are added
with one `ALTER TABLE ... ADD COLUMN ... REFERENCES`, never by rebuilding `jobs` (batch mode):
with `foreign_keys=ON` (storage/db.py) dropping the old `jobs` table during a rebuild would
cascade-delete every page.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("webhook_url", sa.String(length=2000), nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("entries", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tenant_id", "idempotency_key", name="uq_batches_tenant_idempotency"),
    )
    op.create_index("ix_batches_tenant_created", "batches", ["tenant_id", "created_at"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("subject_id", sa.String(length=32), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_deliveries_next_try", "webhook_deliveries", ["next_try_at"])
    op.create_index("ix_webhook_deliveries_subject", "webhook_deliveries", ["subject_id", "event"])
    op.add_column("tenants", sa.Column("webhook_secret", sa.String(length=64), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE jobs ADD COLUMN batch_id VARCHAR(32) "
                   "REFERENCES batches (id) ON DELETE SET NULL")
    else:
        op.add_column("jobs", sa.Column("batch_id", sa.String(length=32), nullable=True))
        op.create_foreign_key("fk_jobs_batch_id", "jobs", "batches", ["batch_id"], ["id"],
                              ondelete="SET NULL")
    op.create_index("ix_jobs_batch_id", "jobs", ["batch_id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_batch_id", table_name="jobs")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE jobs DROP COLUMN batch_id")  # SQLite >= 3.35, no table rebuild
        op.execute("ALTER TABLE tenants DROP COLUMN webhook_secret")
    else:
        op.drop_constraint("fk_jobs_batch_id", "jobs", type_="foreignkey")
        op.drop_column("jobs", "batch_id")
        op.drop_column("tenants", "webhook_secret")
    op.drop_index("ix_webhook_deliveries_subject", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_next_try", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_batches_tenant_created", table_name="batches")
    op.drop_table("batches")
