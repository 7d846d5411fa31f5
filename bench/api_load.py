"""API throughput under concurrent clients: submissions per second (POST /v1/jobs) and the
latency of GET /v1/jobs/{id} and GET /v1/jobs, against a `tessera serve` started here on the
embedded defaults (SQLite, local blobs, filesystem queue, in-process worker) with the digest
engine, on loopback.

    .venv/bin/python bench/api_load.py [--threads 8] [--submissions 200] [--gets 2000]
                                       [--seconds 30]

Each phase stops at its request count or after --seconds, whichever comes first. The worker
processes the submitted jobs meanwhile, as it would in production, so reads compete with it.
"""

from __future__ import annotations

import argparse
import io
import itertools
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tessera.synthetic import render_text_page  # noqa: E402
from tests.utils.tessera_procs import Server, create_api_key, tessera_env  # noqa: E402


def png_page() -> bytes:
    buffer = io.BytesIO()
    render_text_page(["Tessera load test"], size=(600, 300)).save(buffer, "PNG")
    return buffer.getvalue()


Request = Callable[[httpx.Client, int], httpx.Response]


def hammer(threads: int, count: int, seconds: float, make_client: Callable[[], httpx.Client],
           request: Request) -> tuple[list[float], float, list[dict]]:
    """Run `request` up to `count` times on `threads` threads for at most `seconds`.
    Returns (latencies in s, wall time in s, the JSON bodies of the responses)."""
    counter, lock = itertools.count(), threading.Lock()
    latencies: list[float] = []
    results: list[dict] = []
    deadline = time.monotonic() + seconds

    def work() -> None:
        with make_client() as client:
            while time.monotonic() < deadline:
                with lock:
                    n = next(counter)
                if n >= count:
                    return
                started = time.perf_counter()
                response = request(client, n)
                elapsed = time.perf_counter() - started
                if response.status_code >= 400:
                    raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
                with lock:
                    latencies.append(elapsed)
                    results.append(response.json())

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(work) for _ in range(threads)]:
            future.result()
    return latencies, time.perf_counter() - started, results


def describe(name: str, latencies: list[float], wall: float) -> str:
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    rate = len(ordered) / wall
    return (f"{name:28s} {len(ordered):5d} requests in {wall:6.2f} s = {rate:7.1f} req/s   "
            f"p50 {statistics.median(ordered) * 1000:7.2f} ms   p99 {p99 * 1000:7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--submissions", type=int, default=200)
    parser.add_argument("--gets", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=30.0, help="time bound per phase")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-api-"))
    env = tessera_env({"TESSERA_HOME": str(work / "home"), "TESSERA_ENGINE": "digest"})
    key = create_api_key(env, "bench")
    server = Server(env, work / "serve.log").start()  # 127.0.0.1 only
    headers = {"Authorization": f"Bearer {key}"}

    def client() -> httpx.Client:
        return httpx.Client(base_url=server.url, headers=headers, timeout=60)

    document, ids = png_page(), []

    def submit(http: httpx.Client, n: int) -> httpx.Response:
        return http.post("/v1/jobs", files={"file": (f"p{n}.png", document)})

    def get(http: httpx.Client, n: int) -> httpx.Response:
        return http.get(f"/v1/jobs/{ids[n % len(ids)]}")

    def listing(http: httpx.Client, n: int) -> httpx.Response:
        return http.get("/v1/jobs", params={"limit": 50})

    try:
        hammer(1, 5, args.seconds, client, submit)  # warm-up: imports, connection pools
        latencies, wall, jobs = hammer(args.threads, args.submissions, args.seconds, client, submit)
        ids += [job["id"] for job in jobs]
        print(f"tessera serve (embedded defaults, digest engine), {args.threads} client threads, "
              "loopback")
        print(describe("POST /v1/jobs (1-page PNG)", latencies, wall))
        print(describe("GET /v1/jobs/{id}", *hammer(args.threads, args.gets, args.seconds, client, get)[:2]))
        print(describe("GET /v1/jobs?limit=50",
                       *hammer(args.threads, args.gets // 4, args.seconds, client, listing)[:2]))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
