"""A fast CPU engine for pipeline and chaos tests: its text is a digest of the page.

text = "digest:<sha256 of the page's RGB pixel bytes> size:<w>x<h>", so a test can
recompute the expected result from the stored page image (`expected_text`).
"""

from __future__ import annotations

import hashlib
import time

from PIL import Image

from workers.engines.base import TASK_CHARTS, PageInput, PageResult
from workers.engines.rapidocr_engine import CHARTS_WARNING  # cheap: rapidocr loads lazily


def expected_text(image: Image.Image) -> str:
    """What DigestEngine says about `image`."""
    rgb = image.convert("RGB")
    return f"digest:{hashlib.sha256(rgb.tobytes()).hexdigest()} size:{rgb.width}x{rgb.height}"


class DigestEngine:
    name = "digest"

    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s

    def process(self, pages: list[PageInput]) -> list[PageResult]:
        return [self._one(page) for page in pages]

    def _one(self, page: PageInput) -> PageResult:
        started = time.perf_counter()
        if self.delay_s > 0:
            time.sleep(self.delay_s)
        result = PageResult(text=expected_text(page.image), engine=self.name)
        if TASK_CHARTS in page.tasks:
            result.warnings.append(CHARTS_WARNING)
        result.timings = {"ocr": time.perf_counter() - started}
        return result
