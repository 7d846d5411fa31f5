"""Recognising a page at its own resolution, a horizontal strip at a time.

rapidocr shrinks any image whose long side is over its `max_side_len` before it detects and reads
text, so the digits of a long statement or a 300-dpi page are read from a copy a fraction of its
size. Tessera never asks it to shrink: a page over STRIP_PIXELS is cut into full-width strips of
about that many pixels, overlapping by OVERLAP pixels, each recognised at scale 1.

A line whose height is at most OVERLAP lies whole inside the strip that holds its centre in its
own part (the strip less half the overlap at each inner edge), so each strip keeps only the boxes
whose centres fall in its own part: every line is read once, from a strip that holds it whole.
"""

from __future__ import annotations

from dataclasses import dataclass

STRIP_PIXELS = 4_000_000  # pixels the detector may see at once (a 200-dpi Letter page is one strip)
MIN_STRIP_HEIGHT = 1024  # for pages at least DET_MIN_SIDE wide: no strip gets enlarged
OVERLAP = 256  # pixels; taller lines than this (over 90 pt at 200 dpi) may be cut at a strip edge
# rapidocr's detector enlarges an image whose short side is under this (Det.limit_side_len, type min)
DET_MIN_SIDE = 736


@dataclass(frozen=True)
class Strip:
    """Rows [top, bottom) of the page; keeps boxes whose centre row is in [own_from, own_to)."""

    top: int
    bottom: int
    own_from: float
    own_to: float

    def owns(self, y0: float, y1: float) -> bool:
        return self.own_from <= (y0 + y1) / 2 < self.own_to


def plan_strips(width: int, height: int, strip_pixels: int = STRIP_PIXELS,
                overlap: int = OVERLAP) -> list[Strip]:
    """Full-width strips covering a width x height page (pixels), top to bottom, each holding at
    most `strip_pixels` as the detector sees it (a page narrower than DET_MIN_SIDE is enlarged
    by the detector, so its strips are shorter)."""
    enlarged = max(1.0, DET_MIN_SIDE / max(width, 1)) ** 2
    if width * height * enlarged <= strip_pixels:
        return [Strip(0, height, 0.0, float(height))]
    floor = MIN_STRIP_HEIGHT if width >= DET_MIN_SIDE else 2 * overlap
    strip_height = max(floor, int(strip_pixels / (width * enlarged)), 2 * overlap)
    if strip_height >= height:
        return [Strip(0, height, 0.0, float(height))]
    step = strip_height - overlap
    count = -(-(height - overlap) // step)  # ceil: the last strip ends at the page's bottom
    tops = [min(i * step, height - strip_height) for i in range(count)]
    strips = []
    for index, top in enumerate(tops):
        own_from = 0.0 if index == 0 else (tops[index - 1] + strip_height + top) / 2
        own_to = float(height) if index == count - 1 else (top + strip_height + tops[index + 1]) / 2
        strips.append(Strip(top, top + strip_height, own_from, own_to))
    return strips
