"""Helpers for the REST API tests: small documents, an SSE reader, waiting on a condition."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from tessera.synthetic import make_pdf, render_text_page


def pdf(pages: int, tag: str = "") -> bytes:
    """A small raster PDF, one short text line per page; `tag` makes the bytes unique."""
    return make_pdf([render_text_page([f"p{n} {tag}".strip()], size=(400, 300), font_size=24)
                     for n in range(1, pages + 1)])


@dataclass
class Event:
    kind: str
    id: str | None
    data: Any


def read_events(http: httpx.Client, path: str, headers: dict[str, str] | None = None,
                timeout: float = 60.0) -> tuple[int, list[Event]]:
    """Read a Server-Sent Events stream until the server ends it; (HTTP status, events)."""
    events: list[Event] = []
    deadline = time.monotonic() + timeout
    with http.stream("GET", path, headers=headers, timeout=httpx.Timeout(timeout)) as response:
        if response.status_code != 200:
            response.read()
            return response.status_code, events
        assert response.headers["content-type"].startswith("text/event-stream")
        fields: dict[str, str] = {}
        for line in response.iter_lines():
            assert time.monotonic() < deadline, f"stream still open after {timeout} s: {events}"
            if line == "":
                if "data" in fields:
                    events.append(Event(fields.get("event", "message"), fields.get("id"),
                                        json.loads(fields["data"])))
                fields = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(":")
                fields[name] = value[1:] if value.startswith(" ") else value
    return 200, events


def wait_for(condition: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
