"""How one stage hands work to the next: Celery messages, or an in-process queue for `tessera run`.

Messages carry ids only; Postgres holds everything else.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

SPLIT = "tessera.split"
INFER = "tessera.infer"
ASSEMBLE = "tessera.assemble"
QUEUE_OF = {SPLIT: "cpu", INFER: "gpu", ASSEMBLE: "cpu"}


class Enqueuer(Protocol):
    def split(self, job_id: str, high: bool = False) -> None: ...
    def infer(self, page_ids: list[int], high: bool = False) -> None: ...
    def assemble(self, job_id: str) -> None: ...
    def depth(self, queue: str) -> int | None:
        """Messages waiting in `queue` (not yet delivered); None when the broker cannot say."""
        ...


class CeleryEnqueuer:
    """`high` sends at the broker's top priority (a job's `priority: "high"` option)."""

    def __init__(self, app):  # noqa: ANN001 (celery.Celery)
        self.app = app

    def _send(self, name: str, *args: object, high: bool = False) -> None:
        from workers.celery_app import PRIORITY_HIGH

        priority = {"priority": PRIORITY_HIGH} if high else {}
        self.app.send_task(name, args=list(args), queue=QUEUE_OF[name], **priority)

    def split(self, job_id: str, high: bool = False) -> None:
        self._send(SPLIT, job_id, high=high)

    def infer(self, page_ids: list[int], high: bool = False) -> None:
        self._send(INFER, page_ids, high=high)

    def assemble(self, job_id: str) -> None:
        self._send(ASSEMBLE, job_id)

    def depth(self, queue: str) -> int | None:
        try:
            with self.app.connection_for_write() as connection:
                return int(connection.default_channel.queue_declare(queue=queue, passive=True).message_count)
        except Exception:  # noqa: BLE001 (the broker is away or cannot say: the caller assumes the worst)
            return None


class LocalEnqueuer:
    """Runs stages in this process, in order, until no work is left (one-shot `tessera run`)."""

    def __init__(self, handlers: dict[str, Callable[..., None]]):
        self.handlers = handlers
        self.pending: deque[tuple[str, tuple[object, ...]]] = deque()

    def split(self, job_id: str, high: bool = False) -> None:
        self.pending.append((SPLIT, (job_id,)))

    def infer(self, page_ids: list[int], high: bool = False) -> None:
        self.pending.append((INFER, (page_ids,)))

    def assemble(self, job_id: str) -> None:
        self.pending.append((ASSEMBLE, (job_id,)))

    def depth(self, queue: str) -> int | None:
        return sum(1 for name, _ in self.pending if QUEUE_OF[name] == queue)

    def drain(self) -> None:
        while self.pending:
            name, args = self.pending.popleft()
            self.handlers[name](*args)
