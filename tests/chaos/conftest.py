"""Chaos fixtures: a Postgres trigger that logs every transition of a page to `done`, so a test
can prove that no page was finished twice, whatever was killed along the way."""

from __future__ import annotations

import psycopg
import pytest

DONE_LOG = """
CREATE TABLE IF NOT EXISTS chaos_done_log (page_id integer, job_id text, page_no integer,
                                           at timestamptz DEFAULT now());
CREATE OR REPLACE FUNCTION chaos_log_done() RETURNS trigger AS $$
BEGIN
  IF NEW.status = 'done' AND OLD.status IS DISTINCT FROM 'done' THEN
    INSERT INTO chaos_done_log (page_id, job_id, page_no) VALUES (NEW.id, NEW.job_id, NEW.page_no);
  END IF;
  RETURN NEW;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS chaos_done ON pages;
CREATE TRIGGER chaos_done AFTER UPDATE ON pages FOR EACH ROW EXECUTE FUNCTION chaos_log_done();
"""


@pytest.fixture(scope="session")
def done_log(stack_env: dict[str, str]):  # noqa: ANN201
    """A function job_id -> {page_no: times finished} read from the trigger's log."""
    from storage.migrate import upgrade
    from tessera.config import Settings

    upgrade(Settings(database_url=stack_env["TESSERA_DATABASE_URL"]).sqlalchemy_url)
    with psycopg.connect(stack_env["TESSERA_DATABASE_URL"], autocommit=True) as connection:
        connection.execute(DONE_LOG)

    def finished_counts(job_id: str) -> dict[int, int]:
        with psycopg.connect(stack_env["TESSERA_DATABASE_URL"]) as connection:
            rows = connection.execute(
                "SELECT page_no, count(*) FROM chaos_done_log WHERE job_id = %s GROUP BY page_no",
                (job_id,)).fetchall()
        return dict(rows)

    return finished_counts
