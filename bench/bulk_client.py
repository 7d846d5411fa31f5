"""`tessera submit` on many small documents: wall time, requests made and the client's peak
memory, against a real stack (PostgreSQL + Redis + S3, `tessera serve --no-worker`, one
`tessera worker --concurrency 2`, digest engine) on this machine.

    .venv/bin/python bench/bulk_client.py [--documents 2000] [--concurrency 8] [--old-client SRC]

The documents are one-page PDFs in 20 folders, the same file names in every folder. The client
counts its own requests (its summary line). `--old-client SRC` also runs the `tessera submit
--watch --out` of another checkout (e.g. main) on the same documents, behind a counting proxy
(tests/utils/front.py), for its request count; its wall time includes the proxy.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.worker_soak import rss_mb  # noqa: E402
from tests.api.helpers import pdf  # noqa: E402
from tests.utils.front import Front  # noqa: E402
from tests.utils.services import stack_services  # noqa: E402
from tests.utils.tessera_procs import (  # noqa: E402
    Server,
    TesseraProcess,
    create_api_key,
    run_cli,
    tessera_cmd,
    tessera_env,
)

FOLDERS = 20


def make_tree(root: Path, count: int) -> None:
    for index in range(count):
        path = root / f"folder-{index % FOLDERS:02d}" / f"scan-{index // FOLDERS:04d}.pdf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pdf(1, f"d{index}"))


def timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB, output) of a command, its memory sampled every 0.2 s."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    peak = [0.0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], rss_mb(proc.pid) or 0.0)
            time.sleep(0.2)

    threading.Thread(target=sample, daemon=True).start()
    output, _ = proc.communicate()
    return time.perf_counter() - started, peak[0], output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--old-client", help="repository root of another checkout to compare")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-bulk-"))
    make_tree(root / "archive", args.documents)
    with stack_services(root / "services") as services:
        env = tessera_env({**services, "TESSERA_ENGINE": "digest", "TESSERA_HOME": str(root / "home")})
        run_cli(env, "migrate")
        key = create_api_key(env, "bulk")
        worker = TesseraProcess(["worker", "--queues", "cpu,gpu", "--concurrency", "2"], env,
                                root / "worker.log").start()
        server = Server(env, root / "serve.log", worker=False).start()
        client_env = {**env, "TESSERA_API_KEY": key, "TESSERA_SERVER": server.url}
        try:
            seconds, peak, output = timed(tessera_cmd(
                "submit", str(root / "archive"), "--out", str(root / "out"), "--progress", "plain",
                "--concurrency", str(args.concurrency)), client_env)
            print(re.search(r"^\d+ documents in .*$", output, re.M).group(0))
            requests = re.search(r"requests: .*", output).group(0)
            files = sum(1 for _ in (root / "out").rglob("*.json"))
            print(f"tessera submit, {args.documents} one-page documents, concurrency {args.concurrency}: "
                  f"{seconds:.1f} s wall, peak RSS {peak:.0f} MB, {requests}; {files} JSON results")
            if args.old_client:
                old(args.old_client, root, server.url, client_env)
        finally:
            server.stop()
            worker.stop()


def old(source: str, root: Path, server: str, env: dict[str, str]) -> None:
    """The other checkout's client on the same documents (new jobs: its own tenant)."""
    key = create_api_key(env, "bulk-old")
    with Front(server) as front:
        old_env = {**env, "TESSERA_API_KEY": key, "PYTHONPATH": source}
        seconds, peak, output = timed(
            [sys.executable, "-m", "tessera.cli", "submit", str(root / "archive"), "--watch",
             "--out", str(root / "out-old"), "--server", front.url], old_env, cwd=Path(source))
        methods = {m: sum(1 for s in front.seen if s.method == m) for m in ("POST", "GET")}
    print(f"old client ({source}): {seconds:.1f} s wall (through the proxy), peak RSS {peak:.0f} MB, "
          f"{len(front.seen)} requests ({methods}); exit output tail: "
          f"{output.strip().splitlines()[-1][:120] if output.strip() else ''}")


if __name__ == "__main__":
    main()
