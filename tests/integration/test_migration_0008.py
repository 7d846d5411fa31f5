"""Migration 0008 (pages.started_at and the indexes on the pages' timestamps) up, down and up
again on SQLite and PostgreSQL, with a page in place: nothing already stored may be lost."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect

from storage.db import make_engine
from storage.migrate import alembic_config, upgrade
from tests.security.test_migration_0002 import columns, count_pages, seed_at_0001, url  # noqa: F401 (url: fixture)

INDEXES = {"ix_pages_created_at", "ix_pages_started_at", "ix_pages_finished_at"}


def page_indexes(url: str) -> set[str]:  # noqa: F811 (the fixture's name)
    engine = make_engine(url)
    try:
        return {index["name"] for index in inspect(engine).get_indexes("pages")}
    finally:
        engine.dispose()


def test_0008_started_at_up_down_up_keeps_the_data(url: str) -> None:  # noqa: F811
    seed_at_0001(url)
    upgrade(url, "0008")
    assert "started_at" in columns(url, "pages") and INDEXES <= page_indexes(url)
    assert count_pages(url) == 1
    command.downgrade(alembic_config(url), "0006")
    assert "started_at" not in columns(url, "pages") and not INDEXES & page_indexes(url)
    assert count_pages(url) == 1
    upgrade(url, "0008")
    assert "started_at" in columns(url, "pages") and count_pages(url) == 1
