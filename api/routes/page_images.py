"""/v1/jobs/{id}/pages/{n}/image and /tiles: the stored page image and its InternVL tile grid,
for the dashboard's page view (the line boxes of a page result are in this image's pixels).

Only the job's own tenant gets them: another tenant's job is a 404 like every job route. The
dashboard fetches the image with its key (an <img> cannot send one) and shows it from a blob URL.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from api.deps import BlobsDep, SessionDep, TenantDep
from api.routes.jobs import job_or_404
from api.routes.pages import PageNo
from api.schemas import INVALID_REQUEST, UNAUTHORIZED, JobOptions, error_responses
from storage import jobs as job_repo
from storage.blobs import BlobNotFound
from storage.models import Job, Page
from tessera.errors import NotFound, TesseraError
from workers.documents import sniff_media_type
from workers.internvl.tiling import MAX_TILES_LIMIT, TILE_SIZE, TOKENS_PER_TILE, plan_tiles

router = APIRouter(prefix="/v1/jobs", tags=["pages"])
NOT_FOUND = (404, "`not_found`: no such job for this tenant, or page; `no_image`: the page's "
                  "image is gone")
BINARY = {"schema": {"type": "string", "format": "binary"}}
# application/octet-stream: a stored image of no known type (and what client generators read)
IMAGE_OK = {"description": "the page image as stored (PNG), in the pixels of the page's `lines`",
            "content": {"image/png": BINARY, "application/octet-stream": BINARY}}
DEFAULT_MAX_TILES = JobOptions.model_fields["max_tiles"].default


class PageTilesOut(BaseModel):
    width: int = Field(description="the stored page image, pixels")
    height: int
    max_tiles: int = Field(description="the job's max_tiles")
    grid: list[int] = Field(description="[cols, rows]: the page is resized to (448*cols, "
                                        "448*rows) and cut into 448x448 tiles")
    tiles: int = Field(description="the grid's tiles plus the whole-page thumbnail when there "
                                   "is more than one")
    thumbnail: bool
    visual_tokens: int
    tile_size: int
    source: str = Field(description="`engine`: the grid InternVL reported for this page; `plan`: "
                                    "the grid it would use (another engine read the page)")


def _job_page(session: Session, tenant_id: str, job_id: str, page_no: int) -> tuple[Job, Page]:
    job = job_or_404(session, tenant_id, job_id)
    page = job_repo.get_page(session, job.id, page_no)
    if page is None:
        raise NotFound(f"job {job_id} has no page {page_no}")
    return job, page


@router.get("/{job_id}/pages/{page_no}/image", response_class=Response, summary="Get a page's image",
            responses={200: IMAGE_OK, **error_responses(UNAUTHORIZED, INVALID_REQUEST, NOT_FOUND)})
def get_page_image(job_id: str, page_no: PageNo, session: SessionDep, tenant: TenantDep,
                   blobs: BlobsDep) -> Response:
    """The page as it was stored and read: rendered, turned upright, before any tiling."""
    _, page = _job_page(session, tenant.id, job_id, page_no)
    try:
        data = blobs.get(page.image_key)
    except BlobNotFound as exc:
        raise NotFound(f"page {page_no} of job {job_id} has no stored image", code="no_image") from exc
    return Response(content=data, media_type=_media_type(data), headers={
        "Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'"})


def _media_type(data: bytes) -> str:
    try:
        return sniff_media_type(data)
    except TesseraError:
        return "application/octet-stream"


@router.get("/{job_id}/pages/{page_no}/tiles", response_model=PageTilesOut,
            summary="Get a page's InternVL tile grid",
            responses=error_responses(UNAUTHORIZED, INVALID_REQUEST,
                                      (404, "`not_found`: no such job for this tenant, or page")))
def get_page_tiles(job_id: str, page_no: PageNo, session: SessionDep, tenant: TenantDep) -> PageTilesOut:
    """The grid the page was cut into (InternVL) or would be (workers/internvl/tiling.py, with
    the job's max_tiles and the stored image's size: the plan the engine follows)."""
    job, page = _job_page(session, tenant.id, job_id, page_no)
    max_tiles = min(max(int(job.options.get("max_tiles") or DEFAULT_MAX_TILES), 1), MAX_TILES_LIMIT)
    plan = plan_tiles(page.width, page.height, max_tiles)
    grid, tiles, source = list(plan.grid), plan.tiles, "plan"
    used = page.tile_grid or {}
    if isinstance(used.get("grid"), list) and isinstance(used.get("count"), int):
        grid, tiles, source = [int(v) for v in used["grid"]], used["count"], "engine"
    return PageTilesOut(width=page.width, height=page.height, max_tiles=max_tiles, grid=grid,
                        tiles=tiles, thumbnail=tiles > grid[0] * grid[1],
                        visual_tokens=tiles * TOKENS_PER_TILE, tile_size=TILE_SIZE, source=source)
