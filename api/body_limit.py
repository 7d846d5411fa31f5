"""Request bodies over the limit: answered 413 `payload_too_large` before they are read, and the
connection closed cleanly.

The limit is the most a valid request can send: an upload (multipart/form-data) up to
`max_upload_bytes` + MULTIPART_SLACK, any other body (JSON) up to `max_json_body_bytes`.

- A declared Content-Length over the limit is answered at once, before authentication and
  before a byte of the body is read. A body without a length (chunked) is counted as it
  arrives; the read that crosses the limit raises PayloadTooLarge (answered 413 by the error
  handlers).
- Whenever a response starts while the request body is not all read (a 413, a 401 or a 415
  answered early), it says `Connection: close`, and before the response ends the rest of the
  body is read and thrown away: up to DRAIN_FACTOR times the upload limit in all (a body
  declared larger is not drained), for at most DRAIN_TIMEOUT_S. Why: a server that closes
  with unread data in its
  socket makes the kernel send a reset, and a client still sending its body (Python's urllib,
  most SDKs: anything that does not wait for `100 Continue`) sees that reset, not the answer
  waiting in its receive buffer. Draining costs what accepting the body would have cost.
- A client that sent `Expect: 100-continue` and was not told to go on has sent no body: it
  gets the answer at once and nothing is drained.
A body larger than the drain bound still ends in a reset for a client that sends it all without
listening; such a client cannot be answered cleanly by any server that will not read it.
"""

from __future__ import annotations

import asyncio
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from tessera.config import Settings
from tessera.errors import PayloadTooLarge

MULTIPART_SLACK = 1024 * 1024  # form boundaries and the small fields around an upload
DRAIN_FACTOR = 4  # an upload a few times over the limit still gets its 413 read
DRAIN_TIMEOUT_S = 30.0


class BodyLimit:
    """ASGI middleware (installed by api/main.py), one per app."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.upload_limit = settings.max_upload_bytes + MULTIPART_SLACK
        self.json_limit = settings.max_json_body_bytes

    def limit_for(self, content_type: str) -> int:
        return self.upload_limit if content_type.startswith("multipart/form-data") else self.json_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.lower(): value for name, value in scope["headers"]}
        declared = headers.get(b"content-length", b"").decode("latin-1").strip()
        if not (declared.isdigit() and int(declared) > 0) and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body
            return
        limit = self.limit_for(headers.get(b"content-type", b"").decode("latin-1").lower())
        body = _Body(receive, limit, int(declared) if declared.isdigit() else None,
                     expects_continue=headers.get(b"expect", b"").lower() == b"100-continue",
                     drain_max=DRAIN_FACTOR * self.upload_limit)
        if body.declared is not None and body.declared > limit:
            response = error_response(413, PayloadTooLarge.code,
                                      f"the request body is larger than the {_size(limit)} limit")
            await response(scope, body.receive, body.wrap(send))
            return
        await self.app(scope, body.receive, body.wrap(send))


class _Body:
    """One request's body as the app reads it, and what is left to drain."""

    def __init__(self, receive: Receive, limit: int, declared: int | None, *,
                 expects_continue: bool, drain_max: int):
        self._receive, self.limit, self.declared = receive, limit, declared
        self.expects_continue, self.drain_max = expects_continue, drain_max
        self.received, self.done, self.asked = 0, False, False

    async def receive(self) -> Message:
        """What the app calls: counts the body and refuses it past the limit."""
        message = await self._next()
        if self.received > self.limit:
            raise PayloadTooLarge(f"the request body is larger than the {_size(self.limit)} limit")
        return message

    async def _next(self) -> Message:
        self.asked = True
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.done = not message.get("more_body", False)
        else:  # http.disconnect
            self.done = True
        return message

    def wrap(self, send: Send) -> Send:
        closing = False

        async def wrapped(message: Message) -> None:
            nonlocal closing
            if message["type"] == "http.response.start" and not self.done:
                closing = True
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            if closing and message["type"] == "http.response.body" and not message.get("more_body"):
                await send({**message, "more_body": True})
                await self.drain()
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        return wrapped

    async def drain(self) -> None:
        """Read and drop the rest of the body, within the bounds in the module docstring."""
        if self.done or (self.expects_continue and not self.asked):
            return
        if self.declared is not None and self.declared > self.drain_max:
            return
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while not self.done and self.received <= self.drain_max:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                await asyncio.wait_for(self._next(), left)
            except asyncio.TimeoutError:
                return


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"
