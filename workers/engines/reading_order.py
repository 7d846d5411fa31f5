"""Reading order for detected text boxes: lines top-down for horizontal text, columns right to left
for vertical text (Chinese and Japanese set in columns are read top to bottom within a column, the
columns from right to left; JIS X 4051, W3C "Requirements for Chinese Text Layout" 3.1).

Works on spans (one detected box and its text, in page pixels) and gives back lines (a visual line
or column: its spans' text joined, the box around them, and their confidence), which are what a
page's `text` and `lines` are made of.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

VERTICAL_ASPECT = 1.5  # a box at least this much taller than wide, holding 2+ characters, is a column
# Scripts written without spaces between words: spans of these are joined without one. (Korean
# puts spaces between words, so hangul is not here.)
_CJK_RANGES = (
    (0x3000, 0x303F),
    (0x3040, 0x30FF),  # kana
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0xFF00, 0xFFEF),
)


@dataclass(frozen=True)
class Span:
    """One detected box: [x0, y0, x1, y1] in page pixels, its text and recognition score (0-1)."""

    x0: float
    y0: float
    x1: float
    y1: float
    text: str
    score: float

    @property
    def vertical(self) -> bool:
        return (self.y1 - self.y0) >= VERTICAL_ASPECT * (self.x1 - self.x0) and len(self.text) >= 2


@dataclass(frozen=True)
class Line:
    """A visual line (or a column of vertical text): spans in reading order."""

    spans: tuple[Span, ...]

    @property
    def text(self) -> str:
        text = self.spans[0].text
        for span in self.spans[1:]:
            glue = "" if is_cjk(text[-1:]) and is_cjk(span.text[:1]) else " "
            text += glue + span.text
        return text

    @property
    def bbox(self) -> list[int]:
        return [round(min(s.x0 for s in self.spans)), round(min(s.y0 for s in self.spans)),
                round(max(s.x1 for s in self.spans)), round(max(s.y1 for s in self.spans))]

    @property
    def confidence(self) -> float:
        """Mean of the spans' scores, weighted by their characters."""
        weights = [max(1, len(s.text)) for s in self.spans]
        return sum(s.score * w for s, w in zip(self.spans, weights)) / sum(weights)

    def to_json(self) -> dict[str, object]:
        return {"text": self.text, "bbox": self.bbox, "confidence": round(self.confidence, 4)}


def is_vertical_page(spans: list[Span]) -> bool:
    """Most of the page's characters stand in vertical columns."""
    vertical = sum(len(s.text) for s in spans if s.vertical)
    return vertical > sum(len(s.text) for s in spans) / 2


def reading_order(spans: list[Span]) -> list[Line]:
    """Spans grouped into lines in reading order: columns right to left on a vertical page,
    lines top-down (spans left to right within a line) otherwise."""
    if not spans:
        return []
    if is_vertical_page(spans):
        columns = _bands(spans, start=lambda s: s.x0, end=lambda s: s.x1, key=lambda s: -(s.x0 + s.x1))
        return [Line(tuple(sorted(column, key=lambda s: s.y0))) for column in columns]
    lines = _bands(spans, start=lambda s: s.y0, end=lambda s: s.y1, key=lambda s: s.y0 + s.y1)
    return [Line(tuple(sorted(line, key=lambda s: s.x0))) for line in lines]


def _bands(spans: list[Span], start, end, key) -> list[list[Span]]:  # noqa: ANN001 (accessors)
    """Spans grouped into bands along one axis (lines by their vertical extent, columns by their
    horizontal one), in the order `key` sorts their centres. A span joins the band before it when
    they overlap by at least half the shorter extent."""
    bands: list[list[Span]] = []
    for span in sorted(spans, key=key):
        if bands and _overlaps(bands[-1], span, start, end):
            bands[-1].append(span)
        else:
            bands.append([span])
    return bands


def _overlaps(band: list[Span], span: Span, start, end) -> bool:  # noqa: ANN001
    low, high = min(start(s) for s in band), max(end(s) for s in band)
    size = median(end(s) - start(s) for s in band)
    overlap = min(high, end(span)) - max(low, start(span))
    return overlap >= 0.5 * min(size, end(span) - start(span))


def is_cjk(char: str) -> bool:
    return bool(char) and any(lo <= ord(char) <= hi for lo, hi in _CJK_RANGES)
