"""What a `tessera submit` run shows while it works: documents and pages finished of their
totals, pages per second, an estimated time left, failures by error code.

On a terminal: a Rich display redrawn in place. Otherwise (a log file, CI): a plain line every
`interval` seconds and one at the end, e.g.
  `documents 120/2000 (3 failed) | pages 340/~5200 | 2.1 pages/s | ETA 0:35:12 | failed: corrupt_document=2`
Page totals are known once a document is split; until then the total is estimated from the
documents whose count is known (shown with `~`).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.text import Text

RATE_WINDOW_S = 60.0


@dataclass
class Snapshot:
    documents: int = 0  # this run's inputs
    finished: int = 0  # done or failed
    failed: int = 0
    pages_known: int = 0  # sum of page counts known so far
    pages_done: int = 0  # finished pages (done or failed) of those
    counted_documents: int = 0  # documents whose page count is known
    uncounted_documents: int = 0  # unfinished documents whose page count is not known yet
    failures: dict[str, int] = field(default_factory=dict)  # error code -> documents
    requests: int = 0

    @property
    def pages_estimate(self) -> tuple[int, bool]:
        """(pages in all, whether that is an estimate)."""
        unknown = self.uncounted_documents
        if unknown <= 0 or not self.counted_documents:
            return self.pages_known, unknown > 0
        return self.pages_known + round(unknown * self.pages_known / self.counted_documents), True


class PageRate:
    """Pages per second over the last RATE_WINDOW_S, from (time, pages done) samples."""

    def __init__(self) -> None:
        self.samples: deque[tuple[float, int]] = deque()

    def add(self, pages_done: int, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self.samples.append((now, pages_done))
        while len(self.samples) > 2 and now - self.samples[1][0] > RATE_WINDOW_S:
            self.samples.popleft()

    def per_second(self) -> float:
        if len(self.samples) < 2:
            return 0.0
        (t0, p0), (t1, p1) = self.samples[0], self.samples[-1]
        return (p1 - p0) / (t1 - t0) if t1 > t0 else 0.0


def eta(snapshot: Snapshot, rate: float) -> str:
    total, _ = snapshot.pages_estimate
    left = max(total - snapshot.pages_done, 0)
    if rate <= 0:
        return "-" if left else "0:00:00"
    return str(timedelta(seconds=round(left / rate)))


def failures_text(failures: dict[str, int]) -> str:
    return ", ".join(f"{code}={n}" for code, n in sorted(failures.items(), key=lambda kv: -kv[1]))


class Display(Protocol):
    def update(self, snapshot: Snapshot) -> None: ...
    def close(self, snapshot: Snapshot) -> None: ...


class PlainDisplay:
    def __init__(self, console: Console, interval: float = 10.0):
        self.console, self.interval, self.rate = console, interval, PageRate()
        self.last, self.printed = 0.0, ""

    def update(self, snapshot: Snapshot) -> None:
        self.rate.add(snapshot.pages_done)
        if time.monotonic() - self.last >= self.interval:
            self._line(snapshot)

    def close(self, snapshot: Snapshot) -> None:
        self.rate.add(snapshot.pages_done)
        if self._text(snapshot) != self.printed:
            self._line(snapshot)

    def _line(self, snapshot: Snapshot) -> None:
        self.last, self.printed = time.monotonic(), self._text(snapshot)
        self.console.print(self.printed, highlight=False, soft_wrap=True)

    def _text(self, s: Snapshot) -> str:
        total, estimated = s.pages_estimate
        rate = self.rate.per_second()
        parts = [f"documents {s.finished}/{s.documents} ({s.failed} failed)",
                 f"pages {s.pages_done}/{'~' if estimated else ''}{total}",
                 f"{rate:.1f} pages/s", f"ETA {eta(s, rate)}"]
        if s.failures:
            parts.append(f"failed: {failures_text(s.failures)}")
        return " | ".join(parts)


class RichDisplay:
    def __init__(self, console: Console):
        self.rate = PageRate()
        self.progress = Progress(TextColumn("{task.description:>9}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
                                 console=console, auto_refresh=False)
        self.documents = self.progress.add_task("documents", total=None, info="")
        self.pages = self.progress.add_task("pages", total=None, info="")
        self.footer = Text()
        self.live = Live(Group(self.progress, self.footer), console=console, refresh_per_second=4,
                         transient=False)
        self.live.start()

    def update(self, s: Snapshot) -> None:
        self.rate.add(s.pages_done)
        rate = self.rate.per_second()
        total, estimated = s.pages_estimate
        self.progress.update(self.documents, total=s.documents, completed=s.finished,
                             info=f"{s.failed} failed")
        self.progress.update(self.pages, total=max(total, s.pages_done) or None,
                             completed=s.pages_done,
                             info=f"{'(estimated total) ' if estimated else ''}{rate:.1f} pages/s, "
                                  f"ETA {eta(s, rate)}")
        self.footer.plain = (f"failures: {failures_text(s.failures)}\n" if s.failures else "") + \
            f"requests: {s.requests}"
        self.live.refresh()

    def close(self, snapshot: Snapshot) -> None:
        self.update(snapshot)
        self.live.stop()


def make_display(mode: str, console: Console, interval: float = 10.0) -> Display:
    """`auto`: Rich on a terminal, plain lines otherwise; or `rich` / `plain`."""
    if mode == "rich" or (mode == "auto" and console.is_terminal):
        return RichDisplay(console)
    return PlainDisplay(console, interval)
