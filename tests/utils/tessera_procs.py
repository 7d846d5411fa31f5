"""Tessera's own processes for end-to-end tests: `tessera serve`, `tessera worker`, and an API client.

Each process is the real CLI in a subprocess with its own environment, so a
test exercises exactly what a user runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.utils.services import _log_tail, _spawn, _stop, _wait_until, free_port

FINAL = {"succeeded", "partially_succeeded", "failed", "cancelled"}
SERVE_STARTUP_S = 60.0


def tessera_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "tessera.cli", *args]


def tessera_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TESSERA_")}
    env.update({"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"})
    env.update(extra)
    return env


def run_cli(env: dict[str, str], *args: str) -> str:
    """Run a tessera command to completion; returns stdout."""
    proc = subprocess.run(tessera_cmd(*args), env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"tessera {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def create_api_key(env: dict[str, str], tenant: str) -> str:
    return run_cli(env, "api-key", "create", "--tenant", tenant).strip().splitlines()[-1]


class TesseraProcess:
    """One tessera CLI process (serve or worker) with a log file; stop() is always safe."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.args, self.env, self.log = args, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> TesseraProcess:
        self.proc = _spawn(tessera_cmd(*self.args), self.log, Path.cwd(), env=self.env)
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        _stop(self.proc, sig, timeout)

    def tail(self) -> str:
        return _log_tail(self.log, 60)


class Server(TesseraProcess):
    """`tessera serve` on a free port; `start()` waits until /readyz says ready."""

    def __init__(self, env: dict[str, str], log: Path, *, worker: bool = True, port: int | None = None):
        self.port = port or free_port()
        args = ["serve", "--port", str(self.port)] + ([] if worker else ["--no-worker"])
        super().__init__(args, env, log)
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        super().start()
        try:
            _wait_until(self._ready, SERVE_STARTUP_S, "tessera serve to be ready", self.proc)
        except (TimeoutError, RuntimeError) as exc:
            self.stop(signal.SIGKILL)
            raise RuntimeError(f"{exc}\n--- {self.log} ---\n{self.tail()}") from None
        return self

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def client(self, api_key: str) -> ApiClient:
        return ApiClient(self.url, api_key)


class ApiClient:
    def __init__(self, url: str, api_key: str):
        self.http = httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {api_key}"})

    def submit(self, data: bytes, filename: str = "doc.pdf", options: dict | None = None,
               headers: dict[str, str] | None = None) -> httpx.Response:
        import json

        form = {"options": json.dumps(options)} if options is not None else None
        return self.http.post("/v1/jobs", files={"file": (filename, data)}, data=form, headers=headers)

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.http.get(f"/v1/jobs/{job_id}")
        response.raise_for_status()
        return response.json()

    def wait(self, job_id: str, timeout: float = 180.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.job(job_id)
            if job["status"] in FINAL:
                return job
            time.sleep(0.3)
        raise TimeoutError(f"job {job_id} still {job['status']} after {timeout:.0f} s")
