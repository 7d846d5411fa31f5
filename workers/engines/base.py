"""The one interface every inference engine implements.

Workers only ever talk to `Engine.process`, so the pipeline can run the CPU
default (rapidocr), the product (internvl) or the pixel-digest engine used by
pipeline tests without knowing which one it has.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from PIL import Image

TASK_OCR = "ocr"
TASK_CHARTS = "charts"


@dataclass
class PageInput:
    """One rendered page and what to do with it."""

    image: Image.Image
    tasks: tuple[str, ...] = (TASK_OCR,)
    max_tiles: int = 12
    ref: str = ""  # opaque identity (job/page) for logs only


@dataclass
class ChartTable:
    """A chart turned into data. bbox is [x0, y0, x1, y1] in page pixels."""

    bbox: list[float]
    title: str
    columns: list[str]
    rows: list[list[str]]

    def to_json(self) -> dict[str, Any]:
        return {
            "bbox": self.bbox,
            "title": self.title,
            "table": {"columns": self.columns, "rows": self.rows},
        }


@dataclass
class PageResult:
    """What an engine says about one page. Degraded output says so in `warnings`.

    `lines`: [{text, bbox: [x0, y0, x1, y1] in the page image's pixels, confidence 0-1}] in
    reading order, their texts joined by newlines making `text`; empty when the engine gives no
    geometry (InternVL). `positioned`: the engine places its lines (their boxes are real); False
    for engines that give text without geometry, whose text the archive formats carry unplaced.
    `recognition`: the resolution the engine read the page at
    ({"width", "height", "scale"} and how: "strips" for rapidocr, "tiles" for InternVL)."""

    text: str
    engine: str
    charts: list[ChartTable] = field(default_factory=list)
    tiles: dict[str, Any] | None = None  # {"grid": [cols, rows], "count": n} (thumbnail counted)
    lines: list[dict[str, Any]] = field(default_factory=list)
    recognition: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds, by stage
    positioned: bool = False  # last, so positional construction elsewhere keeps its meaning

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["charts"] = [chart.to_json() for chart in self.charts]
        return data


class Engine(Protocol):
    """Turns a batch of pages into results, one per page, in order.

    One call gets a whole batch; the engine decides how to pack it on its device.
    An engine raises only for faults of the engine itself; a page it cannot read
    comes back as a PageResult with a warning. An engine that finishes pages at
    different times also has `process_iter(pages)`, yielding (index, result) for
    each page as it is done, in any order (see `results_as_ready`).
    """

    name: str

    def process(self, pages: list[PageInput]) -> list[PageResult]: ...


def results_as_ready(engine: Engine, pages: list[PageInput]) -> Iterator[tuple[int, PageResult]]:
    """(index, result) per page as the engine finishes it, so a worker can store each page
    at once: its job's progress moves page by page, and a worker that dies mid-batch loses
    only the pages it had not finished."""
    stream = getattr(engine, "process_iter", None)
    if stream is not None:
        yield from stream(pages)
    else:
        yield from enumerate(engine.process(pages))
