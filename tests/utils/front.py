"""A real HTTP server in front of a real `tessera serve`, for client tests: it forwards every
request unchanged, except that a rule may answer some requests itself first (a 429 with
Retry-After, a 503), as a loaded server or a load balancer would. Every request is recorded
with its arrival time, so a test can check what the client did and when."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from tests.security.http_helpers import LocalHttp, Reply, Request

HOP_HEADERS = {"host", "connection", "keep-alive", "transfer-encoding", "content-length",
               "content-encoding"}
Rule = Callable[[str, str, int], tuple[int, dict[str, str]] | None]  # (method, path, n) -> answer


@dataclass
class Seen:
    method: str
    path: str
    at: float  # time.monotonic() on arrival
    answered: int  # the status the client got


class Front:
    """`rule(method, path, n)` (n: how many requests of this method and path came before)
    returns (status, headers) to answer without forwarding, or None to forward;
    `pause(method, path)` seconds are waited first."""

    def __init__(self, target: str, rule: Rule | None = None,
                 pause: Callable[[str, str], float] | None = None):
        self.rule = rule or (lambda _method, _path, _index: None)
        self.pause = pause or (lambda _method, _path: 0.0)
        self.seen: list[Seen] = []
        self._arrivals: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._http = httpx.Client(base_url=target.rstrip("/"), timeout=120)
        self.local = LocalHttp(fallback=self._answer)
        self.url = self.local.url

    def _answer(self, request: Request) -> Reply:
        arrived = time.monotonic()
        with self._lock:  # taken on arrival, so concurrent requests get distinct numbers
            route = (request.method, request.path.split("?", 1)[0])
            index = self._arrivals[route] = self._arrivals.get(route, -1) + 1
        time.sleep(self.pause(request.method, request.path))
        ruled = self.rule(request.method, request.path, index)
        if ruled is not None:
            status, headers = ruled
            reply = Reply(status, b'{"error": {"code": "rate_limited", "message": "slow down"}}',
                          {"Content-Type": "application/json", **headers})
        else:
            forwarded = {k: v for k, v in request.headers.items() if k not in HOP_HEADERS}
            response = self._http.request(request.method, request.path, headers=forwarded,
                                          content=request.body)
            reply = Reply(response.status_code, response.content,
                          {k: v for k, v in response.headers.items() if k.lower() not in HOP_HEADERS})
        with self._lock:
            self.seen.append(Seen(request.method, request.path, arrived, reply.status))
        return reply

    def __enter__(self) -> Front:
        self.local.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.local.__exit__(*exc)
        self._http.close()
