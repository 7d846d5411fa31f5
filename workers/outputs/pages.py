"""One page as the archive formats see it: its stored image, its size, what was done to it and,
once it is done, its text and lines (from the stored page result)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from storage.models import Page, PageStatus


@dataclass(frozen=True)
class OutputPage:
    """`width`, `height`: the stored page image, pixels. `lines`: [{text, bbox [x0, y0, x1, y1] in
    those pixels, confidence 0-1}] in reading order. `positioned`: the lines carry the engine's
    boxes (false: the engine gave text without geometry, or the page is not done)."""

    page_no: int
    width: int
    height: int
    image_key: str | None
    render: dict[str, Any] = field(default_factory=dict)
    done: bool = False
    text: str = ""
    lines: list[dict[str, Any]] = field(default_factory=list)
    positioned: bool = False
    engine: str | None = None


def is_positioned(result: dict[str, Any]) -> bool:
    """Whether a stored page result's lines carry boxes. Results stored before the `positioned`
    field existed had boxes exactly when they had lines (rapidocr)."""
    return bool(result.get("positioned", bool(result.get("lines"))))


def output_page(page: Page, result: dict[str, Any] | None) -> OutputPage:
    """`result`: the page's stored result (workers/infer.py `page_result_body`), or None when the
    page has none (not done, failed)."""
    render = {key: value for key, value in (page.render or {}).items() if key != "warnings"}
    if result is None or page.status != PageStatus.DONE:
        return OutputPage(page.page_no, page.width, page.height, page.image_key, render)
    return OutputPage(page.page_no, page.width, page.height, page.image_key, render, done=True,
                      text=result.get("text") or "", lines=list(result.get("lines") or []),
                      positioned=is_positioned(result), engine=result.get("engine"))
