"""Requests per tenant per minute, counted in Redis (a fixed one-minute window).

Two budgets: writes (POST, DELETE...: submissions cost a document inspection, a blob and a
queue message) under `TESSERA_RATE_LIMIT_PER_MINUTE` (default 600), and reads (status polling,
results) under `TESSERA_RATE_LIMIT_READS_PER_MINUTE` (default 0: not limited, since the bulk
client polls every job it watches). Over a budget: 429 `rate_limited` with `Retry-After`
(seconds to the next window). Off when the broker is not Redis (embedded mode). If Redis
cannot be reached the request is let through: the limiter protects the service, it must not
take it down.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from api.deps import SettingsDep, TenantDep
from api.errors import error_response
from tessera.config import Settings
from tessera.errors import RateLimited

log = structlog.get_logger(__name__)
WINDOW_S = 60
KEY = "tessera:ratelimit:{kind}:{tenant}:{window}"
READS = ("GET", "HEAD", "OPTIONS")


class RateLimiter:
    """`clock` gives the time in seconds (tests drive it; windows are counted on it)."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.limits = {"write": settings.rate_limit_per_minute, "read": settings.rate_limit_reads_per_minute}
        self.redis = None
        if any(self.limits.values()) and (settings.broker_url or "").startswith(("redis://", "rediss://")):
            import redis

            self.redis = redis.Redis.from_url(settings.broker_url, socket_timeout=0.5,
                                              socket_connect_timeout=0.5)

    def hit(self, tenant_id: str, kind: str = "write", now: float | None = None) -> int | None:
        """Count one request; seconds to wait if it is over the limit, else None."""
        limit = self.limits[kind]
        if self.redis is None or not limit:
            return None
        now = self.clock() if now is None else now
        window = int(now // WINDOW_S)
        key = KEY.format(kind=kind, tenant=tenant_id, window=window)
        try:
            pipe = self.redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, WINDOW_S * 2)
            count = pipe.execute()[0]
        except Exception as exc:  # noqa: BLE001 (fail open: see the module docstring)
            log.warning("ratelimit.redis_unavailable", error=repr(exc)[:200])
            return None
        if count <= limit:
            return None
        return max(1, int((window + 1) * WINDOW_S - now + 0.999))


def get_limiter(request: Request, settings: SettingsDep) -> RateLimiter:
    state = request.app.state
    if getattr(state, "rate_limiter", None) is None:
        state.rate_limiter = RateLimiter(settings)
    return state.rate_limiter


def rate_limit(request: Request, tenant: TenantDep,
               limiter: Annotated[RateLimiter, Depends(get_limiter)]) -> None:
    """Router dependency: authenticates (TenantDep) and counts the request."""
    kind = "read" if request.method in READS else "write"
    wait = limiter.hit(tenant.id, kind)
    if wait is not None:
        raise RateLimited(f"more than {limiter.limits[kind]} {kind} requests in a minute; "
                          f"retry in {wait} s", retry_after_s=wait)


RateLimit = Depends(rate_limit)


def install_rate_limit(app: FastAPI) -> None:
    """The 429 response, with Retry-After (the generic handler knows no headers)."""

    @app.exception_handler(RateLimited)
    async def _limited(_: Request, exc: RateLimited) -> JSONResponse:
        return error_response(429, exc.code, exc.message, {"Retry-After": str(exc.retry_after_s)})
