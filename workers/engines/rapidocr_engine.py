"""RapidOCR on the CPU: the default engine, needing no GPU and no download.

rapidocr 3.10 ships PP-OCRv6 small detection and recognition models (Chinese and
English) in its wheel; any other model would be downloaded, so we keep the
defaults. The direction classifier stays off: on it garbles some English lines
(pages reach the engine upright: workers/orientation.py turned them in the split stage).

Pages are read at their own resolution: rapidocr is never left to shrink a page (it would, to
`max_side_len`); a large page is read in strips (workers/engines/strips.py). Output: the page's
lines in reading order (workers/engines/reading_order.py), each with its box in page pixels and
its confidence, and the text they make.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from workers.engines.base import TASK_CHARTS, PageInput, PageResult
from workers.engines.reading_order import Span, reading_order
from workers.engines.strips import plan_strips

CHARTS_WARNING = "chart extraction needs the internvl engine"
NO_SHRINK = 1_000_000  # rapidocr's max_side_len: above any strip, so it never shrinks one
MIN_SIDE = 32  # pixels: a page narrower (or shorter) than this holds no readable line


class RapidOcrEngine:
    """Loads its models on first use, once per instance (the worker keeps one per process)."""

    name = "rapidocr"

    def __init__(self, threads: int = 2, text_score: float = 0.5):
        # rapidocr silently ignores a thread count above os.cpu_count() (then uses all cores).
        self.threads = max(1, min(threads, os.cpu_count() or 1))
        self.text_score = text_score
        self._ocr: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._ocr is None:
                from rapidocr import RapidOCR

                self._ocr = RapidOCR(
                    params={
                        "Global.use_cls": False,
                        "Global.log_level": "error",
                        "Global.text_score": self.text_score,
                        "Global.max_side_len": NO_SHRINK,
                        "EngineConfig.onnxruntime.intra_op_num_threads": self.threads,
                        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
                    }
                )
            return self._ocr

    def process(self, pages: list[PageInput]) -> list[PageResult]:
        return [result for _, result in self.process_iter(pages)]

    def process_iter(self, pages: list[PageInput]) -> Iterator[tuple[int, PageResult]]:
        ocr = self._load()
        for index, page in enumerate(pages):
            yield index, self._one(ocr, page)

    def _one(self, ocr: Any, page: PageInput) -> PageResult:
        started = time.perf_counter()
        result = PageResult(text="", engine=self.name, positioned=True)
        pixels = np.asarray(page.image.convert("RGB"))
        strips = plan_strips(pixels.shape[1], pixels.shape[0])
        try:
            if min(pixels.shape[:2]) < MIN_SIDE:
                raise ValueError(f"the page is {pixels.shape[1]}x{pixels.shape[0]} px, too thin to hold text")
            spans = [span for strip in strips for span in _read_strip(ocr, pixels, strip)]
        except MemoryError:
            raise
        except Exception as exc:  # a page rapidocr cannot take (e.g. 20x8000 px): say so
            result.warnings.append(f"rapidocr could not read this page: {type(exc).__name__}: {exc}")
        else:
            lines = reading_order(spans)
            result.text = "\n".join(line.text for line in lines)
            result.lines = [line.to_json() for line in lines]
        result.recognition = {"width": pixels.shape[1], "height": pixels.shape[0], "scale": 1.0,
                              "strips": len(strips)}
        result.timings = {"ocr": time.perf_counter() - started}
        if TASK_CHARTS in page.tasks:
            result.warnings.append(CHARTS_WARNING)
        return result


def _read_strip(ocr: Any, pixels: np.ndarray, strip) -> list[Span]:  # noqa: ANN001 (Strip)
    """The spans rapidocr finds in one strip that the strip owns, in page coordinates."""
    out = ocr(pixels[strip.top:strip.bottom])
    if out.boxes is None or out.txts is None:
        return []
    spans = []
    for box, text, score in zip(out.boxes, out.txts, out.scores):
        points = np.asarray(box, dtype=float).reshape(-1, 2)
        y0, y1 = points[:, 1].min() + strip.top, points[:, 1].max() + strip.top
        if strip.owns(y0, y1):
            spans.append(Span(points[:, 0].min(), y0, points[:, 0].max(), y1, text, float(score)))
    return spans
