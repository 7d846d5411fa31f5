"""Runs the in-process workers of `tessera serve` as its children and restarts any that dies.

Subprocesses rather than threads: a worker forks its pool and loads the engine, neither of
which belongs in the API's process.

Two workers, as the production shape has them (docker-compose: a cpu and a gpu worker), not one
consuming every queue: inference (`gpu`) in one, splitting, assembling and webhooks (`cpu`,
`webhooks`) in the other. With one process the stages ran one after another, so every second
spent rendering a page, encoding it or building a document's searchable PDF was a second the
engine stood still; in two they overlap, and the split and assemble work runs on the CPU time
the engine leaves idle (rapidocr's two threads keep about 1.3-1.5 of two cores busy;
bench/pipeline_ratio.py). One inference process, so two engines never compete for the cores or
hold the model twice.
"""

from __future__ import annotations

import ctypes
import functools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

import structlog

log = structlog.get_logger(__name__)
RESTART_DELAY_S = 2.0
PR_SET_PDEATHSIG = 1
# One worker process per entry: (queues, niceness). The split/assemble worker runs at a lower
# priority (nice +10): on one machine the engine is the bottleneck, so when both want the cores
# the engine gets them, and rendering and PDF building fill the time it leaves idle. At equal
# priority the engine ran about 15% slower beside them (bench/pipeline_ratio.py).
EMBEDDED_WORKERS = (("gpu", 0), ("cpu,webhooks", 10))


def _child_setup(niceness: int) -> None:
    """Runs in the child before exec: the kernel sends it SIGTERM when `serve` dies, however
    it dies (even SIGKILL), so no worker outlives its server; then its niceness."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if niceness:
        os.nice(niceness)


class WorkerSupervisor:
    """`workers`: one `tessera worker --queues ...` process per (queues, niceness) entry, each
    of `concurrency`."""

    def __init__(self, workers: Sequence[tuple[str, int]] = EMBEDDED_WORKERS, concurrency: int = 1):
        self.workers, self.concurrency = list(workers), concurrency
        self.processes: list[subprocess.Popen | None] = [None] * len(self.workers)
        self.restarts = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)

    def start(self) -> None:
        self.processes = [self._spawn(index) for index in range(len(self.workers))]
        self._thread.start()

    def _spawn(self, index: int) -> subprocess.Popen:
        queues, niceness = self.workers[index]
        argv = [sys.executable, "-m", "tessera.cli", "worker", "--queues", queues,
                "--concurrency", str(self.concurrency)]
        return subprocess.Popen(argv, preexec_fn=functools.partial(_child_setup, niceness))  # noqa: PLW1509

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            for index, process in enumerate(self.processes):
                if process is not None and process.poll() is not None:
                    log.warning("worker.exited", queues=self.workers[index][0], code=process.returncode,
                                restarts=self.restarts)
                    time.sleep(RESTART_DELAY_S)
                    if self._stopping.is_set():
                        return
                    self.processes[index] = self._spawn(index)
                    self.restarts += 1

    def check(self) -> None:
        """Raise unless every worker process is running (used by /readyz)."""
        for (queues, _), process in zip(self.workers, self.processes):
            if process is None or process.poll() is not None:
                raise RuntimeError(f"the in-process worker for {queues} is not running")

    def stop(self, timeout: float = 20.0) -> None:
        self._stopping.set()
        running = [process for process in self.processes if process is not None and process.poll() is None]
        for process in running:
            process.terminate()
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
