"""A small HTTP client for the v1 API and the `tessera submit` bulk workflow."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

FINAL = {"succeeded", "partially_succeeded", "failed", "cancelled"}
DOCUMENT_SUFFIXES = {".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff"}
console = Console()


class TesseraClient:
    def __init__(self, server: str, api_key: str, timeout: float = 120.0):
        self.http = httpx.Client(base_url=server.rstrip("/"), timeout=timeout,
                                 headers={"Authorization": f"Bearer {api_key}"})

    def submit(self, path: Path, options: str | None = None, max_waits: int = 5) -> dict[str, Any]:
        """POST one file; a 429 is waited out (Retry-After) up to `max_waits` times."""
        for _ in range(max_waits):
            with path.open("rb") as handle:
                data = {"options": options} if options else None
                response = self.http.post("/v1/jobs", files={"file": (path.name, handle)}, data=data)
            if response.status_code != 429:
                break
            time.sleep(min(float(response.headers.get("Retry-After", "5")), 60.0))
        return _json_or_raise(response)

    def job(self, job_id: str) -> dict[str, Any]:
        return _json_or_raise(self.http.get(f"/v1/jobs/{job_id}"))

    def result(self, job_id: str, fmt: str = "json") -> bytes:
        response = self.http.get(f"/v1/jobs/{job_id}/result", params={"format": fmt})
        response.raise_for_status()
        return response.content


class ApiError(RuntimeError):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def _json_or_raise(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            error = {"code": "http_error", "message": response.text[:200]}
        raise ApiError(response.status_code, error.get("code", "?"), error.get("message", ""))
    return response.json()


def expand_paths(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in DOCUMENT_SUFFIXES))
        else:
            files.append(path)
    return files


@dataclass
class Tracked:
    path: Path
    job: dict[str, Any] | None = None
    error: str | None = None
    submitted_at: float = field(default_factory=time.monotonic)
    seconds: float | None = None


def submit_and_watch(client: TesseraClient, paths: list[Path], *, options: str | None, watch: bool,
                     out: Path | None, timeout: float) -> bool:
    """Submit every document, optionally wait for all and print a summary. True if any failed."""
    tracked = [_submit_one(client, path, options) for path in expand_paths(paths)]
    if not watch:
        for item in tracked:
            console.print(f"{item.path}: {item.job['id'] if item.job else item.error}")
        return any(item.error for item in tracked)
    _wait(client, tracked, timeout)
    if out is not None:
        _download(client, tracked, out)
    _summary(client, tracked, out)
    return any(item.error or (item.job and item.job["status"] != "succeeded") for item in tracked)


def _submit_one(client: TesseraClient, path: Path, options: str | None) -> Tracked:
    item = Tracked(path)
    try:
        item.job = client.submit(path, options)
    except (ApiError, httpx.HTTPError) as exc:
        item.error = str(exc)
    return item


def _wait(client: TesseraClient, tracked: list[Tracked], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with console.status("processing...") as status:
        while time.monotonic() < deadline:
            pending = [t for t in tracked if t.job and t.job["status"] not in FINAL]
            if not pending:
                return
            for item in pending:
                item.job = client.job(item.job["id"])
                if item.job["status"] in FINAL:
                    item.seconds = time.monotonic() - item.submitted_at
            done = sum(1 for t in tracked if not t.job or t.job["status"] in FINAL)
            status.update(f"processing... {done}/{len(tracked)} documents finished")
            time.sleep(0.5)
    for item in tracked:
        if item.job and item.job["status"] not in FINAL:
            item.error = f"still {item.job['status']} after {timeout:.0f} s"


def _download(client: TesseraClient, tracked: list[Tracked], out: Path) -> None:
    for item in tracked:
        if item.job and item.job["status"] in FINAL - {"cancelled"}:
            folder = out / item.path.stem
            folder.mkdir(parents=True, exist_ok=True)
            try:
                (folder / "result.json").write_bytes(client.result(item.job["id"], "json"))
                (folder / "result.md").write_bytes(client.result(item.job["id"], "markdown"))
            except httpx.HTTPStatusError as exc:
                item.error = f"no result: {exc.response.status_code}"


def _summary(client: TesseraClient, tracked: list[Tracked], out: Path | None) -> None:
    table = Table(title="Tessera results")
    for column in ("document", "status", "pages", "seconds", "first lines"):
        table.add_column(column)
    for item in tracked:
        job = item.job or {}
        status = item.error if item.error and not job else job.get("status", "?")
        if job.get("error"):
            status = f"{status} ({job['error']['code']})"
        pages = job.get("progress", {})
        table.add_row(item.path.name, status, f"{pages.get('pages_done', 0)}/{pages.get('pages_total', 0)}",
                      f"{item.seconds:.1f}" if item.seconds else "-", _first_lines(client, job, out, item))
    console.print(table)
    if out is not None:
        console.print(f"results (result.json, result.md per document) are in {out.resolve()}")


def _first_lines(client: TesseraClient, job: dict[str, Any], out: Path | None, item: Tracked) -> str:
    if job.get("status") not in ("succeeded", "partially_succeeded"):
        return ""
    path = out / item.path.stem / "result.json" if out else None
    document = json.loads(path.read_bytes() if path and path.exists() else client.result(job["id"]))
    text = next((p.get("text", "") for p in document["pages"] if p.get("text")), "")
    lines = [line.strip() for line in text.splitlines() if line.strip()][:2]
    return " / ".join(line[:60] for line in lines)
