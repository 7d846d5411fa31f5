"""An HTTP client for the v1 API, as the bulk client (tessera/bulk/) uses it.

Every call is counted by kind (uploads, polls, downloads) so a run can say what it cost.
Overload is waited out, not failed: 429 and 503 answers are retried after the server's
`Retry-After` (seconds or an HTTP date; 5 s when absent, at most MAX_WAIT_S), up to `max_waits`
times; a refused or dropped connection (a server restarting) is retried with backoff. A
submission is safe to repeat because it carries an Idempotency-Key.
"""

from __future__ import annotations

import email.utils
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

FINAL = {"succeeded", "partially_succeeded", "failed", "cancelled"}
RETRY_STATUSES = (429, 503)
DEFAULT_WAIT_S, MAX_WAIT_S = 5.0, 600.0
CONNECT_RETRIES = 5
MAX_IDS_PER_CALL = 200


class ApiError(RuntimeError):
    """An answer that is not a success, with the API's stable error code."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


class Stopped(RuntimeError):
    """The run was asked to stop (Ctrl-C) while a call waited to retry."""


class TesseraClient:
    """Thread-safe (one httpx.Client); `stop` cuts retry waits short."""

    def __init__(self, server: str, api_key: str, *, timeout: float = 120.0, max_waits: int = 20,
                 stop: threading.Event | None = None):
        self.http = httpx.Client(base_url=server.rstrip("/"), timeout=timeout,
                                 headers={"Authorization": f"Bearer {api_key}"})
        self.max_waits = max_waits
        self.stop = stop or threading.Event()
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()

    def close(self) -> None:
        self.http.close()

    @property
    def total_requests(self) -> int:
        """HTTP requests sent (retries included; the waits before them are not requests)."""
        return sum(n for kind, n in self.requests.items() if kind != "waits")

    # ------------------------------------------------------------------ calls

    def submit_file(self, path: Path, options: dict[str, Any], key: str) -> dict[str, Any]:
        """POST /v1/jobs with the file (re-read on every retry)."""
        def request() -> httpx.Response:
            with path.open("rb") as handle:
                return self.http.post("/v1/jobs", files={"file": (path.name, handle)},
                                      data={"options": json.dumps(options)} if options else None,
                                      headers={"Idempotency-Key": key})
        return _json_or_raise(self._call("uploads", request))

    def submit_source(self, source: dict[str, str], options: dict[str, Any], key: str) -> dict[str, Any]:
        """POST /v1/jobs with a JSON source ({"url"} or {"s3_uri"}): the server fetches it."""
        body = {"source": source, "options": options}
        return _json_or_raise(self._call("uploads", lambda: self.http.post(
            "/v1/jobs", json=body, headers={"Idempotency-Key": key})))

    def jobs(self, ids: list[str]) -> list[dict[str, Any]]:
        """The given jobs (at most MAX_IDS_PER_CALL) in one call; unknown ids are left out."""
        params = {"ids": ",".join(ids), "limit": str(MAX_IDS_PER_CALL)}
        return _json_or_raise(self._call("polls", lambda: self.http.get("/v1/jobs", params=params)))["jobs"]

    def result(self, job_id: str, fmt: str) -> bytes:
        response = self._call("downloads", lambda: self.http.get(f"/v1/jobs/{job_id}/result",
                                                                 params={"format": fmt}))
        _json_or_raise(response, body=False)
        return response.content

    # ------------------------------------------------------------------ retries

    def _call(self, kind: str, send: Callable[[], httpx.Response]) -> httpx.Response:
        waits = failures = 0
        while True:
            self._count(kind)
            try:
                response = send()
            except httpx.TransportError:
                failures += 1
                if failures > CONNECT_RETRIES:
                    raise
                self._sleep(min(2.0 ** failures, 30.0))
                continue
            if response.status_code not in RETRY_STATUSES or waits >= self.max_waits:
                return response
            waits += 1
            self._count("waits")
            self._sleep(retry_after(response))

    def _count(self, kind: str) -> None:
        with self._lock:
            self.requests[kind] += 1

    def _sleep(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise Stopped("stopped while waiting to retry")


def retry_after(response: httpx.Response) -> float:
    """Seconds to wait from `Retry-After` (delta-seconds or an HTTP date; RFC 9110 10.2.3)."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return DEFAULT_WAIT_S
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            seconds = DEFAULT_WAIT_S
    return min(max(seconds, 0.0), MAX_WAIT_S)


def _json_or_raise(response: httpx.Response, body: bool = True) -> Any:
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            error = {"code": "http_error", "message": response.text[:200]}
        raise ApiError(response.status_code, error.get("code", "?"), error.get("message", ""))
    return response.json() if body else None
