"""Parsing what InternVL says about charts: grounding boxes and chart-to-table answers.

The model's answers are free text. A parser here never raises: whatever it
cannot read becomes a warning string on the page, and the page keeps the rest.
Boxes come on InternVL's 0-1000 grounding scale
(`<ref>chart</ref><box>[[x0, y0, x1, y1]]</box>`) and leave here in page pixels.
"""

from __future__ import annotations

import re

GROUNDING_SCALE = 1000.0
MIN_BOX_UNITS = 10.0  # a chart narrower or shorter than 1% of the page is noise
_BOX = re.compile(r"<box>(.*?)</box>", re.DOTALL)
_NUM = r"\s*(-?\d+(?:\.\d+)?)\s*"
_QUAD = re.compile(rf"\[{_NUM},{_NUM},{_NUM},{_NUM}\]")
_TITLE = re.compile(r"^(?:#+\s*)?(?:\*\*)?title(?:\*\*)?\s*[:：|]\s*(.*)$", re.IGNORECASE)
_SEPARATOR_CELL = re.compile(r"^:?-{1,}:?$")

Box = list[float]


def parse_grounding(
    text: str, width: int, height: int, max_charts: int = 8
) -> tuple[list[Box], list[str]]:
    """Chart boxes in page pixels ([x0, y0, x1, y1]) and warnings, from a grounding answer."""
    bodies = _BOX.findall(text)
    if not bodies:
        markup = "<box>" in text or "<ref>" in text
        return [], (["chart grounding: box markup present but unreadable"] if markup else [])
    warnings: list[str] = []
    boxes: list[Box] = []
    for body in bodies:
        quads = _QUAD.findall(body)
        if not quads:
            warnings.append(f"chart grounding: no coordinates in <box>{body[:40]}</box>")
        for quad in quads:
            box = _to_pixels([float(v) for v in quad], width, height)
            if box is None:
                warnings.append(f"chart grounding: ignored degenerate box {list(map(float, quad))}")
            elif box not in boxes:
                boxes.append(box)
    if len(boxes) > max_charts:
        warnings.append(f"chart grounding: {len(boxes)} boxes, kept the first {max_charts}")
    return boxes[:max_charts], warnings


def _to_pixels(quad: list[float], width: int, height: int) -> Box | None:
    """0-1000 units -> page pixels; clamps to the page, orders corners, drops slivers."""
    x0, x1 = sorted(min(max(v, 0.0), GROUNDING_SCALE) for v in (quad[0], quad[2]))
    y0, y1 = sorted(min(max(v, 0.0), GROUNDING_SCALE) for v in (quad[1], quad[3]))
    if x1 - x0 < MIN_BOX_UNITS or y1 - y0 < MIN_BOX_UNITS:
        return None
    sx, sy = width / GROUNDING_SCALE, height / GROUNDING_SCALE
    return [round(x0 * sx, 1), round(y0 * sy, 1), round(x1 * sx, 1), round(y1 * sy, 1)]


def parse_chart_table(text: str) -> tuple[str, list[str], list[list[str]], list[str]]:
    """(title, columns, rows, warnings) from a chart-to-table answer (Markdown or pipe lines)."""
    lines = _lines(text)
    title = ""
    rows: list[list[str]] = []
    for line in lines:
        match = _TITLE.match(line)
        if match and not title and not rows:
            title = _clean_cell(match.group(1).strip().strip("|"))
        elif "|" in line:
            cells = _split_row(line)
            if not _is_separator(cells):
                rows.append(cells)
    if not rows:
        return title, [], [], ["chart table: no table in the model's answer"]
    return (title, *_rectangular(rows[0], rows[1:]))


def _lines(text: str) -> list[str]:
    text = text.replace("<0x0A>", "\n")
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith("```")
    ]


def _split_row(line: str) -> list[str]:
    line = line.strip()
    line = line.removeprefix("|")
    line = line.removesuffix("|")
    return [_clean_cell(cell) for cell in re.split(r"(?<!\\)\|", line)]


def _is_separator(cells: list[str]) -> bool:
    """A Markdown header rule such as |---|:--:|."""
    return any(cells) and all(_SEPARATOR_CELL.match(c) for c in cells if c)


def _clean_cell(cell: str) -> str:
    cell = cell.strip().replace("\\|", "|")
    return (
        cell[2:-2].strip()
        if len(cell) >= 4 and cell.startswith("**") and cell.endswith("**")
        else cell
    )


def _rectangular(
    header: list[str], body: list[list[str]]
) -> tuple[list[str], list[list[str]], list[str]]:
    """Pad or cut rows to the header's width, saying so."""
    warnings = []
    ragged = sum(len(row) != len(header) for row in body)
    if ragged:
        warnings.append(
            f"chart table: {ragged} row(s) did not have {len(header)} cells; padded or cut"
        )
    if not body:
        warnings.append("chart table: header but no data rows")
    rows = [(row + [""] * len(header))[: len(header)] for row in body]
    return header, rows, warnings
