"""Request and response bodies of the v1 REST contract."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class JobOptions(BaseModel):
    """What to do with a document. Unknown fields are refused so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid")

    tasks: list[Literal["ocr", "charts"]] = Field(default_factory=lambda: ["ocr"], min_length=1)
    max_tiles: int = Field(12, ge=1, le=40, description="InternVL tiles per page (1-40)")
    dpi: int | None = Field(None, ge=50, le=600, description="PDF render resolution (default 200)")
    pages: str | None = Field(None, max_length=200, pattern=r"^\s*\d+(\s*-\s*\d+)?(\s*,\s*\d+(\s*-\s*\d+)?)*\s*$",
                              examples=["1-3,7"])
    priority: Literal["normal", "high"] = "normal"
    webhook_url: str | None = Field(None, max_length=2000)

    @field_validator("tasks")
    @classmethod
    def _ocr_first(cls, tasks: list[str]) -> list[str]:
        return list(dict.fromkeys(tasks))


class ErrorInfo(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorInfo


class ProgressOut(BaseModel):
    pages_total: int
    pages_done: int
    pages_failed: int


class JobOut(BaseModel):
    id: str
    status: str
    filename: str | None
    media_type: str
    input_sha256: str
    options: dict[str, Any]
    page_count: int | None
    progress: ProgressOut
    error: ErrorInfo | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    links: dict[str, str]


class PageOut(BaseModel):
    job_id: str
    page: int
    status: str
    width: int
    height: int
    attempt: int
    text: str | None = None
    charts: list[dict[str, Any]] = Field(default_factory=list)
    tiles: dict[str, Any] | None = None
    engine: str | None = None
    warnings: list[str] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict)
    error: ErrorInfo | None = None
