"""Shared fixtures: real PostgreSQL, Redis and S3 (moto) servers, started lazily.

A server starts only when a test (or a fixture it uses) asks for it, once per session, and is
stopped at session end even when tests fail. Tests that stop a server (chaos tests) must start
it again before they finish (try/finally), since the instance is shared by the whole session.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# `tests.utils...` must import under plain `pytest` too, not only `python -m pytest` (which puts
# the cwd on sys.path): tests/ has no __init__.py, so put the repository root on the path.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests.utils.services import S3_CLIENT_ENV, PostgresServer, RedisServer, s3_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """Running PostgreSQL; `.url` = postgresql://tessera@127.0.0.1:PORT/tessera; stop()/start().

    Its folder is outside pytest's temp root on purpose: any pytest run resets that root to
    mode 0700, which would lock the `postgres` user out of its own data on a restart."""
    workdir = Path(tempfile.mkdtemp(prefix="tessera-test-pg-"))
    try:
        with PostgresServer(workdir) as server:
            yield server
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Running Redis (AOF, noeviction); `.url` = redis://127.0.0.1:PORT/0; stop()/start()."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(endpoint_url, bucket) of a moto S3 server in a subprocess; bucket `tessera-test` exists."""
    with s3_server(tmp_path_factory.mktemp("s3")) as endpoint_and_bucket:
        yield endpoint_and_bucket


@pytest.fixture(scope="session")
def stack_env(
    postgres: PostgresServer, redis_srv: RedisServer, s3: tuple[str, str]
) -> dict[str, str]:
    """Environment for Tessera processes (API, workers) pointed at the test servers.

    Session-scoped so session fixtures (e.g. a long-lived worker) can use it: copy it before
    changing it, e.g. ``env = {**os.environ, **stack_env}``.
    """
    endpoint, bucket = s3
    return {
        "TESSERA_DATABASE_URL": postgres.url,
        "TESSERA_BROKER_URL": redis_srv.url,
        "TESSERA_S3_ENDPOINT_URL": endpoint,
        "TESSERA_S3_BUCKET": bucket,
        **S3_CLIENT_ENV,
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLAlchemy URL of an empty database of the test's own: a SQLite file, or a new database
    on the session's PostgreSQL server (each test using it runs on both)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    import psycopg

    server = request.getfixturevalue("postgres")
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.url.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + f"/{name}"
