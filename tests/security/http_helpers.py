"""A real HTTP server on 127.0.0.1 in a thread, for URL sources and webhook receivers.

Routes map a path to a function `(request) -> Reply`; every request is recorded, so a test can
check what reached the server (and that a refused fetch reached nothing).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int = 0  # the sender's end of the connection (pid_owning_connection finds its process)


@dataclass
class Reply:
    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # before each chunk of an iterable body


class LocalHttp:
    """`fallback` answers requests to paths without a route (default: 404)."""

    def __init__(self, fallback: Callable[[Request], Reply] | None = None) -> None:
        self.routes: dict[str, Callable[[Request], Reply]] = {}
        self.fallback = fallback or (lambda _request: Reply(404, b"not found"))
        self.requests: list[Request] = []
        self._lock = threading.Condition()  # notified at each request: waiters wake on arrival
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                                  self.rfile.read(length) if length else b"", self.client_address[1])
                with owner._lock:
                    owner.requests.append(request)
                    owner._lock.notify_all()
                route = owner.routes.get(self.path.split("?", 1)[0], owner.fallback)
                self._send(route(request))

            def _send(self, reply: Reply) -> None:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if isinstance(reply.body, bytes):
                    if "Content-Length" not in reply.headers:
                        self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                    return
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for chunk in reply.body:
                        time.sleep(reply.delay_s)
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_DELETE = _serve  # noqa: N815

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # clients that hang up on purpose (size and time limits) are not news

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LocalHttp:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def serve(self, path: str, reply: Reply | Callable[[Request], Reply]) -> str:
        self.routes[path] = reply if callable(reply) else (lambda _request: reply)
        return self.url + path

    def received(self, path: str) -> list[Request]:
        with self._lock:
            return self._on(path)

    def _on(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path.split("?", 1)[0] == path]

    def wait_for(self, path: str, count: int = 1, timeout: float = 60.0) -> list[Request]:
        """The requests to `path` once there are `count` of them (woken by each arrival)."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._on(path)) >= count, timeout):
                raise TimeoutError(f"{path}: {len(self._on(path))} of {count} requests after {timeout} s")
            return self._on(path)


def scripted(*statuses: int) -> Callable[[Request], Reply]:
    """Answer with these statuses in turn, then 200 for ever."""
    remaining = list(statuses)
    lock = threading.Lock()

    def reply(_request: Request) -> Reply:
        with lock:
            status = remaining.pop(0) if remaining else 200
        return Reply(status, b"ok" if status == 200 else b"try again")

    return reply
