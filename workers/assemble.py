"""The assemble stage: one document result (JSON and Markdown) from the page results, and the
archive formats (txt, hOCR, searchable PDF: workers/outputs/)."""

from __future__ import annotations

import json
from typing import Any

import structlog

from storage import jobs as job_repo
from storage.blobs import BlobKeys, read_ahead
from storage.models import Job, JobStatus, Page, PageStatus
from workers.outputs.store import store_archive_formats
from workers.runtime import Runtime

log = structlog.get_logger(__name__)


def assemble_job(rt: Runtime, job_id: str) -> None:
    with rt.sessions() as session:
        job = job_repo.get_job(session, job_id)
        if job is None or job.status != JobStatus.ASSEMBLING:
            return
        pages = job_repo.pages_of(session, job_id)
    keys = [_result_key(page) for page in pages]
    results = read_ahead(rt.blobs.get, [key for key in keys if key])
    entries = [_page_entry(page, json.loads(next(results)) if key else None) for page, key in zip(pages, keys)]
    document = {"job_id": job.id, "filename": job.filename, "page_count": len(pages), "pages": entries}
    rt.blobs.put(BlobKeys.result(job.tenant_id, job.id, "json"),
                 json.dumps(document, ensure_ascii=False).encode("utf-8"), "application/json")
    rt.blobs.put(BlobKeys.result(job.tenant_id, job.id, "md"),
                 to_markdown(entries).encode("utf-8"), "text/markdown; charset=utf-8")
    _remove_stray_results(rt, job, pages)
    results = {entry["page"]: entry for entry in entries if entry["status"] == PageStatus.DONE}
    warnings = store_archive_formats(rt, job, pages, results) if results else []
    _finish(rt, job, pages, warnings)


def _remove_stray_results(rt: Runtime, job: Job, pages: list[Page]) -> None:
    """Remove page results no row points at: those of attempts that stored a result and then
    died (or lost their page) before they could record or remove it. Every page is final
    here, so only the results the rows name are the job's."""
    if all(page.status == PageStatus.DONE and page.attempt <= 1 for page in pages):
        return  # each page ran once and its row points at that attempt's result: nothing stray
    kept = {page.result_key for page in pages if page.result_key}
    for key in rt.blobs.keys(BlobKeys.page_results(job.tenant_id, job.id)):
        if key not in kept:
            rt.blobs.delete(key)


def _result_key(page: Page) -> str | None:
    return page.result_key if page.status == PageStatus.DONE and page.result_key else None


def _page_entry(page: Page, result: dict[str, Any] | None) -> dict[str, Any]:
    """`result`: the page's stored result (None: the page has none)."""
    entry: dict[str, Any] = {"page": page.page_no, "status": page.status}
    if result is not None:
        entry.update(result)
    else:
        entry["error"] = {"code": page.error_code or "page_failed", "message": page.error_message or ""}
    return entry


def to_markdown(entries: list[dict[str, Any]]) -> str:
    parts = []
    for entry in entries:
        body = entry.get("text", "") if entry["status"] == PageStatus.DONE else (
            f"*Page {entry['page']} failed: {entry['error']['code']}*")
        parts.append(f"<!-- page {entry['page']} -->\n\n{body}".rstrip())
    return "\n\n".join(parts) + "\n"


def _finish(rt: Runtime, job: Job, pages: list[Page], warnings: list[str]) -> None:
    done = sum(page.status == PageStatus.DONE for page in pages)
    values: dict[str, object] = {"warnings": list(job.warnings or []) + warnings} if warnings else {}
    if done == len(pages):
        status = JobStatus.SUCCEEDED
    elif done:
        status = JobStatus.PARTIALLY_SUCCEEDED
    else:
        status = JobStatus.FAILED
        values.update(error_code="all_pages_failed", error_message="no page could be processed")
    with rt.sessions.begin() as session:  # the job.finished webhook goes out with this commit
        moved = job_repo.transition_job(session, job.id, (JobStatus.ASSEMBLING,), status, **values)
        gone = not moved and job_repo.get_job(session, job.id) is None
    if gone:  # deleted while it was assembled: the results written above must not outlive it
        rt.blobs.delete_prefix(BlobKeys.job_prefix(job.tenant_id, job.id))
        return
    log.info("job.finished", job_id=job.id, status=status, pages=len(pages), done=done)
