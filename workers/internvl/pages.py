"""One page's way through the InternVL engine: tiling, its requests, its result.

Everything that can go wrong with one page (unreadable image, bad options, a
prompt that does not fit the device) ends here as a warning on that page,
never as an exception that would fail the pages batched with it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from workers.engines.base import TASK_CHARTS, TASK_OCR, ChartTable, PageInput, PageResult
from workers.internvl.batching import Generation
from workers.internvl.text import clean_transcription
from workers.internvl.tiling import MAX_TILES_LIMIT, TILE_SIZE, TilePlan, tile_uint8

ENGINE_NAME = "internvl"
LOW_SCALE = 0.5  # a page read at less than half its resolution gets a warning
KNOWN_TASKS = (TASK_OCR, TASK_CHARTS)


@dataclass
class PageJob:
    index: int
    page: PageInput
    max_tiles: int = 12  # the page's, clamped to 1..40
    plan: TilePlan | None = None
    pixels: np.ndarray | None = None
    text: str = ""
    charts: list[ChartTable] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.pixels is not None

    def wants(self, task: str) -> bool:
        return task in self.page.tasks

    def add_time(self, stage: str, seconds: float) -> None:
        self.timings[stage] = self.timings.get(stage, 0.0) + seconds

    def take(
        self, label: str, answer: Generation | None, max_new_tokens: int, stage: str | None = None
    ) -> str | None:
        """An answer's text, its time charged to this page (all to `stage` if given);
        None (with a warning) when it failed."""
        if answer is None:
            return None
        for name, seconds in answer.timings.items():
            self.add_time(stage or name, seconds)
        if answer.error:
            self.warnings.append(f"{label} failed: {answer.error}")
            return None
        if answer.truncated:
            self.warnings.append(f"{label}: answer cut at max_new_tokens ({max_new_tokens})")
        return answer.text

    def result(self) -> PageResult:
        tiles, recognition = None, {}
        if self.plan is not None:
            tiles = {"grid": list(self.plan.grid), "count": self.plan.tiles}
            recognition = recognition_of(self.plan)
            if recognition["scale"] < LOW_SCALE:
                self.warnings.append(
                    f"read at {recognition['scale']:.0%} of the page's resolution (a {tiles['grid'][0]}x"
                    f"{tiles['grid'][1]} grid of {TILE_SIZE}-px tiles); a higher max_tiles reads finer print")
        return PageResult(
            text=clean_transcription(self.text),
            engine=ENGINE_NAME,
            charts=self.charts,
            tiles=tiles,
            recognition=recognition,
            warnings=self.warnings,
            timings=self.timings,
        )


def recognition_of(plan: TilePlan) -> dict[str, object]:
    """The resolution InternVL reads a page at: the page resized onto its tile grid (the
    thumbnail aside). `scale` is the smaller of the two axes' factors (1.0: the page's own
    pixels; below it, finer print is lost; above it, a small page is enlarged)."""
    cols, rows = plan.grid
    scale = min(cols * TILE_SIZE / plan.width, rows * TILE_SIZE / plan.height)
    return {"width": cols * TILE_SIZE, "height": rows * TILE_SIZE, "scale": round(scale, 3),
            "tiles": plan.tiles}


def prepare(index: int, page: PageInput) -> PageJob:
    """Tile the page with its own max_tiles (clamped to 1..40, with a warning)."""
    job = PageJob(index, page)
    unknown = [t for t in page.tasks if t not in KNOWN_TASKS]
    if unknown:
        job.warnings.append(f"unknown task(s) ignored: {', '.join(unknown)}")
    job.max_tiles = min(max(int(page.max_tiles), 1), MAX_TILES_LIMIT)
    if job.max_tiles != page.max_tiles:
        job.warnings.append(
            f"max_tiles {page.max_tiles} outside 1..{MAX_TILES_LIMIT}; used {job.max_tiles}"
        )
    start = time.perf_counter()
    try:
        job.plan, job.pixels = tile_uint8(page.image, job.max_tiles)
    except Exception as exc:  # noqa: BLE001 - a broken image fails its page, not the batch
        job.warnings.append(
            f"could not read the page image: {type(exc).__name__}: {str(exc)[:120]}"
        )
    job.add_time("tiling", time.perf_counter() - start)
    return job
