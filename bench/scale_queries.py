"""The hot queries of bench/db_scale.py, each through Tessera's own code (repositories, route
functions, the sweeper, the metrics collector), timed, and with the plans of the SQL it sent.

Messages the code would send go to a counting enqueuer: the figures are database time plus the
Python around it, not the broker's.
"""

from __future__ import annotations

import inspect
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

from sqlalchemy import event, text, update

from bench.scale_fill import Plan
from storage.models import Page, PageStatus
from workers.runtime import Runtime


class CountingEnqueuer:
    """Counts messages; `depth` is what the broker would say: by default, plenty (a healthy
    broker holds a message for every waiting page); 0 plays a broker that lost them."""

    def __init__(self, depth: int = 10**9) -> None:
        self.sent, self.queue_depth = 0, depth

    def depth(self, queue: str) -> int:
        return self.queue_depth

    def split(self, job_id: str, high: bool = False) -> None:
        self.sent += 1

    def infer(self, page_ids: list[int], high: bool = False) -> None:
        self.sent += 1

    def assemble(self, job_id: str) -> None:
        self.sent += 1


@dataclass
class Figure:
    name: str
    seconds: list[float]
    plans: list[tuple[str, list[str]]] = field(default_factory=list)
    error: str | None = None  # the query failed (the figures are then empty)

    def quantile(self, q: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]

    @property
    def p50_ms(self) -> float:
        return 1000 * statistics.median(self.seconds)

    @property
    def p99_ms(self) -> float:
        return 1000 * self.quantile(0.99)

    @property
    def indexes(self) -> list[str]:
        found = []
        for _, lines in self.plans:
            for line in lines:
                for marker in (" using ", " on "):
                    if "Index" in line and marker in line:
                        name = line.split(marker, 1)[1].split()[0]
                        if name not in found and (name.startswith(("ix_", "uq_")) or name.endswith("pkey")):
                            found.append(name)
        return found

    @property
    def seq_scans(self) -> list[str]:
        return sorted({line.split("Seq Scan on ", 1)[1].split()[0]
                       for _, lines in self.plans for line in lines if "Seq Scan on " in line})


class Capture:
    """Statements sent while active: (sql, parameters)."""

    def __init__(self, rt: Runtime):
        self.rt, self.statements = rt, []

    def _record(self, _conn, _cursor, statement, parameters, _context, _many) -> None:  # noqa: ANN001
        self.statements.append((statement, parameters))

    def __enter__(self) -> Capture:
        event.listen(self.rt.db, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.rt.db, "before_cursor_execute", self._record)


def explain(rt: Runtime, statements: list[tuple[str, object]]) -> list[tuple[str, list[str]]]:
    plans, seen = [], set()
    with rt.db.connect() as conn:
        raw = conn.connection.dbapi_connection
        for sql, params in statements:
            head = sql.split()[0].upper()
            if head not in ("SELECT", "UPDATE", "DELETE", "WITH", "INSERT") or sql in seen:
                continue
            seen.add(sql)
            with raw.cursor() as cur:
                cur.execute("EXPLAIN " + sql, params)
                plans.append((" ".join(sql.split())[:140], [row[0] for row in cur.fetchall()]))
        raw.rollback()
    return plans


def measure(rt: Runtime, name: str, run: Callable[[], object], *, repeat: int, budget_s: float,
            after: Callable[[], object] | None = None) -> Figure:
    try:
        return _measure(rt, name, run, repeat=repeat, budget_s=budget_s, after=after)
    except Exception as exc:  # noqa: BLE001 (a query that fails at this scale is a finding)
        return Figure(name, [], error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}")


def _measure(rt: Runtime, name: str, run: Callable[[], object], *, repeat: int, budget_s: float,
             after: Callable[[], object] | None = None) -> Figure:
    for _ in range(2):  # warm the connection pool and the caches this query touches
        run()
        if after:
            after()
    seconds: list[float] = []
    deadline = time.monotonic() + budget_s
    while len(seconds) < repeat and (len(seconds) < 5 or time.monotonic() < deadline):
        started = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - started)
        if after:
            after()
    with Capture(rt) as capture:
        run()
    if after:
        after()
    return Figure(name, seconds, explain(rt, capture.statements))


# ---------------------------------------------------------------- the queries


def hot_queries(rt: Runtime, plan: Plan, rng: random.Random
                ) -> list[tuple[str, Callable[[], object], Callable[[], object] | None]]:
    """(name, run, undo) for every hot query; `undo` restores what `run` changed (untimed)."""
    from api.metrics import PipelineCollector
    from api.routes import events, jobs as job_routes
    from storage import jobs as job_repo
    from api.presenters import job_out
    from workers.infer import _claim

    enqueue = CountingEnqueuer()
    big = SimpleNamespace(id=plan.big_tenant)
    claimed: list[int] = []

    def claim() -> None:
        start = rng.randrange(len(plan.queued_page_ids) - 4)
        pages, _ = _claim(rt, enqueue, plan.queued_page_ids[start:start + 4])
        claimed.extend(page.id for page in pages)

    def unclaim() -> None:
        with rt.sessions.begin() as session:
            session.execute(update(Page).where(Page.id.in_(claimed)).values(
                status=PageStatus.QUEUED, attempt=0, lease_expires_at=None, worker_id=None))
        claimed.clear()

    def top_up() -> None:
        with rt.sessions() as session, session.begin():
            job_repo.fresh_queued_page_ids(session, 4, [rng.choice(plan.queued_page_ids)])
            session.rollback()

    def progress() -> None:
        with rt.sessions() as session:
            job_id = rng.choice(plan.processing_jobs if rng.random() < 0.5 else plan.final_jobs)
            job_out(session, job_repo.get_job(session, job_id))

    def listing(**filters: object) -> Callable[[], None]:
        def run() -> None:
            with rt.sessions() as session:
                args = dict(filters)
                for name, value in list(args.items()):
                    if callable(value):
                        args[name] = value()
                job_routes.list_jobs(session=session, tenant=big, **{"limit": 50, **args})
        return run

    cursors = deep_cursors(rt, plan, rng)  # before the timing: what a client brings back

    def sse_poll() -> None:
        job_id = rng.choice(plan.processing_jobs)
        with rt.sessions() as session:
            seen = frozenset(job_repo.final_page_numbers(session, job_id))
        events._poll(rt, job_id, "processing", seen)

    def scrape() -> None:
        list(PipelineCollector(rt).collect())

    queries = [
        ("claim a batch (4 queued pages)", claim, unclaim),
        ("top up a batch (fresh queued pages)", top_up, None),
        ("sweeper pass", sweeper_pass(rt, enqueue), None),
        ("sweeper pass, broker lost its messages", sweeper_pass(rt, CountingEnqueuer(depth=0)), None),
        ("job progress (GET /v1/jobs/{id})", progress, None),
        ("GET /v1/jobs (big tenant, newest 50)", listing(), None),
        ("GET /v1/jobs?status=failed", listing(status=["failed"]), None),
        ("GET /v1/jobs?status=queued,processing", listing(status=["queued,processing"]), None),
        ("GET /v1/jobs?batch_id=", listing(batch_id=lambda: rng.choice(plan.batch_ids)), None),
        ("GET /v1/jobs?cursor= (deep page)", listing(cursor=lambda: rng.choice(cursors)), None),
    ]
    if "ids" in inspect.signature(job_routes.list_jobs).parameters:
        polled = plan.big_tenant_open_jobs or plan.processing_jobs
        queries.append(("GET /v1/jobs?ids= (200 open jobs)", listing(
            ids=lambda: [",".join(rng.sample(polled, min(200, len(polled))))], limit=200), None))
    queries += [("SSE poll (GET /v1/jobs/{id}/events)", sse_poll, None),
                ("/metrics scrape", scrape, None)]
    return queries


def deep_cursors(rt: Runtime, plan: Plan, rng: random.Random, count: int = 50) -> list[str]:
    """`next_cursor`s pointing deep into the big tenant's history (at finished jobs)."""
    from api.pagination import job_cursor

    with rt.sessions() as session:
        rows = session.execute(text(
            "select created_at, id from jobs where tenant_id = :t and id = any(:ids) limit :n"),
            {"t": plan.big_tenant, "ids": rng.sample(plan.final_jobs, min(20 * count, len(plan.final_jobs))),
             "n": count}).all()
    return [job_cursor(row.created_at, row.id) for row in rows]


def sweeper_pass(rt: Runtime, enqueue: CountingEnqueuer) -> Callable[[], object]:
    """A steady-state pass of the sweeper as `tessera serve` runs it; its first pass (which a
    process makes at start) runs here, untimed by `measure`."""
    from workers import recovery
    from workers.webhooks import deliver_due_webhooks

    if hasattr(recovery.Sweeper, "pass_once"):
        sweeper = recovery.Sweeper(rt, enqueue)

        def run() -> None:
            failed = [v for v in sweeper.pass_once().values() if isinstance(v, Exception)]
            if failed:
                raise failed[0]
    else:
        def run() -> None:
            recovery.recover(rt, enqueue)
            deliver_due_webhooks(rt)
    try:
        run()
    except Exception as exc:  # noqa: BLE001 (reported with the steady passes, which fail alike)
        print(f"sweeper: the first pass failed: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
    return run
