"""RapidOCR on the CPU: the default engine, needing no GPU and no download.

rapidocr 3.10 ships PP-OCRv6 small detection and recognition models (Chinese and
English) in its wheel; any other model would be downloaded, so we keep the
defaults. The direction classifier stays off: on it garbles some English lines
(and upright pages are what the pipeline renders).

Output is plain text in reading order: detected boxes grouped into lines by
vertical overlap, lines top-down, boxes left-right.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from workers.engines.base import TASK_CHARTS, PageInput, PageResult

CHARTS_WARNING = "chart extraction needs the internvl engine"
_CJK_RANGES = (
    (0x3000, 0x303F),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0xFF00, 0xFFEF),
)


class RapidOcrEngine:
    """Loads its models on first use, once per instance (the worker keeps one per process)."""

    name = "rapidocr"

    def __init__(self, threads: int = 2, text_score: float = 0.5, max_side_len: int = 2000):
        # rapidocr silently ignores a thread count above os.cpu_count() (then uses all cores).
        self.threads = max(1, min(threads, os.cpu_count() or 1))
        self.text_score = text_score
        self.max_side_len = max_side_len
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
                        "Global.max_side_len": self.max_side_len,
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
        result = PageResult(text="", engine=self.name)
        try:
            out = ocr(page.image.convert("RGB"))
        except MemoryError:
            raise
        except Exception as exc:  # a page rapidocr cannot take (e.g. 20x8000 px): say so
            result.warnings.append(
                f"rapidocr could not read this page: {type(exc).__name__}: {exc}"
            )
        else:
            if out.boxes is not None and out.txts is not None:
                result.text = reading_order(list(zip(out.boxes, out.txts)))
        result.timings = {"ocr": time.perf_counter() - started}
        if TASK_CHARTS in page.tasks:
            result.warnings.append(CHARTS_WARNING)
        return result


def reading_order(boxes: list[tuple[np.ndarray, str]]) -> str:
    """Text of detected (4-point box, text) pairs: lines top-down, boxes left-right."""
    spans = sorted(((*_extent(box), text) for box, text in boxes), key=lambda s: (s[1] + s[3]) / 2)
    lines: list[list[tuple[float, float, float, float, str]]] = []
    for span in spans:
        if lines and _same_line(lines[-1], span):
            lines[-1].append(span)
        else:
            lines.append([span])
    return "\n".join(_join(sorted(line, key=lambda s: s[0])) for line in lines)


def _extent(box: np.ndarray) -> tuple[float, float, float, float]:
    pts = np.asarray(box, dtype=float).reshape(-1, 2)
    return pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()


def _same_line(
    line: list[tuple[float, float, float, float, str]], span: tuple[float, float, float, float, str]
) -> bool:
    """True when `span` overlaps the line's band by at least half the shorter height."""
    top, bottom = min(s[1] for s in line), max(s[3] for s in line)
    line_h = np.median([s[3] - s[1] for s in line])
    overlap = min(bottom, span[3]) - max(top, span[1])
    return overlap >= 0.5 * min(line_h, span[3] - span[1])


def _join(line: list[tuple[float, float, float, float, str]]) -> str:
    text = line[0][4]
    for span in line[1:]:
        glue = "" if _is_cjk(text[-1:]) and _is_cjk(span[4][:1]) else " "
        text += glue + span[4]
    return text


def _is_cjk(char: str) -> bool:
    return bool(char) and any(lo <= ord(char) <= hi for lo, hi in _CJK_RANGES)
