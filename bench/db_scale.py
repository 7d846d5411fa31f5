"""The database at archive scale: p50/p99 of every hot query on PostgreSQL filled (by COPY) with
`--jobs` jobs and `--pages` pages in realistic states (bench/scale_fill.py), and the plan of
every statement each one sends (EXPLAIN), through Tessera's own code (bench/scale_queries.py).

    .venv/bin/python bench/db_scale.py [--jobs 1000000] [--pages 10000000]
                                       [--workdir DIR [--reuse]] [--url postgresql://...]

Goals at 10 M pages: each query under 50 ms at p99, the /metrics scrape under 100 ms.
Without --url a PostgreSQL server is started under --workdir (default: a temporary folder)
with the test harness's settings (fsync off; the shared_buffers of initdb: 128 MB). `--reuse`
starts the server already in --workdir and skips the fill when it holds jobs, so a second run
measures a new migration (applied at start) on the same data.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402

from bench.scale_fill import Plan, fill  # noqa: E402
from bench.scale_queries import Figure, hot_queries, measure  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from tessera.config import Settings  # noqa: E402
from workers.runtime import Runtime  # noqa: E402

GOAL_MS, SCRAPE_GOAL_MS = 50.0, 100.0


@contextmanager
def database(args: argparse.Namespace) -> Iterator[str]:
    if args.url:
        yield args.url
        return
    from tests.utils.services import PostgresServer

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-db-scale-"))
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)  # the postgres user must reach its data folder
    server = PostgresServer(workdir)
    try:
        if args.reuse and server.datadir.exists():
            server.start()
        else:
            server.init()
        yield server.url
    finally:
        server.stop()


def prepare(url: str, args: argparse.Namespace) -> Plan:
    settings = Settings(database_url=url)
    started = time.perf_counter()
    upgrade(settings.sqlalchemy_url)
    print(f"migrations applied in {time.perf_counter() - started:.1f} s")
    plan_file = Path(args.workdir or ".") / "scale-plan.json"
    with psycopg.connect(url, autocommit=True) as conn:
        filled = conn.execute("select count(*) from jobs").fetchone()[0] > 0
    if filled and args.reuse and plan_file.exists():
        return Plan(**json.loads(plan_file.read_text()))
    started = time.perf_counter()
    plan = fill(url, args.jobs, args.pages, log=lambda line: print(line, flush=True))
    print(f"filled {plan.jobs} jobs and {plan.pages} pages in {time.perf_counter() - started:.0f} s")
    if args.workdir:
        plan_file.write_text(json.dumps(plan.__dict__))
    finish_load(url)
    print(f"ready (indexes, counters, VACUUM ANALYZE) after {time.perf_counter() - started:.0f} s")
    return plan


def finish_load(url: str) -> None:
    """What the triggers would have kept (counters), then statistics and visibility maps."""
    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("select to_regclass('status_counts')").fetchone()[0] is not None:
            from storage.counts import rebuild_counts  # migration 0006 and later

            with conn.transaction():
                rebuild_counts(conn)
        conn.execute("VACUUM ANALYZE")


def report(figures: list[Figure], plan: Plan, first_pass_s: float) -> None:
    print(f"\n{plan.jobs} jobs, {plan.pages} pages; jobs by status: "
          f"{dict(sorted(plan.by_status.items()))}")
    print(f"sweeper: first pass after a start {1000 * first_pass_s:.0f} ms")
    print(f"\n{'query':44} {'p50 ms':>8} {'p99 ms':>8} {'n':>5}  goal  indexes")
    for figure in figures:
        if figure.error:
            print(f"{figure.name:44} FAILED: {figure.error}")
            continue
        goal = SCRAPE_GOAL_MS if figure.name.startswith("/metrics") else GOAL_MS
        verdict = "ok" if figure.p99_ms < goal else "OVER"
        seq = f"  SEQ SCAN: {', '.join(figure.seq_scans)}" if figure.seq_scans else ""
        print(f"{figure.name:44} {figure.p50_ms:8.2f} {figure.p99_ms:8.2f} {len(figure.seconds):5}  "
              f"{verdict:4}  {', '.join(figure.indexes) or '-'}{seq}")
    print("\nEXPLAIN of every statement sent:")
    for figure in figures:
        print(f"\n== {figure.name}")
        for sql, lines in figure.plans:
            print(f"  -- {sql}")
            for line in lines:
                print(f"     {line[:200]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=200, help="timed runs per query (at most)")
    parser.add_argument("--budget", type=float, default=15.0, help="seconds per query (at least 5 runs)")
    parser.add_argument("--url", help="an existing, empty (or --reuse: filled) database")
    parser.add_argument("--workdir", help="where the PostgreSQL server keeps its data")
    parser.add_argument("--reuse", action="store_true", help="reuse the data in --workdir")
    args = parser.parse_args()
    with database(args) as url:
        plan = prepare(url, args)
        rt = Runtime(Settings(database_url=url))
        rng = random.Random(7)
        started = time.perf_counter()
        queries = hot_queries(rt, plan, rng)  # runs the sweeper's first pass
        first_pass = time.perf_counter() - started
        figures = [measure(rt, name, run, repeat=args.repeat, budget_s=args.budget, after=undo)
                   for name, run, undo in queries]
        rt.db.dispose()
        report(figures, plan, first_pass)


if __name__ == "__main__":
    main()
