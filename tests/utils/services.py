"""Real PostgreSQL, Redis and S3 (moto) servers for tests, started by the test harness itself.

Why: Tessera's failure modes (lost connections, broker restarts, presigned uploads) only show up
against real servers, so tests talk to real processes instead of mocks. Every server here:

* binds 127.0.0.1 on a free port and keeps its files under a caller-given folder;
* runs in its own session (``start_new_session``), so Ctrl-C or a test's ``killpg`` aimed at the
  test's process group cannot kill it behind the harness's back; teardown stops it in order and a
  final ``killpg(SIGKILL)`` takes down any children (postgres backends) that outlive it;
* waits for readiness with a timeout and, on failure, raises with the tail of the server's log.

Heavy client libraries (psycopg, redis, boto3) are imported lazily so importing this module (from
conftest) costs nothing for tests that never ask for a server.

S3 callers must set dummy credentials, moto accepts any: ``S3_CLIENT_ENV`` below
(AWS_ACCESS_KEY_ID=testing, AWS_SECRET_ACCESS_KEY=testing, AWS_DEFAULT_REGION=us-east-1).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Self

S3_BUCKET = "tessera-test"
S3_CLIENT_ENV: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


# --------------------------------------------------------------------------- helpers


def free_port() -> int:
    """A TCP port free now on 127.0.0.1 (the OS picks it; a tiny race until the server binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float) -> None:
    """Block until something accepts TCP connections on host:port, else raise TimeoutError."""
    _wait_until(lambda: _port_open(host, port), timeout, f"{host}:{port} to accept connections")


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait_until(check: Callable[[], bool], timeout: float, what: str,
                proc: subprocess.Popen[bytes] | None = None) -> None:
    """Poll ``check`` until true; fail fast if ``proc`` died; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}) while waiting for {what}")
        if check():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def _log_tail(log: Path, lines: int = 40) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError as exc:
        return f"(no log at {log}: {exc})"
    return "\n".join(text) or "(log is empty)"


def _spawn(cmd: list[str], log: Path, cwd: Path, as_user: str | None = None,
           env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own session with stdout+stderr appended to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=cwd, env=env, start_new_session=True, user=as_user,
                                group=as_user, extra_groups=[] if as_user else None)


def _stop(proc: subprocess.Popen[bytes] | None, sig: int, timeout: float = STOP_TIMEOUT) -> None:
    """Send ``sig``, wait, then SIGKILL the process group (the server leads its own session)."""
    if proc is None:
        return
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # leftovers (e.g. orphaned postgres backends)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _started(proc: subprocess.Popen[bytes], ready: Callable[[], bool], what: str,
             log: Path) -> None:
    """Wait for readiness; on failure kill the process and raise with the log tail."""
    try:
        _wait_until(ready, STARTUP_TIMEOUT, what, proc)
    except (TimeoutError, RuntimeError) as exc:
        _stop(proc, signal.SIGKILL, timeout=2)
        raise RuntimeError(f"{exc}\n--- last lines of {log} ---\n{_log_tail(log)}") from None


# --------------------------------------------------------------------------- PostgreSQL


def _pg_bindir() -> Path:
    """Newest /usr/lib/postgresql/<major>/bin (Debian layout)."""
    dirs = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "postgres").exists()]
    if not dirs:
        raise RuntimeError("no /usr/lib/postgresql/*/bin/postgres (apt-get install postgresql)")
    return max(dirs, key=lambda p: [int(x) for x in p.parent.name.split(".") if x.isdigit()])


def _let_user_traverse(path: Path) -> None:
    """chmod o+x on ``path`` and its ancestors when missing: pytest's /tmp/pytest-of-root is 0700,
    and the postgres user must reach its data folder below it. Traverse only, never read."""
    for p in [path, *path.parents]:
        mode = p.stat().st_mode
        if not mode & stat.S_IXOTH:
            p.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


class PostgresServer:
    """A throwaway PostgreSQL cluster with a trusted superuser ``tessera`` and database ``tessera``.

    ``stop()``/``start()`` keep port and data dir, so a chaos test can take the database away and
    bring it back under the same URL. initdb and postgres refuse to run as root, so as root they run
    as the ``postgres`` system user. Instead of ``runuser -u postgres --`` the child setuids itself
    (``Popen(user=...)``): same effect, but no runuser process in between, so signals reach the
    postmaster directly and ``Popen.wait()`` sees postgres' own exit.
    """

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.bindir = _pg_bindir()
        self.datadir = workdir / "pgdata"
        self.sockdir = workdir / "pgsock"
        self.log = workdir / "postgres.log"
        self.port = free_port()
        self.url = f"postgresql://tessera@127.0.0.1:{self.port}/tessera"
        self._admin_url = f"postgresql://tessera@127.0.0.1:{self.port}/postgres"
        self._user = "postgres" if os.geteuid() == 0 else None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> Self:
        try:
            self.init()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def init(self) -> None:
        """initdb (fast: no fsync, C locale) into a fresh folder, then start and create the db."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if len(str(self.sockdir)) > 90:  # unix socket paths are capped at 107 bytes
            raise RuntimeError(f"workdir path too long for a unix socket: {self.sockdir}")
        for d in (self.datadir, self.sockdir):
            d.mkdir(mode=0o700)
            if self._user:
                os.chown(d, *_uid_gid(self._user))
        if self._user:
            _let_user_traverse(self.workdir)
        cmd = [str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", "tessera", "-A", "trust",
               "-E", "UTF8", "--locale=C", "--no-sync"]
        res = subprocess.run(cmd, check=False, cwd=self.workdir, capture_output=True, text=True,
                             timeout=120, user=self._user, group=self._user,
                             extra_groups=[] if self._user else None)
        if res.returncode != 0:
            raise RuntimeError(f"initdb failed ({res.returncode}):\n{res.stdout}\n{res.stderr}")
        self.start()
        import psycopg

        with psycopg.connect(self._admin_url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE tessera")

    def start(self) -> None:
        """Start postgres on the same port and data dir; return once it accepts queries."""
        if self.running:
            return
        # fsync off: nothing survives an OS crash, which no test makes. Commits stay synchronous
        # (a write() to the OS at commit, nearly free without fsync), so an acknowledged commit
        # survives even an immediate stop, as on a production server.
        cmd = [str(self.bindir / "postgres"), "-D", str(self.datadir), "-p", str(self.port),
               "-k", str(self.sockdir), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
               "-c", "full_page_writes=off"]
        self._proc = _spawn(cmd, self.log, self.workdir, as_user=self._user)
        _started(self._proc, self._accepts_queries, f"postgres on port {self.port}", self.log)

    def stop(self, *, hard: bool = False) -> None:
        """Fast shutdown (SIGINT: checkpoint, clients disconnected). ``hard=True`` is
        ``pg_ctl stop -m immediate``: every process quits at once, no checkpoint, crash recovery
        on the next start; committed transactions survive it (commits are synchronous)."""
        if hard and self.running:
            subprocess.run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "stop", "-m", "immediate",
                            "-w"], check=True, capture_output=True, timeout=STOP_TIMEOUT,
                           user=self._user, group=self._user, extra_groups=[] if self._user else None)
        _stop(self._proc, signal.SIGINT)
        self._proc = None

    def _accepts_queries(self) -> bool:
        import psycopg

        try:  # an open port is not enough: during startup/recovery connections are refused
            with psycopg.connect(self._admin_url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False


def _uid_gid(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


@contextlib.contextmanager
def postgres_server(workdir: Path) -> Iterator[str]:
    """Yield the URL of a fresh running cluster; stopped on exit. Use PostgresServer directly
    (also a context manager) when the test needs stop()/start()."""
    with PostgresServer(workdir) as server:
        yield server.url


# --------------------------------------------------------------------------- Redis


class RedisServer:
    """redis-server configured like production's broker: AOF on (everysec), noeviction, no RDB
    snapshots, no idle-client timeout. ``stop()``/``start()`` keep port and AOF, so a restart
    mid-run loses nothing that was fsynced (a graceful stop fsyncs everything)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.log = workdir / "redis.log"
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start (or restart) on the same port and dir; return once PING answers (AOF loaded)."""
        if self.running:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
               "--dir", str(self.workdir), "--appendonly", "yes", "--appendfsync", "everysec",
               "--maxmemory-policy", "noeviction", "--save", "", "--timeout", "0",
               "--daemonize", "no", "--logfile", ""]
        self._proc = _spawn(cmd, self.log, self.workdir)
        _started(self._proc, self._pings, f"redis on port {self.port}", self.log)

    def stop(self, *, hard: bool = False) -> None:
        """SIGTERM (fsync AOF, exit); ``hard=True`` sends SIGKILL: up to ~1 s of writes lost."""
        _stop(self._proc, signal.SIGKILL if hard else signal.SIGTERM)
        self._proc = None

    def _pings(self) -> bool:
        import redis

        try:  # while loading the AOF redis answers LOADING errors, which are ResponseErrors
            client = redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=2)
            with client:
                return bool(client.ping())
        except redis.RedisError:
            return False


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """Yield redis://127.0.0.1:PORT/0 of a running server; stopped on exit. Use RedisServer
    directly (also a context manager) when the test needs stop()/start()."""
    with RedisServer(workdir) as server:
        yield server.url


# --------------------------------------------------------------------------- S3 (moto)


@contextlib.contextmanager
def s3_server(workdir: Path | None = None) -> Iterator[tuple[str, str]]:
    """moto's S3 in a SUBPROCESS (``python -m moto.server``), yields (endpoint_url, bucket).

    A subprocess rather than the in-process ThreadedMotoServer: worker subprocesses and the test
    process reach the same server; it never competes for the test process's GIL or gets blocked
    by a test that hangs, forks or monkeypatches; and it is stopped like the other servers.
    Clients need the dummy credentials in ``S3_CLIENT_ENV``. moto does not check signatures.
    """
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="tessera-s3-")))
        workdir.mkdir(parents=True, exist_ok=True)
        yield from _moto(workdir)


def _moto(workdir: Path) -> Iterator[tuple[str, str]]:
    log = workdir / "moto.log"
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, **S3_CLIENT_ENV, "PYTHONUNBUFFERED": "1"}
    proc = _spawn([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                  log, workdir, env=env)
    try:
        _started(proc, lambda: _port_open("127.0.0.1", port), f"moto S3 on port {port}", log)
        import boto3

        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                              aws_secret_access_key="testing", region_name="us-east-1")
        client.create_bucket(Bucket=S3_BUCKET)
        yield endpoint, S3_BUCKET
    finally:
        _stop(proc, signal.SIGTERM)


class TcpGate:
    """A TCP forwarder in front of a server, in threads of this process, that a test can close
    and open again on the same port: clients see the server go away (connection refused, open
    connections closed) and come back, while the server itself keeps its state (moto's S3 lives
    in memory: stopping it would lose every object).

    `latency_s` holds back each chunk the server sends by that long, so a benchmark can put the
    server as far away as a real bucket (a small answer is a chunk or two)."""

    def __init__(self, target_port: int, latency_s: float = 0.0) -> None:
        self.target_port, self.latency_s = target_port, latency_s
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        """Refuse new connections and end every open one."""
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            sockets, self._open = self._open, []
        for sock in sockets:  # shutdown, not close alone: it also wakes the pump blocked on it
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                return  # closed
            upstream.settimeout(None)
            with self._lock:
                self._open += [client, upstream]
            for source, sink, delay in ((client, upstream, 0.0), (upstream, client, self.latency_s)):
                threading.Thread(target=_pump, args=(source, sink, delay), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket, delay_s: float = 0.0) -> None:
    try:
        while chunk := source.recv(65536):
            if delay_s:
                time.sleep(delay_s)
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@contextlib.contextmanager
def stack_services(root: Path) -> Iterator[dict[str, str]]:
    """PostgreSQL, Redis and S3 under `root` for a benchmark, as the environment a Tessera
    process needs (TESSERA_DATABASE_URL, _BROKER_URL, _S3_*, AWS_*)."""
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)  # the postgres user must reach its data folder
    with PostgresServer(root / "pg") as pg, RedisServer(root / "redis") as redis, \
            s3_server(root / "s3") as (endpoint, bucket):
        yield {"TESSERA_DATABASE_URL": pg.url, "TESSERA_BROKER_URL": redis.url,
               "TESSERA_S3_ENDPOINT_URL": endpoint, "TESSERA_S3_BUCKET": bucket, **S3_CLIENT_ENV}
