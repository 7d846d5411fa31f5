"""Runs `tessera worker` as a child of `tessera serve` and restarts it if it dies.

A subprocess rather than a thread: the worker forks its pool and loads the
engine, neither of which belongs in the API's process.
"""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import threading
import time

import structlog

log = structlog.get_logger(__name__)
RESTART_DELAY_S = 2.0
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: the kernel sends it SIGTERM when `serve` dies, however
    it dies (even SIGKILL), so no worker outlives its server."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class WorkerSupervisor:
    def __init__(self, queues: str = "cpu,gpu,webhooks", concurrency: int = 1):
        self.argv = [sys.executable, "-m", "tessera.cli", "worker", "--queues", queues,
                     "--concurrency", str(concurrency)]
        self.process: subprocess.Popen | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)

    def start(self) -> None:
        self.process = self._spawn()
        self._thread.start()

    def _spawn(self) -> subprocess.Popen:
        return subprocess.Popen(self.argv, preexec_fn=_die_with_parent)  # noqa: PLW1509

    def _watch(self) -> None:
        while not self._stopping.wait(0.5):
            if self.process is not None and self.process.poll() is not None:
                log.warning("worker.exited", code=self.process.returncode, restarts=self.restarts)
                time.sleep(RESTART_DELAY_S)
                if not self._stopping.is_set():
                    self.process = self._spawn()
                    self.restarts += 1

    def check(self) -> None:
        """Raise unless the worker process is running (used by /readyz)."""
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError("the in-process worker is not running")

    def stop(self, timeout: float = 20.0) -> None:
        self._stopping.set()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
