"""The bulk client's manifest: one SQLite file in the output folder (`.tessera-manifest.sqlite`)
with a row per input document, so a run that was stopped (Ctrl-C, a crash, a reboot) resumes.

Row: key (path relative to the input root, also the output path), source (absolute path or
s3:// URI), size, mtime_ns, content hash (sha256, or the S3 ETag), attempt, idempotency key, job
id, state, the job's last status and page counts, error code and message.

States: `pending` (not accepted by the server yet; a transient error may be recorded),
`submitted` (a job exists; watched until final, then its results downloaded), `done` (results
written; job status succeeded or partially_succeeded), `failed` (refused at upload, or the job
failed, was cancelled or purged; `--retry-failed` sends it again with a new idempotency key).

A file whose size or modification time changed since it was recorded is a new document:
its row goes back to `pending`. `meta` holds what the folder was made with (server, input
root, options): a run with others is refused rather than mixing results.
Only the run's main thread writes; each write commits (SQLite WAL), so a kill loses at most the
write in progress, and what it would have said is found again from the server (idempotency).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tessera.bulk.inputs import Input

FILE_NAME = ".tessera-manifest.sqlite"
PENDING, SUBMITTED, DONE, FAILED = "pending", "submitted", "done", "failed"
STATES = (PENDING, SUBMITTED, DONE, FAILED)
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    key TEXT PRIMARY KEY, source TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER,
    content_hash TEXT, attempt INTEGER NOT NULL DEFAULT 0, idempotency_key TEXT, job_id TEXT,
    state TEXT NOT NULL, job_status TEXT, pages_total INTEGER, pages_done INTEGER,
    pages_failed INTEGER, error_code TEXT, error_message TEXT, run INTEGER NOT NULL,
    updated_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS ix_documents_run_state ON documents (run, state);
"""


@dataclass
class Document:
    key: str
    source: str
    size: int
    content_hash: str | None
    attempt: int
    job_id: str | None
    state: str
    job_status: str | None
    pages_total: int | None
    pages_done: int | None
    error_code: str | None


class Manifest:
    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / FILE_NAME
        self.db = sqlite3.connect(self.path, isolation_level=None)  # autocommit; BEGIN by hand
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self.run = int(self.meta("runs", "0")) + 1
        self.set_meta("runs", str(self.run))

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ meta

    def meta(self, name: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else default

    def set_meta(self, name: str, value: str) -> None:
        self.db.execute("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO "
                        "UPDATE SET value = excluded.value", (name, value))

    def check_meta(self, name: str, value: str, what: str) -> None:
        """Record `value` on first use; refuse a later run that brings another."""
        recorded = self.meta(name)
        if recorded is None:
            self.set_meta(name, value)
        elif recorded != value:
            raise ValueError(f"{self.path.parent} holds results made with {what} {recorded}, "
                             f"not {value}: use another --out")

    # ------------------------------------------------------------------ inputs

    def record_inputs(self, inputs: Iterable[Input], batch: int = 1000) -> int:
        """Upsert every input seen by this run; a changed file goes back to pending. Returns how
        many inputs this run has."""
        count, rows = 0, []
        for item in inputs:
            rows.append((item.key, item.source, item.size, item.mtime_ns, item.etag, self.run,
                         time.time()))
            count += 1
            if len(rows) >= batch:
                self._upsert(rows)
                rows = []
        self._upsert(rows)
        return count

    def _upsert(self, rows: list[tuple]) -> None:
        if not rows:
            return
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT INTO documents (key, source, size, mtime_ns, content_hash, state, run, updated_at)"
            f" VALUES (?, ?, ?, ?, ?, '{PENDING}', ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET run = excluded.run, source = excluded.source", rows)
        self.db.executemany(  # a file that changed since it was recorded is a new document
            f"UPDATE documents SET state = '{PENDING}', size = ?2, mtime_ns = ?3, content_hash = ?4,"
            " job_id = NULL, job_status = NULL, pages_total = NULL, pages_done = NULL,"
            " pages_failed = NULL, error_code = NULL, error_message = NULL"
            " WHERE key = ?1 AND NOT (size IS ?2 AND mtime_ns IS ?3"
            " AND (?4 IS NULL OR content_hash IS ?4))",
            [(key, size, mtime_ns, content_hash) for key, _, size, mtime_ns, content_hash, *_ in rows])
        self.db.execute("COMMIT")

    def retry_failed(self) -> int:
        """Send this run's failed documents again, each with a new idempotency key (attempt+1)."""
        cursor = self.db.execute(
            f"UPDATE documents SET state = '{PENDING}', attempt = attempt + 1, job_id = NULL,"
            " job_status = NULL, error_code = NULL, error_message = NULL"
            f" WHERE run = ? AND state = '{FAILED}'", (self.run,))
        return cursor.rowcount

    # ------------------------------------------------------------------ reads

    def documents(self, state: str, batch: int = 1000) -> Iterator[Document]:
        """This run's documents in `state`, in key order, read `batch` at a time (a state change
        while iterating is fine: the next read starts after the last key seen)."""
        after = ""
        while True:
            rows = self.db.execute(
                "SELECT key, source, size, content_hash, attempt, job_id, state, job_status,"
                " pages_total, pages_done, error_code FROM documents"
                " WHERE run = ? AND state = ? AND key > ? ORDER BY key LIMIT ?",
                (self.run, state, after, batch)).fetchall()
            if not rows:
                return
            for row in rows:
                yield Document(*row)
            after = rows[-1][0]

    def first(self, limit: int) -> list[Document]:
        """This run's first `limit` documents in key order, whatever their state."""
        rows = self.db.execute(
            "SELECT key, source, size, content_hash, attempt, job_id, state, job_status,"
            " pages_total, pages_done, error_code FROM documents WHERE run = ? ORDER BY key LIMIT ?",
            (self.run, limit)).fetchall()
        return [Document(*row) for row in rows]

    def totals(self) -> dict[str, int]:
        """Documents of this run by state, plus by final job status (`job:<status>`)."""
        out: dict[str, int] = {}
        for state, status, n in self.db.execute(
                "SELECT state, job_status, COUNT(*) FROM documents WHERE run = ?"
                " GROUP BY state, job_status", (self.run,)):
            out[state] = out.get(state, 0) + n
            if status:
                out[f"job:{status}"] = out.get(f"job:{status}", 0) + n
        return out

    def pages(self) -> tuple[int, int, int, int]:
        """This run's (pages known, pages finished, documents whose page count is known,
        unfinished documents whose page count is not known yet)."""
        row = self.db.execute(
            "SELECT COALESCE(SUM(pages_total), 0), COALESCE(SUM(pages_done), 0), COUNT(pages_total),"
            f" SUM(pages_total IS NULL AND state IN ('{PENDING}', '{SUBMITTED}'))"
            " FROM documents WHERE run = ?", (self.run,)).fetchone()
        return int(row[0]), int(row[1]), int(row[2]), int(row[3] or 0)

    def failures(self) -> list[tuple[str, str, str]]:
        """(code, key, message) of this run's failed documents, by code."""
        return self.db.execute(
            f"SELECT COALESCE(error_code, '?'), key, COALESCE(error_message, '') FROM documents"
            f" WHERE run = ? AND state IN ('{FAILED}', '{PENDING}') AND error_code IS NOT NULL"
            " ORDER BY error_code, key", (self.run,)).fetchall()

    def keys_of_job(self, job_id: str) -> list[str]:
        return [row[0] for row in self.db.execute(
            "SELECT key FROM documents WHERE run = ? AND job_id = ?", (self.run, job_id))]

    # ------------------------------------------------------------------ writes

    def update(self, key: str, **values: object) -> None:
        values["updated_at"] = time.time()
        names = ", ".join(f"{name} = ?" for name in values)
        self.db.execute(f"UPDATE documents SET {names} WHERE key = ?", (*values.values(), key))

    def update_job(self, job_id: str, **values: object) -> None:
        """The same values on every document of this job (identical files share one job)."""
        values["updated_at"] = time.time()
        names = ", ".join(f"{name} = ?" for name in values)
        self.db.execute(f"UPDATE documents SET {names} WHERE run = ? AND job_id = ?",
                        (*values.values(), self.run, job_id))
