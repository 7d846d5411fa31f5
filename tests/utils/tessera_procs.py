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
from collections.abc import Callable
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
    # Tests and benches send hundreds of requests a minute from one tenant: rate limiting is
    # off unless a test turns it on (tests/security/test_rate_limit.py).
    env.update({"PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "TESSERA_RATE_LIMIT_PER_MINUTE": "0"})
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

    def wait(
        self, job_id: str, timeout: float = 180.0, each_poll: Callable[[], object] | None = None
    ) -> dict[str, Any]:
        """Poll until the job is final. A 503 (a dependency briefly down) is waited out; any
        other error status fails the test. `each_poll()` runs before every poll."""
        deadline, job = time.monotonic() + timeout, {"status": "unknown"}
        while time.monotonic() < deadline:
            if each_poll is not None:
                each_poll()
            response = self.http.get(f"/v1/jobs/{job_id}")
            if response.status_code != 503:
                response.raise_for_status()
                job = response.json()
                if job["status"] in FINAL:
                    return job
            time.sleep(0.3)
        raise TimeoutError(f"job {job_id} still {job['status']} after {timeout:.0f} s")


def wait_for_idle_workers(broker_url: str, timeout: float = 60.0) -> None:
    """Wait until the workers on this Redis broker have nothing left: every queue empty and no
    message delivered but unacknowledged (tasks acknowledge late, so a running or prefetched
    task keeps its message in kombu's `unacked` hash). Seen twice in a row, 0.2 s apart."""
    import redis

    deadline, quiet = time.monotonic() + timeout, 0
    with redis.Redis.from_url(broker_url) as broker:
        while quiet < 2:
            queued = sum(broker.llen(key) for key in broker.scan_iter(match="*")
                         if broker.type(key) == b"list")
            quiet = quiet + 1 if queued == 0 and broker.hlen("unacked") == 0 else 0
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers still busy after {timeout:.0f} s ({queued} queued)")
            time.sleep(0.2)


def child_pids(pid: int) -> list[int]:
    """Direct children of a process (from /proc), e.g. a Celery worker's pool processes."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


class Stack:
    """API (`serve --no-worker`, which runs the sweeper) + a cpu worker + gpu workers (+ a
    webhooks worker if asked), on one env."""

    def __init__(self, env: dict[str, str], logs: Path, gpu_workers: int = 1, start_gpu: bool = True,
                 webhooks: bool = False, cpu_concurrency: int = 1):
        self.env, self.logs = env, logs
        self.server = Server(env, logs / "serve.log", worker=False)
        self.cpu = TesseraProcess(["worker", "--queues", "cpu", "--concurrency", str(cpu_concurrency)],
                                  env, logs / "cpu.log")
        self.gpus = [self._gpu(i) for i in range(gpu_workers)]
        self.webhooks = (TesseraProcess(["worker", "--queues", "webhooks"], env, logs / "webhooks.log")
                         if webhooks else None)
        self.start_gpu = start_gpu

    def _gpu(self, index: int) -> TesseraProcess:
        return TesseraProcess(["worker", "--queues", "gpu"], self.env, self.logs / f"gpu-{index}.log")

    def workers(self) -> dict[str, TesseraProcess]:
        named = {"cpu": self.cpu, **{f"gpu-{i}": gpu for i, gpu in enumerate(self.gpus)}}
        return {**named, **({"webhooks": self.webhooks} if self.webhooks else {})}

    def __enter__(self) -> Stack:
        for name, process in self.workers().items():
            if self.start_gpu or not name.startswith("gpu"):
                process.start()
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for process in (self.server, *self.workers().values()):
            process.stop(signal.SIGKILL, timeout=5)

    def start_gpus(self) -> None:
        for gpu in self.gpus:
            gpu.start()

    def supervise(self) -> list[str]:
        """Restart any process that has exited, as the deployments do (docker-compose
        `restart: unless-stopped`, Kubernetes). Celery's main process can die when a pool
        child is SIGKILLed at a bad moment (celery/celery#5690); returns what was restarted."""
        restarted = []
        for name, process in (("serve", self.server), *self.workers().items()):
            if process.proc is not None and process.proc.poll() is not None:
                restarted.append(f"{name} (exit {process.proc.returncode})")
                process.start()
        return restarted

    def kill(self, name: str) -> None:
        """SIGKILL a worker (main process and pool) and start a fresh one."""
        process = self.workers()[name]
        process.stop(signal.SIGKILL, timeout=5)
        process.start()

    def kill_gpu(self, index: int = 0) -> None:
        self.kill(f"gpu-{index}")

    def wait_until_workers_ready(self, timeout: float = 60.0) -> None:
        """Until every worker has logged Celery's `ready.` (connected, consuming)."""
        def ready() -> bool:
            return all(p.log.exists() and " ready." in p.log.read_text(errors="replace")
                       for p in self.workers().values())

        _wait_until(ready, timeout, "the workers to be ready")

    def gpu_logs(self) -> str:
        return "\n".join(p.log.read_text(errors="replace") for p in self.gpus if p.log.exists())


def pid_owning_connection(local_port: int, remote_port: int) -> int | None:
    """The process holding the TCP connection 127.0.0.1:local_port -> 127.0.0.1:remote_port
    (from /proc/net/tcp and each process's socket descriptors), e.g. the worker that is
    sending a webhook to a test's receiver, seen from the receiver's side."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = (int(address.split(":")[1], 16) for address in fields[1:3])
        if (local, remote) == (local_port, remote_port):
            inode = fields[9]
    if inode is None:
        return None
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd) == f"socket:[{inode}]":
                return int(fd.parts[2])
        except OSError:
            continue
    return None


def s3_client(env: dict[str, str]):  # noqa: ANN201 (boto3 clients are untyped)
    """A boto3 S3 client for the test S3 server described by a stack_env-style dict."""
    import boto3

    return boto3.client("s3", endpoint_url=env["TESSERA_S3_ENDPOINT_URL"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                        region_name=env["AWS_DEFAULT_REGION"])
