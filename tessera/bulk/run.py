"""`tessera submit`: send many documents, follow them, write their results; resumable.

One run: record the inputs in the manifest (tessera/bulk/manifest.py); upload the pending ones
`concurrency` at a time, each with an Idempotency-Key derived from its content, the options and
its attempt number (so an upload cut off by a crash or Ctrl-C makes no second job: the next run
sends the same key and gets the first job back); follow the submitted jobs with one
`GET /v1/jobs?ids=` call per 200 jobs per poll; download each finished job's results in the
asked formats (tessera/bulk/formats.py for the layout); show progress (tessera/bulk/progress.py);
end with a summary. Everything it learns goes to the manifest at once, so a run stopped at any
point resumes where it was: finished documents are skipped, submitted ones watched again.

Threads: uploads and downloads run in `concurrency` daemon threads; only the main thread
touches the manifest and the display. Ctrl-C (or SIGTERM) stops at once: nothing half-written
is recorded (result files are written to a temporary name and renamed).
"""

from __future__ import annotations

import hashlib
import json
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from tessera.bulk import manifest as states
from tessera.bulk import summary as report
from tessera.bulk.formats import output_path, write_atomically
from tessera.formats import ResultFormat
from tessera.bulk.inputs import file_sha256
from tessera.bulk.manifest import Document, Manifest
from tessera.bulk.progress import Display, Snapshot, make_display
from tessera.bulk.summary import EXIT_FAILED, EXIT_INTERRUPTED
from tessera.client import FINAL, MAX_IDS_PER_CALL, ApiError, Stopped, TesseraClient
RESULT_STATUSES = ("succeeded", "partially_succeeded")
TICK_S = 0.2
SNAPSHOT_EVERY_S = 0.5


@dataclass
class RunOptions:
    out: Path
    formats: list[ResultFormat]
    job_options: dict[str, Any]
    concurrency: int = 4
    watch: bool = True
    timeout: float | None = None
    poll_interval: float = 2.0
    progress: str = "auto"  # auto | rich | plain
    log_interval: float = 10.0


def idempotency_key(content_hash: str, options: dict[str, Any], attempt: int) -> str:
    """Same content, same options, same attempt: same key (and so the same job)."""
    canonical = json.dumps(options, sort_keys=True, separators=(",", ":"))
    return "tsub-" + hashlib.sha256(f"{content_hash}\n{canonical}\n{attempt}".encode()).hexdigest()[:48]


class Workers:
    """`size` daemon threads: a task is (tag, fn); `done()` hands back (tag, value, error)."""

    def __init__(self, size: int):
        self.tasks: queue.Queue[tuple[object, Callable[[], object]]] = queue.Queue()
        self.results: queue.Queue[tuple[object, object, BaseException | None]] = queue.Queue()
        self.busy = 0
        for index in range(size):
            threading.Thread(target=self._work, name=f"submit-{index}", daemon=True).start()

    def _work(self) -> None:
        while True:
            tag, fn = self.tasks.get()
            try:
                self.results.put((tag, fn(), None))
            except BaseException as exc:  # noqa: BLE001 (handed to the main thread)
                self.results.put((tag, None, exc))

    def submit(self, tag: object, fn: Callable[[], object]) -> None:
        self.busy += 1
        self.tasks.put((tag, fn))

    def done(self, timeout: float) -> list[tuple[object, object, BaseException | None]]:
        out = []
        try:
            out.append(self.results.get(timeout=timeout))
            while True:
                out.append(self.results.get_nowait())
        except queue.Empty:
            pass
        self.busy -= len(out)
        return out


class BulkRun:
    def __init__(self, client: TesseraClient, manifest: Manifest, options: RunOptions,
                 console: Console):
        self.client, self.manifest, self.options, self.console = client, manifest, options, console
        self.workers = Workers(options.concurrency)
        self.watching: dict[str, str] = {}  # job id -> last status, for jobs not final yet
        self.downloading: set[str] = set()
        self.pending: Iterator[Document] = iter(())
        self.lookahead: Document | None = None
        self.next_poll = 0.0
        self.started = time.monotonic()

    # ------------------------------------------------------------------ the loop

    def run(self) -> int:
        """Work until every document is finished (or, without watch, submitted); the exit code."""
        display = make_display(self.options.progress, self.console, self.options.log_interval)
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            self._resume()
            code = self._loop(display)
        except KeyboardInterrupt:
            self.client.stop.set()
            display.close(self.snapshot())
            self.console.print("interrupted: nothing is lost; run the same command again to resume "
                               "(uploads in flight are found again by their idempotency keys)")
            return EXIT_INTERRUPTED
        finally:
            signal.signal(signal.SIGTERM, previous)
        display.close(self.snapshot())
        return code

    def _loop(self, display: Display) -> int:
        deadline = None if self.options.timeout is None else self.started + self.options.timeout
        last_snapshot = 0.0
        while True:
            self._feed_uploads()
            for tag, value, error in self.workers.done(TICK_S):
                self._settle(tag, value, error)
            if self.options.watch and self.watching and time.monotonic() >= self.next_poll:
                self._poll()
            if time.monotonic() - last_snapshot >= SNAPSHOT_EVERY_S:
                display.update(self.snapshot())
                last_snapshot = time.monotonic()
            if self._finished():
                return self._exit_code()
            if deadline is not None and time.monotonic() > deadline:
                self.console.print(f"still {len(self.watching)} documents processing after "
                                   f"{self.options.timeout:.0f} s: run the same command to keep watching")
                return EXIT_FAILED

    def _finished(self) -> bool:
        uploads_left = self.workers.busy or self._next_pending(peek=True) is not None
        if not self.options.watch:
            return not uploads_left
        return not uploads_left and not self.watching and not self.downloading

    def _next_pending(self, peek: bool = False) -> Document | None:
        if self.lookahead is None:
            self.lookahead = next(self.pending, None)
        document = self.lookahead
        if not peek:
            self.lookahead = None
        return document

    # ------------------------------------------------------------------ resuming

    def _resume(self) -> None:
        """Watch what was submitted, download again what is missing, then upload the rest."""
        for document in self.manifest.documents(states.DONE):
            if not all(output_path(self.options.out, document.key, f).exists()
                       for f in self.options.formats):
                self.manifest.update(document.key, state=states.SUBMITTED)
        for document in self.manifest.documents(states.SUBMITTED):
            if document.job_id:
                self.watching[document.job_id] = document.job_status or "queued"
        self.pending = self.manifest.documents(states.PENDING)

    # ------------------------------------------------------------------ uploads

    def _feed_uploads(self) -> None:
        while self.workers.busy < 2 * self.options.concurrency:
            document = self._next_pending()
            if document is None:
                return
            self.workers.submit(("upload", document), lambda d=document: self._upload(d))

    def _upload(self, document: Document) -> tuple[str, str, dict[str, Any]]:
        """In a worker thread: (content hash, idempotency key, job)."""
        content_hash = document.content_hash or file_sha256(document.source)
        key = idempotency_key(content_hash, self.options.job_options, document.attempt)
        if document.source.startswith("s3://"):
            job = self.client.submit_source({"s3_uri": document.source}, self.options.job_options, key)
        else:
            job = self.client.submit_file(Path(document.source), self.options.job_options, key)
        return content_hash, key, job

    def _settle(self, tag: object, value: object, error: BaseException | None) -> None:
        kind, subject = tag  # type: ignore[misc]
        if kind == "upload":
            self._uploaded(subject, value, error)
        else:
            self._downloaded(subject, error)

    def _uploaded(self, document: Document, value: Any, error: BaseException | None) -> None:
        if error is None:
            content_hash, key, job = value
            self.manifest.update(document.key, state=states.SUBMITTED, content_hash=content_hash,
                                 idempotency_key=key, job_id=job["id"], error_code=None,
                                 error_message=None)
            self._observe(job)
        elif isinstance(error, ApiError) and error.status not in (429, 503) and error.status < 500:
            self.manifest.update(document.key, state=states.FAILED, error_code=error.code,
                                 error_message=error.message[:500])
        elif isinstance(error, OSError) and not isinstance(error, httpx.TransportError):
            self.manifest.update(document.key, state=states.FAILED, error_code="unreadable_file",
                                 error_message=str(error)[:500])
        elif not isinstance(error, Stopped):  # stays pending: the next run tries again
            code = error.code if isinstance(error, ApiError) else "connection_error"
            self.manifest.update(document.key, error_code=code, error_message=str(error)[:500])

    # ------------------------------------------------------------------ watching

    def _poll(self) -> None:
        ids = list(self.watching)
        chunks = [ids[i:i + MAX_IDS_PER_CALL] for i in range(0, len(ids), MAX_IDS_PER_CALL)]
        try:
            for chunk in chunks:
                jobs = {job["id"]: job for job in self.client.jobs(chunk)}
                for job_id in chunk:
                    job = jobs.get(job_id) or {"id": job_id, "status": "failed",
                                               "error": {"code": "not_found",
                                                         "message": "the job is gone from the server"}}
                    self._observe(job)
        except (ApiError, httpx.HTTPError) as exc:  # the server is away: keep watching
            self.console.print(f"polling failed ({exc}); trying again", highlight=False)
        # one poll round per interval, slower when there are many calls to make
        self.next_poll = time.monotonic() + max(self.options.poll_interval, 0.25 * len(chunks))

    def _observe(self, job: dict[str, Any]) -> None:
        """What the server says about a job: progress, and once final, results or failure."""
        progress = job.get("progress") or {}
        self.manifest.update_job(job["id"], job_status=job["status"],
                                 pages_total=progress.get("pages_total"),
                                 pages_done=(progress.get("pages_done") or 0) +
                                 (progress.get("pages_failed") or 0))
        if job["status"] not in FINAL:
            self.watching[job["id"]] = job["status"]
            return
        self.watching.pop(job["id"], None)
        if not self.options.watch:
            return
        if job["status"] in RESULT_STATUSES:
            self._download(job["id"])
        else:
            error = job.get("error") or {"code": job["status"], "message": f"the job was {job['status']}"}
            self.manifest.update_job(job["id"], state=states.FAILED, error_code=error["code"],
                                     error_message=(error.get("message") or "")[:500])

    # ------------------------------------------------------------------ results

    def _download(self, job_id: str) -> None:
        if job_id in self.downloading:
            return
        self.downloading.add(job_id)
        keys = self.manifest.keys_of_job(job_id)
        self.workers.submit(("download", job_id), lambda: self._write_results(job_id, keys))

    def _write_results(self, job_id: str, keys: list[str]) -> None:
        """In a worker thread: every format, to every input that is this job's document."""
        for fmt in self.options.formats:
            data = self.client.result(job_id, fmt.name)
            for key in keys:
                write_atomically(output_path(self.options.out, key, fmt), data)

    def _downloaded(self, job_id: str, error: BaseException | None) -> None:
        self.downloading.discard(job_id)
        if error is None:
            self.manifest.update_job(job_id, state=states.DONE, error_code=None, error_message=None)
        elif isinstance(error, ApiError) and error.status not in (429, 503) and error.status < 500:
            self.manifest.update_job(job_id, state=states.FAILED, error_code=error.code,
                                     error_message=error.message[:500])
        elif not isinstance(error, Stopped):  # try again on the next poll
            self.watching[job_id] = "downloading"

    # ------------------------------------------------------------------ reporting

    def snapshot(self) -> Snapshot:
        return report.snapshot(self.manifest, self.client.total_requests)

    def _exit_code(self) -> int:
        return report.exit_code(self.manifest, self.options.watch)

    def summary(self) -> None:
        report.print_summary(self.console, self.manifest, self.options.out, self.options.formats,
                              self.client.requests, time.monotonic() - self.started)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt
