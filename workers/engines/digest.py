"""A fast CPU engine for pipeline and chaos tests: its text is a digest of the page.

text = "digest:<sha256 of the page's RGB pixel bytes> size:<w>x<h>", so a test can
recompute the expected result from the page image (`expected_text`). With `nonce` on, each
run of the engine on a page adds " run:<random hex>" (`split_run`), so a test can tell which
attempt produced a stored result, as a GPU engine's batch-dependent numerics would.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import signal
import time
from collections.abc import Iterator

from PIL import Image

from workers.engines.base import TASK_CHARTS, PageInput, PageResult
from workers.engines.rapidocr_engine import CHARTS_WARNING  # cheap: rapidocr loads lazily


def expected_text(image: Image.Image) -> str:
    """What DigestEngine says about `image`."""
    rgb = image.convert("RGB")
    return f"digest:{hashlib.sha256(rgb.tobytes()).hexdigest()} size:{rgb.width}x{rgb.height}"


RUN_MARK = " run:"


def split_run(text: str) -> tuple[str, str | None]:
    """(digest text, run nonce or None) of a DigestEngine text."""
    digest, mark, run = text.partition(RUN_MARK)
    return digest, run if mark else None


POISON_RGB = (255, 0, 255)  # a page whose top-left pixel is this colour kills its worker (chaos tests)


def is_poison(image: Image.Image) -> bool:
    return image.convert("RGB").getpixel((0, 0)) == POISON_RGB


class DigestEngine:
    """`delay_s` sleeps per page (slow I/O-like work), `busy_s` spins the CPU per page (CPU-bound
    work, for scaling benchmarks), `poison` makes marked pages SIGKILL their own process,
    `nonce` marks every run's text with a random nonce of its own."""

    name = "digest"

    def __init__(self, delay_s: float = 0.0, busy_s: float = 0.0, poison: bool = False,
                 nonce: bool = False):
        self.delay_s = delay_s
        self.busy_s = busy_s
        self.poison = poison
        self.nonce = nonce

    def process(self, pages: list[PageInput]) -> list[PageResult]:
        return [result for _, result in self.process_iter(pages)]

    def process_iter(self, pages: list[PageInput]) -> Iterator[tuple[int, PageResult]]:
        for index, page in enumerate(pages):
            yield index, self._one(page)

    def _one(self, page: PageInput) -> PageResult:
        started = time.perf_counter()
        if self.poison and is_poison(page.image):
            os.kill(os.getpid(), signal.SIGKILL)
        if self.delay_s > 0:
            time.sleep(self.delay_s)
        while time.perf_counter() - started < self.busy_s:
            hashlib.sha256(b"x" * 65536).digest()
        text = expected_text(page.image)
        if self.nonce:
            text += RUN_MARK + secrets.token_hex(8)
        result = PageResult(text=text, engine=self.name)
        if TASK_CHARTS in page.tasks:
            result.warnings.append(CHARTS_WARNING)
        result.timings = {"ocr": time.perf_counter() - started}
        return result
