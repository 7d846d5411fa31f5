"""Seconds for a page to come back after its gpu worker is SIGKILLed mid-page, with the
production defaults (lease 30 s, sweep every 15 s) unless told otherwise.

    .venv/bin/python bench/kill_recovery.py [--lease 30] [--sweep 15] [--runs 3]

Each run: a one-page document whose inference takes 4 s; once the page is `running`, the
whole worker is SIGKILLed and a new one started at once; the figure is kill -> page `done`.
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

from tessera.synthetic import label_png  # noqa: E402
from tests.utils.services import stack_services  # noqa: E402
from tests.utils.tessera_procs import Stack, create_api_key, run_cli, tessera_env  # noqa: E402


def one_run(stack: Stack, client, index: int) -> float:  # noqa: ANN001
    job_id = client.submit(label_png(f"kill run {index}"), "p.png").json()["id"]
    while client.http.get(f"/v1/jobs/{job_id}/pages/1").json().get("status") != "running":
        time.sleep(0.05)
    killed = time.perf_counter()
    stack.kill_gpu()
    while client.http.get(f"/v1/jobs/{job_id}/pages/1").json().get("status") != "done":
        time.sleep(0.1)
    return time.perf_counter() - killed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lease", type=float, default=30.0)
    parser.add_argument("--sweep", type=float, default=15.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-kill-"))
    with ExitStack() as stack_:
        services = stack_.enter_context(stack_services(root))
        env = tessera_env({**services, "TESSERA_ENGINE": "digest", "TESSERA_DIGEST_DELAY_S": "4",
                           "TESSERA_LEASE_S": str(args.lease), "TESSERA_SWEEP_INTERVAL_S": str(args.sweep),
                           "TESSERA_HOME": str(root / "home")})
        run_cli(env, "migrate")
        key = create_api_key(env, "bench")
        stack = stack_.enter_context(Stack(env, root))
        client = stack.server.client(key)
        seconds = [one_run(stack, client, i) for i in range(args.runs)]
    print(f"lease {args.lease:.0f} s, sweep every {args.sweep:.0f} s: page back to done after a worker "
          f"SIGKILL in median {statistics.median(seconds):.1f} s (runs: {' '.join(f'{s:.1f}' for s in seconds)}; "
          f"includes 4 s of inference and a worker restart)")


if __name__ == "__main__":
    main()
