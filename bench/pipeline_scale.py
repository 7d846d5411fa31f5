"""The pipeline's own cost per page (queue + database + blob store, no inference) on PostgreSQL +
Redis + S3, where the CPU goes, and throughput with 1, 2 and 4 gpu workers on a CPU-bound engine.

    .venv/bin/python bench/pipeline_scale.py [--docs 48] [--pages 12] [--s3-latency-ms 20]
                                             [--busy 0.25] [--no-scaling]

Overhead runs use the digest engine with no work (busy 0): wall seconds per page from the first
POST to the last job succeeded, API included, and the CPU seconds each process spent meanwhile
(from /proc; moto, PostgreSQL and Redis share this machine's cores with Tessera). Four shapes:
- one-page documents, batch 1, one cpu worker process: the issue's original measure;
- one-page and --pages-page documents in the production shape (docker-compose.yml and
  infra/k8s: cpu workers with --concurrency 2, TESSERA_ENGINE_BATCH_SIZE 4, the default);
- the same multi-page run with S3 behind a gate that holds back every answer chunk by
  --s3-latency-ms, as far away as a real bucket.
The scaling runs spin the CPU for --busy seconds per page, so ideal throughput is
(cores / busy) pages/s; on a 2-core machine it flattens past 2 workers.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import img2pdf  # noqa: E402

from tessera.synthetic import label_png  # noqa: E402
from tests.utils.services import TcpGate, stack_services  # noqa: E402
from tests.utils.tessera_procs import Stack, create_api_key, run_cli, tessera_env  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROCESS_KINDS = (("--queues cpu", "cpu worker"), ("--queues gpu", "gpu worker"), ("cli serve", "api"),
                 ("moto.server", "S3 (moto)"), ("postgres", "postgres"), ("redis-server", "redis"))


@dataclass
class Shape:
    label: str
    pages: int  # per document
    batch: int
    cpu_concurrency: int
    s3_latency_ms: float = 0.0


def documents(count: int, pages: int) -> list[tuple[bytes, str]]:
    """Distinct documents: PNGs when one page, else PDFs of `pages` labelled images."""
    if pages == 1:
        return [(label_png(f"bench page {i}"), f"{i}.png") for i in range(count)]
    return [(img2pdf.convert([label_png(f"doc {i} page {n}") for n in range(pages)]), f"{i}.pdf")
            for i in range(count)]


def cpu_seconds() -> dict[int, tuple[str, float]]:
    """Every process's command line and CPU seconds so far (user + system)."""
    seen = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        seen[int(pid)] = (command, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    return seen


def cpu_by_kind(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    spent: dict[str, float] = {}
    for pid, (command, seconds) in after.items():
        kind = next((name for needle, name in PROCESS_KINDS if needle in command), "other")
        spent[kind] = spent.get(kind, 0.0) + seconds - before.get(pid, (command, 0.0))[1]
    return spent


@contextlib.contextmanager
def s3_at_distance(services: dict[str, str], latency_ms: float) -> Iterator[dict[str, str]]:
    if not latency_ms:
        yield services
        return
    port = int(services["TESSERA_S3_ENDPOINT_URL"].rstrip("/").rsplit(":", 1)[1])
    with TcpGate(port, latency_s=latency_ms / 1000) as gate:
        yield {**services, "TESSERA_S3_ENDPOINT_URL": f"http://127.0.0.1:{gate.port}"}


def run(services: dict[str, str], work: Path, *, workers: int, busy: float, batch: int, docs: int,
        pages: int = 1, cpu_concurrency: int = 1) -> tuple[float, dict[str, float]]:
    """Seconds to process `docs` documents of `pages` pages, from the first POST to the last
    success, and the CPU seconds spent meanwhile by kind of process."""
    work.mkdir(parents=True, exist_ok=True)
    env = tessera_env({**services, "TESSERA_ENGINE": "digest", "TESSERA_DIGEST_BUSY_S": str(busy),
                       "TESSERA_ENGINE_BATCH_SIZE": str(batch), "TESSERA_HOME": str(work / "home")})
    key = create_api_key(env, "bench")
    bodies = documents(docs, pages)
    with Stack(env, work, gpu_workers=workers, cpu_concurrency=cpu_concurrency) as stack:
        client = stack.server.client(key)
        client.wait(client.submit(label_png("warm-up"), "warm.png").json()["id"])  # engine + connections warm
        before, started = cpu_seconds(), time.perf_counter()
        ids = [client.submit(body, name).json()["id"] for body, name in bodies]
        for job_id in ids:
            assert client.wait(job_id, timeout=600)["status"] == "succeeded"
        seconds = time.perf_counter() - started
        return seconds, cpu_by_kind(before, cpu_seconds())


def overhead(services: dict[str, str], root: Path, shape: Shape, docs: int) -> None:
    with s3_at_distance(services, shape.s3_latency_ms) as reached:
        seconds, cpu = run(reached, root / shape.label.replace(" ", "-"), workers=1, busy=0.0,
                           batch=shape.batch, docs=docs, pages=shape.pages,
                           cpu_concurrency=shape.cpu_concurrency)
    total = docs * shape.pages
    spent = ", ".join(f"{kind} {1000 * cpu.get(kind, 0.0) / total:.1f}"
                      for kind in [name for _, name in PROCESS_KINDS] + ["other"])
    print(f"{shape.label}: {1000 * seconds / total:.1f} ms/page ({docs} x {shape.pages}-page documents "
          f"in {seconds:.1f} s); CPU ms/page: {spent}; all {1000 * sum(cpu.values()) / total:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=48, help="one-page documents per run")
    parser.add_argument("--pages", type=int, default=12, help="pages of the multi-page documents")
    parser.add_argument("--s3-latency-ms", type=float, default=20.0)
    parser.add_argument("--busy", type=float, default=0.25)
    parser.add_argument("--no-scaling", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    multi_docs = max(1, args.docs // args.pages * 2)  # about twice the one-page runs' pages
    with stack_services(root) as services:
        run_cli(tessera_env(services), "migrate")
        print("pipeline overhead, digest engine with no work, PG + Redis + S3 on this machine:")
        overhead(services, root, Shape("one-page, batch 1, 1 cpu process", 1, 1, 1), args.docs)
        overhead(services, root, Shape("one-page, production shape", 1, 4, 2), args.docs)
        overhead(services, root, Shape(f"{args.pages}-page, production shape", args.pages, 4, 2), multi_docs)
        overhead(services, root, Shape(f"{args.pages}-page, production shape, S3 +{args.s3_latency_ms:g} ms "
                                       "a chunk", args.pages, 4, 2, args.s3_latency_ms), multi_docs)
        if args.no_scaling:
            return
        base = None
        for workers in (1, 2, 4):
            seconds, _ = run(services, root / f"w{workers}", workers=workers, busy=args.busy, batch=1,
                             docs=args.docs)
            rate = args.docs / seconds
            base = base or rate
            print(f"{workers} gpu worker(s), CPU-bound engine {args.busy * 1000:.0f} ms/page: "
                  f"{rate:.2f} pages/s ({rate / base:.2f}x of 1 worker)")


if __name__ == "__main__":
    main()
