"""/v1/jobs/{id}/pages and /result: what a job produced, page by page or as one document."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from api import pagination
from api.charts_csv import to_csv
from api.deps import BlobsDep, SessionDep, SettingsDep, TenantDep
from api.presenters import page_out, page_summary
from api.routes.jobs import job_or_404
from api.schemas import (
    INVALID_CURSOR,
    INVALID_REQUEST,
    JOB_NOT_FOUND,
    UNAUTHORIZED,
    PageList,
    PageOut,
    error_responses,
)
from storage import jobs as job_repo
from storage.blobs import BlobKeys, BlobNotFound, BlobStore
from storage.models import Job, JobStatus, Page, PageStatus
from tessera.errors import Conflict, NotFound, ResultPurged
from tessera.formats import ARCHIVE_FORMATS, RESULT_FORMATS, ResultFormat
from workers.outputs.pages import output_page
from workers.outputs.single_page import page_format

router = APIRouter(prefix="/v1/jobs", tags=["pages"])
PageNo = Annotated[int, Path(ge=1, le=pagination.MAX_PAGE_NO, description="from 1, like a PDF viewer")]
ResultFormatName = Literal["json", "markdown", "csv", "txt", "hocr", "pdf"]
PageFormatName = Literal["json", "txt", "hocr"]
RESULT_OK = {
    "description": "json: the document (every page with its text, lines, charts, tiles); markdown: "
                   "the text in reading order; csv: every chart table (layout: api/charts_csv.py); "
                   "txt: each page's text, pages separated by form feeds; hocr: one hOCR document "
                   "(ocr_page per page, ocr_line per line with bbox and x_wconf); pdf: a searchable "
                   "PDF (the page images at their physical size under an invisible text layer)",
    "content": {"application/json": {}, "text/markdown": {}, "text/csv": {}, "text/plain": {},
                "text/vnd.hocr+html": {}, "application/pdf": {}},
}
PURGED = (410, "`result_purged`: retention removed the job's files and results "
                "(TESSERA_RETENTION_DAYS); the job itself is still listed, with `purged_at`")
RESULT_ERRORS = error_responses(
    UNAUTHORIZED, INVALID_REQUEST,
    (404, "`not_found`: no such job; `no_result`: it ended without a result"),
    (409, "`job_not_finished`: the result exists once the job has ended; `no_archive_format`: a "
          "job that ended failed or cancelled has no txt, hocr or pdf"), PURGED,
)
PAGE_OK = {"description": "json: the page (PageOut); txt: its text; hocr: an hOCR document of "
                          "this page alone",
           "content": {"application/json": {}, "text/plain": {}, "text/vnd.hocr+html": {}}}


@router.get("/{job_id}/pages", response_model=PageList, summary="List a job's pages",
            responses=error_responses(UNAUTHORIZED, JOB_NOT_FOUND, INVALID_REQUEST, INVALID_CURSOR,
                                      PURGED))
def list_pages(
    job_id: str, session: SessionDep, tenant: TenantDep, blobs: BlobsDep,
    limit: Annotated[int, Query(ge=1, le=200, description="pages per response")] = 50,
    cursor: Annotated[str | None, Query(description="the previous response's `next_cursor`")] = None,
    include: Annotated[Literal["text"] | None, Query(description="`text`: add the full text")] = None,
) -> PageList:
    """Status, size, engine and a text preview of each page, in page order, `limit` at a time
    (once the job is purged: no previews, and `include=text` answers 410)."""
    job = job_or_404(session, tenant.id, job_id)
    if include:
        _check_not_purged(job)
    after = pagination.decode_page_cursor(cursor) if cursor is not None else 0
    pages = job_repo.list_pages(session, job.id, after=after, limit=limit + 1)
    more, pages = len(pages) > limit, pages[:limit]
    entries = [page_summary(page, _text(blobs, page) if include else None) for page in pages]
    next_cursor = pagination.page_cursor(pages[-1].page_no) if more else None
    return PageList(pages=entries, next_cursor=next_cursor)


def _text(blobs: BlobStore, page: Page) -> str | None:
    result = _page_result(blobs, page)
    return None if result is None else result.get("text")


def _page_result(blobs: BlobStore, page: Page) -> dict | None:
    if page.status != PageStatus.DONE or not page.result_key:
        return None
    try:
        return json.loads(blobs.get(page.result_key))
    except BlobNotFound:
        return None


@router.get("/{job_id}/pages/{page_no}", response_model=PageOut, summary="Get one page's result",
            responses={200: PAGE_OK, **error_responses(
                UNAUTHORIZED, INVALID_REQUEST, PURGED,
                (404, "`not_found`: no such job for this tenant, or page"),
                (409, "`page_not_done`: txt and hocr exist once the page is done"))})
def get_page(job_id: str, page_no: PageNo, session: SessionDep, tenant: TenantDep,
             blobs: BlobsDep, settings: SettingsDep,
             format: PageFormatName = Query("json")) -> PageOut | Response:  # noqa: A002
    """One page's text, lines, charts, tiles, engine and timings (pages are numbered from 1); or
    its text alone (`txt`), or an hOCR document of it (`hocr`)."""
    job = job_or_404(session, tenant.id, job_id)
    _check_not_purged(job)
    page = job_repo.get_page(session, job_id, page_no)
    if page is None:
        raise NotFound(f"job {job_id} has no page {page_no}")
    result = _page_result(blobs, page)
    if format == "json":
        return page_out(page, result)
    if result is None:
        raise Conflict(f"page {page_no} is {page.status}; its {format} exists once it is done",
                       code="page_not_done")
    data = page_format(format, output_page(page, result), settings)
    return _download(data, RESULT_FORMATS[format], f"{job.id}-page{page_no}")


@router.get("/{job_id}/result", response_class=Response, summary="Get the whole document's result",
            responses={200: RESULT_OK, **RESULT_ERRORS})
def get_result(job_id: str, session: SessionDep, tenant: TenantDep, blobs: BlobsDep,
               format: ResultFormatName = Query("json")) -> Response:  # noqa: A002
    """The whole document, once the job has ended. `csv` lists every chart table, one line per
    table row: page, chart, title, row (0 = the table's column names), col_1..col_N. `txt`,
    `hocr` and `pdf` exist for jobs that succeeded or partially succeeded."""
    job = job_or_404(session, tenant.id, job_id)
    _check_not_purged(job)
    if job.status not in JobStatus.FINAL:
        raise Conflict(f"job {job_id} is {job.status}; the result exists once it has finished",
                       code="job_not_finished")
    fmt = RESULT_FORMATS[format]
    if format in ARCHIVE_FORMATS and job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise Conflict(f"job {job_id} ended {job.status}: it has no {format} result",
                       code="no_archive_format")
    try:
        data = blobs.get(BlobKeys.result(job.tenant_id, job.id, fmt.stored_as))
    except BlobNotFound as exc:
        raise NotFound(f"job {job_id} ended {job.status} without a {format} result",
                       code="no_result") from exc
    if format == "csv":
        data = to_csv(json.loads(data)).encode("utf-8")
    if format in ("json", "markdown"):
        return Response(content=data, media_type=fmt.media_type)
    return _download(data, fmt, job.id)


def _download(data: bytes, fmt: ResultFormat, stem: str) -> Response:
    """A file to save (attachment), never rendered by a browser on the API's origin."""
    return Response(content=data, media_type=fmt.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{stem}{fmt.suffix}"',
                             "X-Content-Type-Options": "nosniff"})


def _check_not_purged(job: Job) -> None:
    if job.purged_at is not None:
        raise ResultPurged(f"job {job.id} ended more than the retention period ago; its files and "
                           f"results were removed on {job.purged_at:%Y-%m-%d}")
