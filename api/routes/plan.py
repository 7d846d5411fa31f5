"""POST /v1/plan: what a submission would cost, before sending it: the dashboard's cost preview.

Takes the same multipart upload as POST /v1/jobs (a document) or POST /v1/batches (an archive),
with the same `options`, and runs nothing: no job, no blob, no message. The answer lists every
document (an archive's entries, each with the error that would refuse it), every selected page
with the size it will be stored at, its InternVL tile grid and visual tokens (workers/preview.py:
the render plan and tiling the pipeline itself uses), and the totals.
"""

from __future__ import annotations

from typing import Any, Literal

import structlog
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.archives import open_archive
from api.deps import SettingsDep, TenantDep
from api.schemas import UNAUTHORIZED, ErrorInfo, JobOptions, error_responses
from api.submission import parse_options, safe_display_name
from api.uploads import read_multipart
from tessera.config import Settings
from tessera.errors import InvalidInput, UnsupportedArchive
from workers.internvl.tiling import TILE_SIZE, TOKENS_PER_TILE
from workers.preview import DocumentPlan, plan_document

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/v1/plan", tags=["jobs"])
UPLOAD = {"type": "object", "required": ["file"], "properties": {
    "file": {"type": "string", "format": "binary",
             "description": "a document (PDF, PNG, JPEG or TIFF) or an archive of them (zip, tar, tar.gz)"},
    "options": {"type": "string", "contentMediaType": "application/json",
                "contentSchema": JobOptions.model_json_schema(), "description": "JobOptions as JSON"}}}
PLAN_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": UPLOAD}}}}


class PagePlanOut(BaseModel):
    page: int = Field(description="page number, from 1")
    width: int = Field(description="the page image's width as it will be stored, pixels")
    height: int
    dpi: int | None = Field(description="PDF pages: the resolution it will render at")
    grid: list[int] = Field(description="InternVL tile grid [cols, rows] of 448x448 tiles")
    tiles: int = Field(description="tiles the engine reads: the grid, plus a thumbnail when the "
                                   "grid has more than one tile")
    visual_tokens: int = Field(description=f"tiles x {TOKENS_PER_TILE}")
    warnings: list[str]


class DocumentPlanOut(BaseModel):
    name: str | None = Field(description="the file name (an archive entry's path), for display")
    media_type: str | None
    page_count: int | None = Field(description="pages in the document (`pages` are those selected)")
    pages: list[PagePlanOut]
    tiles: int
    visual_tokens: int
    warnings: list[str]
    error: ErrorInfo | None = Field(description="an archive entry that would be refused, and why")


class PlanOut(BaseModel):
    model_config = {"json_schema_extra": {"examples": [{
        "kind": "document", "submit_to": "/v1/jobs",
        "options": {"tasks": ["ocr"], "max_tiles": 12, "priority": "normal"},
        "tile_size": 448, "tokens_per_tile": 256,
        "documents": [{"name": "report.pdf", "media_type": "application/pdf", "page_count": 1,
                       "pages": [{"page": 1, "width": 1700, "height": 2200, "dpi": 200,
                                  "grid": [3, 4], "tiles": 13, "visual_tokens": 3328,
                                  "warnings": []}],
                       "tiles": 13, "visual_tokens": 3328, "warnings": [], "error": None}],
        "totals": {"documents": 1, "refused": 0, "pages": 1, "tiles": 13, "visual_tokens": 3328},
    }]}}

    kind: Literal["document", "archive"]
    submit_to: str = Field(description="where to send it: /v1/jobs (a document) or /v1/batches")
    options: dict[str, Any] = Field(description="the options as the job would store them")
    tile_size: int
    tokens_per_tile: int
    documents: list[DocumentPlanOut]
    totals: dict[str, int] = Field(description="documents, refused (archive entries), pages, "
                                               "tiles, visual_tokens")


PLAN_ERRORS = error_responses(
    UNAUTHORIZED,
    (400, "`bad_request`: the multipart body cannot be parsed"),
    (413, "`payload_too_large` or `archive_too_large`"),
    (415, "`unsupported_media_type`: not a PDF, PNG, JPEG, TIFF or an archive of them"),
    (422, "`invalid_options`, `empty_document`, `corrupt_document`, `encrypted_pdf`, "
          "`too_many_pages`, `image_too_large`, `corrupt_archive`, `too_many_entries` or "
          "`invalid_request`"),
)


@router.post("", response_model=PlanOut, summary="Plan a submission without running it",
             responses=PLAN_ERRORS, openapi_extra=PLAN_BODY)
async def plan_submission(request: Request, _tenant: TenantDep, settings: SettingsDep) -> PlanOut:
    """Pages, tile plans and visual tokens of a document or an archive's documents, with the
    given options; nothing is stored or queued."""
    upload = await read_multipart(request, settings.max_upload_bytes)
    options = parse_options(upload.fields.get("options"))
    return await run_in_threadpool(_plan, upload.data, upload.filename, options, settings)


def _plan(data: bytes, filename: str | None, options: JobOptions, settings: Settings) -> PlanOut:
    try:
        entries = list(open_archive(data, settings))
    except UnsupportedArchive:  # not an archive (or an Office file): a document, checked as one
        documents = [_document(safe_display_name(filename), _plan_one(data, options, settings))]
        return _out("document", documents, options)
    documents = [_entry(entry.name, entry.data, entry.error, options, settings) for entry in entries]
    return _out("archive", documents, options)


def _plan_one(data: bytes, options: JobOptions, settings: Settings) -> DocumentPlan:
    return plan_document(data, settings, pages=options.pages, dpi=options.dpi, max_tiles=options.max_tiles)


def _entry(name: str, data: bytes | None, error: InvalidInput | None, options: JobOptions,
           settings: Settings) -> DocumentPlanOut:
    if error is None and data is not None:
        try:
            return _document(name, _plan_one(data, options, settings))
        except InvalidInput as exc:
            error = exc
        except Exception:  # noqa: BLE001 (one odd entry must not sink the plan, as in a batch)
            log.exception("plan.entry_crashed", name=name[:200])
            error = InvalidInput("the document could not be inspected", code="internal_error")
    error = error or InvalidInput("the entry could not be read")
    return DocumentPlanOut(name=name, media_type=None, page_count=None, pages=[], tiles=0,
                           visual_tokens=0, warnings=[],
                           error=ErrorInfo(code=error.code, message=error.message[:500]))


def _document(name: str | None, plan: DocumentPlan) -> DocumentPlanOut:
    pages = [PagePlanOut(page=p.page, width=p.width, height=p.height, dpi=p.dpi,
                         grid=list(p.tiles.grid), tiles=p.tiles.tiles,
                         visual_tokens=p.tiles.visual_tokens, warnings=list(p.warnings))
             for p in plan.pages]
    return DocumentPlanOut(name=name, media_type=plan.media_type, page_count=plan.page_count,
                           pages=pages, tiles=plan.tiles, visual_tokens=plan.visual_tokens,
                           warnings=plan.warnings, error=None)


def _out(kind: Literal["document", "archive"], documents: list[DocumentPlanOut],
         options: JobOptions) -> PlanOut:
    planned = [d for d in documents if d.error is None]
    totals = {"documents": len(planned), "refused": len(documents) - len(planned),
              "pages": sum(len(d.pages) for d in planned), "tiles": sum(d.tiles for d in planned),
              "visual_tokens": sum(d.visual_tokens for d in planned)}
    return PlanOut(kind=kind, submit_to="/v1/jobs" if kind == "document" else "/v1/batches",
                   options=options.model_dump(exclude_none=True), tile_size=TILE_SIZE,
                   tokens_per_tile=TOKENS_PER_TILE, documents=documents, totals=totals)
