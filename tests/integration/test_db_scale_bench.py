"""bench/db_scale.py end to end at 10,000 pages on the session's PostgreSQL, so the bench keeps
working: the fill, every hot query through Tessera's code, and the EXPLAIN of what each sent.
(The figures are the bench's business; only that every query ran and was explained is checked.)"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
QUERIES = ["claim a batch", "top up a batch", "sweeper pass", "sweeper pass, broker lost",
           "job progress", "GET /v1/jobs (big tenant", "GET /v1/jobs?status=failed",
           "GET /v1/jobs?batch_id=", "GET /v1/jobs?cursor=", "GET /v1/jobs?ids=",
           "SSE poll", "/metrics scrape"]


@pytest.mark.slow
def test_the_scale_bench_runs_at_10k_pages(postgres) -> None:  # noqa: ANN001
    name = f"scale_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = postgres.url.rsplit("/", 1)[0] + f"/{name}"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "db_scale.py"), "--url", url,
                          "--jobs", "1000", "--pages", "10000", "--repeat", "5", "--budget", "1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    table, _, plans = run.stdout.partition("EXPLAIN of every statement sent:")
    assert "1000 jobs, 10" in table and "FAILED" not in table, table
    for query in QUERIES:
        row = next((line for line in table.splitlines() if line.startswith(query)), None)
        assert row is not None and len(row.split()) > 4, (query, table)
        section = plans.split(f"== {query}", 1)[1].split("\n== ", 1)[0]
        assert "  -- SELECT" in section or "  -- UPDATE" in section or "  -- WITH" in section, query
    with psycopg.connect(url) as conn:  # the bench's counters agree with the rows
        counted = dict(conn.execute("SELECT status, n FROM status_counts WHERE kind = 'pages'").fetchall())
        deltas = dict(conn.execute("SELECT status, SUM(delta) FROM status_count_deltas WHERE kind = 'pages'"
                                   " GROUP BY status").fetchall())
        rows = dict(conn.execute("SELECT status, COUNT(*) FROM pages GROUP BY status").fetchall())
    assert {s: counted.get(s, 0) + deltas.get(s, 0) for s in rows} == rows
