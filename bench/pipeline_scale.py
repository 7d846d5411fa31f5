"""Pipeline throughput with 1, 2 and 4 gpu workers on a CPU-bound engine, and the pipeline's own
overhead per page (queue + database + blob store, no inference), on PostgreSQL + Redis + S3.

    .venv/bin/python bench/pipeline_scale.py [--docs 48] [--busy 0.25]

The engine is the digest engine spinning the CPU for --busy seconds per page, so ideal
throughput is (cores / busy) pages/s; on a 2-core machine it flattens past 2 workers.
Overhead is measured with busy=0, batch 1, one worker: wall seconds per page minus nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tessera.synthetic import label_png  # noqa: E402
from tests.utils.services import stack_services  # noqa: E402
from tests.utils.tessera_procs import Stack, create_api_key, run_cli, tessera_env  # noqa: E402


def run(services: dict[str, str], work: Path, *, workers: int, busy: float, batch: int, docs: int) -> float:
    """Seconds to process `docs` one-page documents, from the first POST to the last success."""
    env = tessera_env({**services, "TESSERA_ENGINE": "digest", "TESSERA_DIGEST_BUSY_S": str(busy),
                       "TESSERA_ENGINE_BATCH_SIZE": str(batch), "TESSERA_HOME": str(work / "home")})
    key = create_api_key(env, "bench")
    with Stack(env, work, gpu_workers=workers) as stack:
        client = stack.server.client(key)
        client.wait(client.submit(label_png("warm-up"), "warm.png").json()["id"])  # engine + connections warm
        started = time.perf_counter()
        ids = [client.submit(label_png(f"bench page {i}"), f"{i}.png").json()["id"] for i in range(docs)]
        for job_id in ids:
            assert client.wait(job_id, timeout=600)["status"] == "succeeded"
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=48)
    parser.add_argument("--busy", type=float, default=0.25)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    with stack_services(root) as services:
        run_cli(tessera_env(services), "migrate")
        seconds = run(services, root / "overhead", workers=1, busy=0.0, batch=1, docs=args.docs)
        print(f"pipeline overhead (digest, no work, batch 1, 1 worker): {1000 * seconds / args.docs:.0f} ms/page "
              f"({args.docs} one-page documents in {seconds:.1f} s, POST to succeeded, API included)")
        base = None
        for workers in (1, 2, 4):
            seconds = run(services, root / f"w{workers}", workers=workers, busy=args.busy, batch=1,
                          docs=args.docs)
            rate = args.docs / seconds
            base = base or rate
            print(f"{workers} gpu worker(s), CPU-bound engine {args.busy * 1000:.0f} ms/page: "
                  f"{rate:.2f} pages/s ({rate / base:.2f}x of 1 worker)")


if __name__ == "__main__":
    main()
