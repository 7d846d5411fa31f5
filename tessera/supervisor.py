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
EMBEDDED_QUEUES = ("gpu", "cpu,webhooks")  # one worker process per entry


def _die_with_parent() -> None:
    """Runs in the child before exec: the kernel sends it SIGTERM when `serve` dies, however
    it dies (even SIGKILL), so no worker outlives its server."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class WorkerSupervisor:
    """`queues`: one `tessera worker --queues ...` process per entry, each of `concurrency`."""

    def __init__(self, queues: Sequence[str] = EMBEDDED_QUEUES, concurrency: int = 1):
        self.queues = list(queues)
        self.argvs = [[sys.executable, "-m", "tessera.cli", "worker", "--queues", names,
                       "--concurrency", str(concurrency)] for names in self.queues]
        self.processes: list[subprocess.Popen | None] = [None] * len(self.argvs)
        self.restarts = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)

    def start(self) -> None:
        self.processes = [self._spawn(argv) for argv in self.argvs]
        self._thread.start()

    @staticmethod
    def _spawn(argv: list[str]) -> subprocess.Popen:
        return subprocess.Popen(argv, preexec_fn=_die_with_parent)  # noqa: PLW1509

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            for index, process in enumerate(self.processes):
                if process is not None and process.poll() is not None:
                    log.warning("worker.exited", queues=self.queues[index], code=process.returncode,
                                restarts=self.restarts)
                    time.sleep(RESTART_DELAY_S)
                    if self._stopping.is_set():
                        return
                    self.processes[index] = self._spawn(self.argvs[index])
                    self.restarts += 1

    def check(self) -> None:
        """Raise unless every worker process is running (used by /readyz)."""
        for names, process in zip(self.queues, self.processes):
            if process is None or process.poll() is not None:
                raise RuntimeError(f"the in-process worker for {names} is not running")

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
