"""Fill PostgreSQL with a realistic archive-scale workload by COPY (bench/db_scale.py).

The shape (why each number): 20 tenants, one of them holding half the jobs (the listing worst
case); jobs created over 90 days in id order, the newest 4 % still open (a backlog: queued jobs
with no pages yet, jobs splitting, processing with their pages part done, part queued, a few
running, and jobs assembling); the rest final: mostly succeeded, some partially succeeded,
failed (at split, no pages; or every page failed) and cancelled. Pages per job follow a long
tail (most documents have a few pages, a few have hundreds). 5 % of jobs arrive in batches of
100. Done pages carry a 200-character preview and timings, as the infer stage writes them.
The newest 32 jobs are being split or assembled (as many as cpu workers would hold), their
`updated_at` fresh as the stages' heartbeats keep it.

Non-constraint indexes are dropped during the load and built again after it, and triggers are
off while loading (`session_replication_role = replica`); the caller rebuilds anything the
triggers maintain (storage/counts.py) and runs VACUUM ANALYZE.
"""

from __future__ import annotations

import hashlib
import io
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import psycopg

TENANTS = 20
OPEN_SHARE = 0.04
FINAL_MIX = (("succeeded", 0.969), ("partially_succeeded", 0.01), ("failed", 0.015),
             ("cancelled", 0.006))
OPEN_MIX = (("queued", 0.3), ("processing", 0.7))
LIVE_JOBS = 16  # the newest jobs are being split and assembled right now (one per cpu worker)
RUNNING_PAGES = 256  # e.g. 64 gpu workers x 4 pages
EXPIRED_LEASES = 8
BATCH_SHARE, BATCH_SIZE = 0.05, 100
HISTORY = timedelta(days=90)
BACKLOG = timedelta(hours=3)
PREVIEW = ("Tessera reads documents page by page and keeps a short preview of every page's text "
           "so that listings and events can show it without fetching the full result from S3. ")[:200]
CHUNK_ROWS = 20_000
# Jobs that failed at split, and queued or splitting jobs, hold fewer pages than their count: ask
# for this much more so that the table holds about the pages asked for.
PAGELESS_SHARE = 1.022


@dataclass
class Plan:
    """What was loaded: enough for the queries to pick realistic parameters."""

    jobs: int = 0
    pages: int = 0
    tenant_ids: list[str] = field(default_factory=list)
    big_tenant: str = ""
    batch_ids: list[str] = field(default_factory=list)
    processing_jobs: list[str] = field(default_factory=list)
    final_jobs: list[str] = field(default_factory=list)
    queued_page_ids: list[int] = field(default_factory=list)  # a sample, for claims
    batch_tenant: str = ""  # the tenant of the batch being filled
    big_tenant_open_jobs: list[str] = field(default_factory=list)  # what its client polls
    by_status: dict[str, int] = field(default_factory=dict)


def _pick(mix: tuple[tuple[str, float], ...], rng: random.Random) -> str:
    value, acc = rng.random(), 0.0
    for name, share in mix:
        acc += share
        if value < acc:
            return name
    return mix[-1][0]


def page_counts(jobs: int, pages: int, rng: random.Random) -> list[int]:
    """A long-tailed count per job summing to `pages` (at least one page each)."""
    mean_extra = max(pages / jobs - 1, 0.0)
    counts = [1 + min(int(rng.expovariate(1 / mean_extra)) if mean_extra else 0, 1999)
              for _ in range(jobs)]
    diff, index = pages - sum(counts), 0
    while diff != 0:  # spread the rounding error over the jobs
        step = 1 if diff > 0 else -1
        if counts[index % jobs] + step >= 1:
            counts[index % jobs] += step
            diff -= step
        index += 1
    return counts


def _ts(moment: datetime | None) -> str:
    return "\\N" if moment is None else moment.isoformat()


def _text(value: object) -> str:
    if value is None:
        return "\\N"
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


class Loader:
    """Streams rows into COPY, CHUNK_ROWS lines at a time."""

    def __init__(self, conn: psycopg.Connection, table: str, columns: list[str]):
        present = {row[0] for row in conn.execute(
            "select column_name from information_schema.columns where table_name = %s", (table,))}
        self.columns = [c for c in columns if c in present]
        self.positions = [columns.index(c) for c in self.columns]
        self.conn, self.table, self.buffer, self.rows = conn, table, io.StringIO(), 0

    def add(self, values: tuple) -> None:
        self.buffer.write("\t".join(_text(values[i]) if not isinstance(values[i], datetime)
                                    else _ts(values[i]) for i in self.positions))
        self.buffer.write("\n")
        self.rows += 1
        if self.rows % CHUNK_ROWS == 0:
            self.flush()

    def flush(self) -> None:
        data = self.buffer.getvalue()
        if data:
            with self.conn.cursor() as cur, cur.copy(
                    f"COPY {self.table} ({', '.join(self.columns)}) FROM STDIN") as copy:
                copy.write(data)
        self.buffer = io.StringIO()


JOB_COLUMNS = ["id", "tenant_id", "status", "filename", "media_type", "input_sha256", "input_size",
               "options", "page_count", "idempotency_key", "request_sha256", "error_code",
               "error_message", "cancel_requested", "created_at", "updated_at", "started_at",
               "finished_at", "batch_id"]
PAGE_COLUMNS = ["id", "job_id", "tenant_id", "page_no", "status", "attempt", "lease_expires_at",
                "worker_id", "image_key", "width", "height", "tile_grid", "result_key",
                "text_preview", "engine", "timings", "error_code", "error_message", "created_at",
                "updated_at", "finished_at"]


def page_states(job_status: str, count: int, rng: random.Random) -> list[str]:
    """Each page's status for a job in `job_status` (running pages are assigned later)."""
    if job_status in ("succeeded", "assembling"):
        return ["done"] * count
    if job_status == "partially_succeeded":
        bad = min(count - 1, 1 + rng.randrange(2)) if count > 1 else 0
        return ["done"] * (count - bad) + ["dead" if rng.random() < 0.3 else "failed"] * bad
    if job_status == "failed":
        return [] if rng.random() < 0.7 else ["failed"] * count
    if job_status == "cancelled":
        done = rng.randrange(count + 1)
        return ["done"] * done + ["failed"] * (count - done)
    if job_status == "splitting":
        return ["queued"] * rng.randrange(count + 1)
    if job_status == "processing":
        done = int(count * 0.4)
        return ["done"] * done + ["queued"] * (count - done)
    return []  # queued: not split yet


def fill(url: str, jobs: int, pages: int, seed: int = 12, log: Callable[[str], None] = print) -> Plan:
    rng = random.Random(seed)
    plan = Plan(jobs=jobs)
    now = datetime.now(timezone.utc)
    counts = page_counts(jobs, int(pages * PAGELESS_SHARE), rng)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        dropped = _drop_indexes(conn)
        _tenants(conn, plan)
        _jobs_and_pages(conn, plan, counts, now, rng, log)
        log(f"fill: building {len(dropped)} indexes")
        for definition in dropped:
            conn.execute(definition)
        conn.execute("select setval(pg_get_serial_sequence('pages', 'id'), %s)", (max(plan.pages, 1),))
    return plan


def _drop_indexes(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "select i.indexname, i.indexdef from pg_indexes i where i.tablename in ('jobs', 'pages') "
        "and not exists (select 1 from pg_constraint c where c.conname = i.indexname)").fetchall()
    for name, _ in rows:
        conn.execute(f'DROP INDEX "{name}"')
    return [definition for _, definition in rows]


def _tenants(conn: psycopg.Connection, plan: Plan) -> None:
    plan.tenant_ids = [hashlib.md5(f"tenant{i}".encode()).hexdigest() for i in range(TENANTS)]
    plan.big_tenant = plan.tenant_ids[0]
    with conn.cursor() as cur, cur.copy("COPY tenants (id, name, created_at) FROM STDIN") as copy:
        for index, tenant in enumerate(plan.tenant_ids):
            copy.write_row((tenant, f"scale-tenant-{index}", datetime.now(timezone.utc)))


def _jobs_and_pages(conn: psycopg.Connection, plan: Plan, counts: list[int], now: datetime,
                    rng: random.Random, log: Callable[[str], None]) -> None:
    jobs = Loader(conn, "jobs", JOB_COLUMNS)
    pages = Loader(conn, "pages", PAGE_COLUMNS)
    batches = Loader(conn, "batches", ["id", "tenant_id", "source", "options", "entries",
                                       "created_at", "sealed_at", "finished_at"])
    first_open = int(len(counts) * (1 - OPEN_SHARE))
    running_left = min(RUNNING_PAGES, len(counts) // 100)
    expired_left, batch = min(EXPIRED_LEASES, running_left // 4), None
    for index, count in enumerate(counts):
        is_open = index >= first_open
        status = _pick(OPEN_MIX if is_open else FINAL_MIX, rng)
        live = len(counts) - index <= 2 * LIVE_JOBS  # heartbeats keep these fresh
        if live:
            status = "splitting" if index % 2 else "assembling"
        if is_open:
            created = now - BACKLOG + BACKLOG * (index - first_open) / max(len(counts) - first_open, 1)
        else:
            created = now - HISTORY + (HISTORY - BACKLOG) * index / max(first_open, 1)
        tenant = plan.big_tenant if rng.random() < 0.5 else rng.choice(plan.tenant_ids[1:])
        batch, tenant = _batch_for(batches, plan, batch, index, tenant, created, is_open, rng)
        job_id = rng.randbytes(16).hex()
        states = page_states(status, count, rng)
        if status == "processing":
            plan.processing_jobs.append(job_id)
            if tenant == plan.big_tenant:
                plan.big_tenant_open_jobs.append(job_id)
            for i, state in enumerate(states):
                if state == "queued" and running_left > 0:
                    states[i], running_left = "running", running_left - 1
        elif status in ("succeeded", "partially_succeeded", "failed", "cancelled"):
            if len(plan.final_jobs) < 50_000:
                plan.final_jobs.append(job_id)
        plan.by_status[status] = plan.by_status.get(status, 0) + 1
        finished = created + timedelta(seconds=5 + 3 * count) if not is_open else None
        error = ("corrupt_document", "the PDF could not be read") if status == "failed" and not states else (
            ("all_pages_failed", "no page could be processed") if status == "failed" else (None, None))
        jobs.add((job_id, tenant, status, f"scan-{index:07d}.pdf", "application/pdf",
                  rng.randbytes(32).hex(), 50_000 * count, '{"tasks": ["ocr"], "max_tiles": 12}',
                  len(states) if status not in ("queued", "splitting") else None,
                  None, None, error[0], error[1], "f" if status != "cancelled" else "t", created,
                  now if live else finished or created, created + timedelta(seconds=1), finished,
                  batch[0] if batch else None))
        for page_no, state in enumerate(states, start=1):
            plan.pages += 1
            lease = None
            if state == "running":
                lease = now + timedelta(seconds=20)
                if expired_left > 0:
                    lease, expired_left = now - timedelta(seconds=40), expired_left - 1
            elif state == "queued" and len(plan.queued_page_ids) < 20_000:
                plan.queued_page_ids.append(plan.pages)
            pages.add(_page_row(plan.pages, job_id, tenant, page_no, state, lease, created))
        if (index + 1) % 100_000 == 0:
            log(f"fill: {index + 1} jobs, {plan.pages} pages")
    for loader in (batches, jobs, pages):
        loader.flush()


def _batch_for(batches: Loader, plan: Plan, batch: tuple[str, int] | None, index: int, tenant: str,
               created: datetime, is_open: bool, rng: random.Random
               ) -> tuple[tuple[str, int] | None, str]:
    """Continue the current batch (same tenant) or, for 5 % of jobs, start one of 100."""
    if batch is not None and batch[1] > 0:
        return (batch[0], batch[1] - 1), plan.batch_tenant
    if rng.random() >= BATCH_SHARE / BATCH_SIZE:
        return None, tenant
    batch_id = rng.randbytes(16).hex()
    plan.batch_ids.append(batch_id)
    plan.batch_tenant = tenant
    batches.add((batch_id, tenant, "archive", "{}", "[]", created, created,
                 None if is_open else created + timedelta(hours=1)))
    return (batch_id, BATCH_SIZE - 1), tenant


def _page_row(page_id: int, job_id: str, tenant: str, page_no: int, state: str,
              lease: datetime | None, created: datetime) -> tuple:
    done = state == "done"
    finished = created + timedelta(seconds=3 * page_no) if state in ("done", "failed", "dead") else None
    error = {"failed": ("engine_error", "RuntimeError: the engine failed"),
             "dead": ("worker_lost", "the page stopped its worker on all 3 attempts")}.get(state, (None, None))
    attempt = 0 if state == "queued" else (3 if state == "dead" else 1)
    return (page_id, job_id, tenant, page_no, state, attempt, lease,
            "gpu-1:1234" if state in ("running", "done") else None,
            f"{tenant}/{job_id}/pages/{page_no:05d}.png", 1654, 2339, None,
            f"{tenant}/{job_id}/results/{page_no:05d}.json" if done else None,
            PREVIEW if done else None, "rapidocr" if done else None,
            '{"ocr": 2.41, "batch_pages": 4.0}' if done else None, error[0], error[1],
            created, finished or created, finished)
