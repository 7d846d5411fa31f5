"""Seconds from POST /v1/jobs to `succeeded` for a 3-page document, on the embedded defaults
and on PostgreSQL + Redis + S3 (servers started here, as the tests start them).

    .venv/bin/python bench/submit_latency.py [--engine rapidocr|digest] [--runs 3]

Prints one line per run and the median per mode. rapidocr measures the whole product path;
digest isolates the pipeline's own overhead (queue + database + blob store).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.utils.services import stack_services  # noqa: E402
from tests.utils.tessera_procs import Server, TesseraProcess, create_api_key, run_cli, tessera_env  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "english-prose.pdf"


def measure(server: Server, key: str, runs: int) -> list[float]:
    client = server.client(key)
    data = SAMPLE.read_bytes()
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        job = client.wait(client.submit(data, SAMPLE.name).json()["id"], timeout=600)
        assert job["status"] == "succeeded", job
        seconds.append(time.perf_counter() - started)
    return seconds


def embedded(work: Path, engine: str, runs: int) -> list[float]:
    env = tessera_env({"TESSERA_HOME": str(work / "home"), "TESSERA_ENGINE": engine})
    key = create_api_key(env, "bench")
    server = Server(env, work / "serve.log").start()
    try:
        measure(server, key, 1)  # warm-up: engine load
        return measure(server, key, runs)
    finally:
        server.stop()


def stack(work: Path, engine: str, runs: int) -> list[float]:
    with ExitStack() as stack_:
        services = stack_.enter_context(stack_services(work / "services"))
        env = tessera_env({**services, "TESSERA_ENGINE": engine, "TESSERA_HOME": str(work / "home")})
        run_cli(env, "migrate")
        key = create_api_key(env, "bench")
        worker = TesseraProcess(["worker", "--queues", "cpu,gpu"], env, work / "worker.log").start()
        stack_.callback(worker.stop)
        server = Server(env, work / "serve.log", worker=False).start()
        stack_.callback(server.stop)
        measure(server, key, 1)
        return measure(server, key, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="rapidocr", choices=["rapidocr", "digest"])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for mode, run in (("embedded", embedded), ("postgres+redis+s3", stack)):
        for path in (Path(tempfile.mkdtemp(prefix=f"bench-{mode[:3]}-")),):
            path.chmod(0o755)
            seconds = run(path, args.engine, args.runs)
        runs = " ".join(f"{s:.2f}" for s in seconds)
        print(f"{mode:18s} engine={args.engine:8s} 3-page PDF, POST -> succeeded: median "
              f"{statistics.median(seconds):.2f} s  (runs: {runs})")


if __name__ == "__main__":
    main()
