"""Real `tessera serve` processes for the REST API tests.

- `stack`: PostgreSQL + Redis + S3 with a database, a Redis db and a bucket of this suite's
  own (so the workers of other suites sharing the session's servers never take its jobs),
  `tessera worker` with the digest engine (0.5 s per page, one page per task, two
  processes) and `tessera serve --no-worker`.
- `embedded`: `tessera serve --no-worker` on the embedded defaults (SQLite, local blob
  folder, filesystem queue) and no worker at all, so every job stays `queued`.

Both are session-scoped (started once, on first use) and each test makes its own tenants
(`api.new_client()`), so tests do not see each other's jobs.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from storage.db import make_engine, make_session_factory
from storage.migrate import upgrade
from storage.tenants import create_api_key
from tessera.config import Settings
from tests.utils.tessera_procs import ApiClient, Server, TesseraProcess, tessera_env

SUITE_DB = "tessera_api"
SUITE_REDIS_DB = 7
SUITE_BUCKET = "tessera-api-test"
WORKER = {"TESSERA_ENGINE": "digest", "TESSERA_DIGEST_DELAY_S": "0.5", "TESSERA_ENGINE_BATCH_SIZE": "1"}


@dataclass
class Api:
    """A running `tessera serve` and how to reach what is behind it."""

    server: Server
    env: dict[str, str]
    sqlalchemy_url: str
    worker: TesseraProcess | None = None
    clients: list[ApiClient] = field(default_factory=list)

    def new_client(self, tenant: str | None = None) -> ApiClient:
        """A client with a new API key for `tenant` (a fresh tenant by default)."""
        engine = make_engine(self.sqlalchemy_url)
        try:
            with make_session_factory(engine).begin() as session:
                key = create_api_key(session, tenant or f"t-{uuid.uuid4().hex[:12]}")
        finally:
            engine.dispose()
        client = self.server.client(key)
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.http.close()


def _own_database(url: str) -> str:
    """A database of this suite's own on the session's PostgreSQL server; returns its URL."""
    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", (SUITE_DB,)).fetchone():
            conn.execute(f"create database {SUITE_DB}")
    return url.rsplit("/", 1)[0] + f"/{SUITE_DB}"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, stack_env: dict[str, str]) -> Iterator[Api]:
    import boto3

    logs = tmp_path_factory.mktemp("api-stack")
    endpoint = stack_env["TESSERA_S3_ENDPOINT_URL"]
    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=stack_env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=stack_env["AWS_SECRET_ACCESS_KEY"],
                      region_name=stack_env["AWS_DEFAULT_REGION"])
    s3.create_bucket(Bucket=SUITE_BUCKET)
    env = tessera_env({**stack_env, **WORKER, "TESSERA_HOME": str(logs / "home"),
                       "TESSERA_DATABASE_URL": _own_database(stack_env["TESSERA_DATABASE_URL"]),
                       "TESSERA_BROKER_URL": stack_env["TESSERA_BROKER_URL"].rsplit("/", 1)[0]
                       + f"/{SUITE_REDIS_DB}",
                       "TESSERA_S3_BUCKET": SUITE_BUCKET})
    url = Settings(database_url=env["TESSERA_DATABASE_URL"]).sqlalchemy_url
    upgrade(url)
    worker = TesseraProcess(["worker", "--queues", "cpu,gpu", "--concurrency", "2"], env,
                            logs / "worker.log").start()
    server = Server(env, logs / "serve.log", worker=False)
    api = Api(server=server, env=env, sqlalchemy_url=url, worker=worker)
    try:
        server.start()
        yield api
    finally:
        api.close()
        server.stop()
        worker.stop()


@contextmanager
def embedded_api(home: Path, **settings: str) -> Iterator[Api]:
    """`tessera serve --no-worker` on the embedded defaults under `home`, with `TESSERA_*`
    settings on top (e.g. TESSERA_MAX_UPLOAD_BYTES)."""
    env = tessera_env({"TESSERA_HOME": str(home), **settings})
    url = Settings(home=Path(home)).sqlalchemy_url
    upgrade(url)
    server = Server(env, home / "serve.log", worker=False)
    api = Api(server=server, env=env, sqlalchemy_url=url)
    try:
        server.start()
        yield api
    finally:
        api.close()
        server.stop()


@pytest.fixture(scope="session")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with embedded_api(tmp_path_factory.mktemp("api-embedded")) as api:
        yield api


@pytest.fixture(params=["embedded", "stack"])
def any_api(request: pytest.FixtureRequest) -> Api:
    """Each test using it runs on both backends."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def s3_bucket(stack: Api):  # noqa: ANN201
    """(boto3 client, bucket) of the stack's blob store."""
    import boto3

    env = stack.env
    client = boto3.client("s3", endpoint_url=env["TESSERA_S3_ENDPOINT_URL"],
                          aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                          region_name=env["AWS_DEFAULT_REGION"])
    return client, SUITE_BUCKET
