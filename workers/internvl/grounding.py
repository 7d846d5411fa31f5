"""Reading InternVL's grounding answers: boxes on the 0-1000 scale -> page pixels.

Asked "Please provide the bounding box coordinate of the region this sentence
describes: <ref>chart</ref>" (prompt.py), InternVL 1.5 answers
`<ref>chart</ref><box>[[x0, y0, x1, y1]]</box>`: one `<box>` may hold several
quads, an answer may hold several `<ref>/<box>` pairs, and the repository's own
evaluation (eval/refcoco) reads bare `[[x0, y0, x1, y1]]` lists, so all three
forms are read here. `<ref>`, `<box>` and their closers are special tokens: the
answer must be decoded with special tokens kept (runner.py), or the markup is
gone before it gets here. Coordinates are thousandths of the image's width and
height (the evaluation divides by 1000 and multiplies by the image size).

A parser here never raises: what it cannot read becomes a warning on the page.
"""

from __future__ import annotations

import re

GROUNDING_SCALE = 1000.0
MIN_BOX_UNITS = 10.0  # a region narrower or shorter than 1% of the page is noise
SAME_REGION_IOU = 0.7  # two phrases' boxes overlapping this much are one region

_NUM = r"\s*(-?\d+(?:\.\d+)?)\s*"
_QUAD = re.compile(rf"\[{_NUM},{_NUM},{_NUM},{_NUM}\]")
_BOX = re.compile(r"<box>(.*?)</box>", re.DOTALL)
_MARKUP = ("<box>", "</box>", "<ref>", "[[")

Box = list[float]  # [x0, y0, x1, y1] in page pixels


def parse_grounding(text: str, width: int, height: int) -> tuple[list[Box], list[str]]:
    """Boxes in page pixels (answer order, duplicates merged) and warnings, from one
    grounding answer for a `width` x `height` image. An answer with no markup at all
    ("none", a sentence) gives no box and no warning."""
    warnings: list[str] = []
    quads: list[list[float]] = []
    for body in _BOX.findall(text):
        found = _quads(body)
        if not found:
            warnings.append(f"chart grounding: no coordinates in <box>{body[:40]}</box>")
        quads += found
    quads += _quads(_BOX.sub(" ", text))  # bare [[...]] lists, and quads of an unclosed <box>
    if not quads and not warnings and any(mark in text for mark in _MARKUP):
        warnings.append(f"chart grounding: markup without a box: {text[:60]!r}")
    boxes = []
    for quad in quads:
        box = to_pixels(quad, width, height)
        if box is None:
            warnings.append(f"chart grounding: ignored degenerate box {quad}")
        else:
            boxes.append(box)
    return merge_boxes(boxes), warnings


def _quads(text: str) -> list[list[float]]:
    return [[float(v) for v in quad] for quad in _QUAD.findall(text)]


def to_pixels(quad: list[float], width: int, height: int) -> Box | None:
    """0-1000 units -> page pixels; clamps to the page, orders corners, drops slivers."""
    x0, x1 = sorted(min(max(v, 0.0), GROUNDING_SCALE) for v in (quad[0], quad[2]))
    y0, y1 = sorted(min(max(v, 0.0), GROUNDING_SCALE) for v in (quad[1], quad[3]))
    if x1 - x0 < MIN_BOX_UNITS or y1 - y0 < MIN_BOX_UNITS:
        return None
    sx, sy = width / GROUNDING_SCALE, height / GROUNDING_SCALE
    return [round(x0 * sx, 1), round(y0 * sy, 1), round(x1 * sx, 1), round(y1 * sy, 1)]


def merge_boxes(boxes: list[Box], threshold: float = SAME_REGION_IOU) -> list[Box]:
    """The boxes in order, each dropped when it overlaps a kept one by IoU >= threshold
    (the same chart found by "chart" and by "graph", or listed twice)."""
    kept: list[Box] = []
    for box in boxes:
        if all(iou(box, other) < threshold for other in kept):
            kept.append(box)
    return kept


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two [x0, y0, x1, y1] boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(w, 0.0) * max(h, 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
