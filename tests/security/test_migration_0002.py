"""Migrations 0002 (batches, webhook outbox, jobs.batch_id, tenants.webhook_secret), 0003 and 0004 up, down and
up again on SQLite and PostgreSQL, with rows in place: nothing already stored may be lost."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect, text

from storage.db import make_engine
from storage.migrate import alembic_config, upgrade

ROWS = [
    "INSERT INTO tenants (id, name, created_at) VALUES ('t1', 'mig', CURRENT_TIMESTAMP)",
    "INSERT INTO jobs (id, tenant_id, status, media_type, input_sha256, input_size, options, "
    "cancel_requested, created_at, updated_at) VALUES ('j1', 't1', 'queued', 'application/pdf', 's', 1, "
    "'{}', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    "INSERT INTO pages (job_id, tenant_id, page_no, status, attempt, image_key, width, height, created_at, "
    "updated_at) VALUES ('j1', 't1', 1, 'queued', 0, 'k', 1, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
]


@pytest.fixture
def url(database_url: str) -> str:
    return database_url


def columns(url: str, table: str) -> set[str]:
    engine = make_engine(url)
    try:
        return {column["name"] for column in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def count_pages(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM pages")).scalar_one()
    finally:
        engine.dispose()


def seed_at_0001(url: str) -> None:
    """The schema at 0001 with a tenant, a job and a page in it."""
    upgrade(url, "0001")
    engine = make_engine(url)
    with engine.begin() as connection:
        for statement in ROWS:
            connection.execute(text(statement))
    engine.dispose()


def test_0002_up_down_up_keeps_the_data(url: str) -> None:
    seed_at_0001(url)
    upgrade(url, "0002")
    assert {"batch_id"} <= columns(url, "jobs") and {"webhook_secret"} <= columns(url, "tenants")
    assert {"event", "payload", "attempts", "next_try_at", "delivered_at", "last_error"} <= columns(
        url, "webhook_deliveries")
    engine = make_engine(url)
    assert "ix_jobs_batch_id" in {ix["name"] for ix in inspect(engine).get_indexes("jobs")}
    assert any(fk["referred_table"] == "batches" for fk in inspect(engine).get_foreign_keys("jobs"))
    engine.dispose()
    assert count_pages(url) == 1
    command.downgrade(alembic_config(url), "0001")
    assert "batch_id" not in columns(url, "jobs") and count_pages(url) == 1
    upgrade(url, "0002")
    assert "batch_id" in columns(url, "jobs") and count_pages(url) == 1


def test_0003_request_sha256_up_down_up_keeps_the_data(url: str) -> None:
    seed_at_0001(url)
    upgrade(url, "head")
    assert "request_sha256" in columns(url, "jobs") and count_pages(url) == 1
    command.downgrade(alembic_config(url), "0002")
    assert "request_sha256" not in columns(url, "jobs") and count_pages(url) == 1
    upgrade(url, "head")
    assert "request_sha256" in columns(url, "jobs") and count_pages(url) == 1


def test_0004_job_warnings_and_page_render_up_down_up_keep_the_data(url: str) -> None:
    seed_at_0001(url)
    upgrade(url, "0004")
    assert "warnings" in columns(url, "jobs") and "render" in columns(url, "pages")
    assert count_pages(url) == 1
    command.downgrade(alembic_config(url), "0003")
    assert "warnings" not in columns(url, "jobs") and "render" not in columns(url, "pages")
    assert count_pages(url) == 1
    upgrade(url, "0004")
    assert "render" in columns(url, "pages") and count_pages(url) == 1
