"""Per-tenant rate limits in Redis: the app in this process (FastAPI TestClient) on the session's
PostgreSQL and Redis, with limits small enough to reach."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.ratelimit import RateLimiter
from storage.migrate import upgrade
from storage.tenants import create_api_key
from tessera.config import Settings
from tests.utils.services import free_port


def redis_url(stack_env: dict[str, str]) -> str:
    return stack_env["TESSERA_BROKER_URL"].rsplit("/", 1)[0] + "/8"


class Clock:
    """The limiter's clock, moved by the test (a fixed minute, far from any real one)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limited(stack_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str], Clock]]:
    settings = Settings(home=tmp_path, database_url=stack_env["TESSERA_DATABASE_URL"],
                        broker_url=redis_url(stack_env), rate_limit_per_minute=3, rate_limit_reads_per_minute=5)
    upgrade(settings.sqlalchemy_url)
    app = create_app(settings)
    clock = Clock(60 * 1_000_000 + 15.0)  # 15 s into a minute
    app.state.rate_limiter = RateLimiter(settings, clock=clock)
    with app.state.runtime.sessions.begin() as session:
        keys = {name: create_api_key(session, f"rl-{name}-{tmp_path.name}") for name in ("a", "b")}
    with TestClient(app) as client:
        yield client, keys, clock


def call(client: TestClient, key: str, method: str = "POST", path: str = "/v1/batches"):  # noqa: ANN201
    return client.request(method, path, headers={"Authorization": f"Bearer {key}", "Content-Type": "text/plain"},
                          content=b"x")


def test_over_the_limit_is_429_with_retry_after(limited: tuple[TestClient, dict[str, str], Clock]) -> None:
    client, keys, clock = limited
    assert [call(client, keys["a"]).status_code for _ in range(3)] == [415, 415, 415]
    refused = call(client, keys["a"])
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert refused.headers["Retry-After"] == "45"  # 15 s into the minute
    clock.now += 44.5
    assert call(client, keys["a"], "POST", "/v1/jobs").status_code == 429  # every /v1 route counts
    assert call(client, keys["a"]).headers["Retry-After"] == "1"  # half a second left: rounded up
    assert call(client, keys["b"]).status_code == 415  # per tenant
    reads = [call(client, keys["a"], "GET", "/v1/jobs/none").status_code for _ in range(6)]
    assert reads == [404] * 5 + [429]  # reads have a budget of their own
    assert client.get("/healthz").status_code == 200  # health checks are not limited
    assert call(client, "tsk_wrong").status_code == 401  # no tenant, nothing to count
    clock.now += 0.5  # the next minute: a new budget
    assert [call(client, keys["a"]).status_code for _ in range(4)] == [415, 415, 415, 429]


def test_windows_and_off_switches(stack_env: dict[str, str], tmp_path: Path) -> None:
    limiter = RateLimiter(Settings(home=tmp_path, broker_url=redis_url(stack_env), rate_limit_per_minute=2))
    tenant = f"windows-{tmp_path.name}"
    assert [limiter.hit(tenant, now=6000.0) for _ in range(3)] == [None, None, 60]
    assert limiter.hit(tenant, now=6059.5) == 1
    assert limiter.hit(tenant, now=6060.0) is None  # a new minute
    assert [limiter.hit(tenant, "read") for _ in range(5)] == [None] * 5  # reads: off by default
    assert RateLimiter(Settings(home=tmp_path)).hit(tenant) is None  # embedded: no Redis, no limit
    off = RateLimiter(Settings(home=tmp_path, broker_url=redis_url(stack_env), rate_limit_per_minute=0))
    assert off.redis is None and off.hit(tenant) is None
    down = RateLimiter(Settings(home=tmp_path, broker_url=f"redis://127.0.0.1:{free_port()}/0",
                                rate_limit_per_minute=1))
    assert [down.hit(tenant) for _ in range(3)] == [None, None, None]  # Redis down: fail open
