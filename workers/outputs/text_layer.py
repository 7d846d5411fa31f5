"""The searchable PDF's invisible text layer, drawn by OCRmyPDF's text layer renderer (fpdf2).

- A positioned page gives the renderer each line with its box: the renderer fits the line's
  text to the box (font size from the box's height, horizontal scaling to its width), so a
  search highlights the line where it is on the page. A column of vertical CJK text (a box at
  least VERTICAL_ASPECT times taller than wide, 2+ characters: the rule reading order uses) is
  drawn running downwards (textangle -90), so it extracts in reading order.
- A page without geometry (`positioned` false) gets its text as rows from the top-left corner
  of the page, a row per line of text: searchable and extractable, but placed nowhere in
  particular. Those boxes live only in the PDF; no other output shows them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ocrmypdf.fpdf_renderer import Fpdf2MultiPageRenderer
from ocrmypdf.font import MultiFontManager
from ocrmypdf.models.ocr_element import BoundingBox, OcrClass, OcrElement

from workers.engines.reading_order import VERTICAL_ASPECT, is_cjk
from workers.outputs.page_size import PhysicalSize
from workers.outputs.pages import OutputPage

DOWNWARDS = -90.0  # hOCR textangle (degrees counter-clockwise): text running down the page
ROW_PT = 12.0  # an unpositioned page's rows: this high, or less when many lines must fit
MARGIN = 0.05  # of the page's width and height, around an unpositioned page's rows


def text_layer_pdf(pages: list[tuple[OutputPage, PhysicalSize]], fonts: MultiFontManager) -> bytes:
    """A text-only PDF with one page per entry, each `size` big, holding its page's text in
    render mode 3 (invisible); to be laid over the page images."""
    data = [(page.page_no, _tree(page, size), size.dpi(page.width, page.height)[0])
            for page, size in pages]
    with tempfile.TemporaryDirectory(prefix="tessera-text-layer-") as folder:
        path = Path(folder) / "text.pdf"
        Fpdf2MultiPageRenderer(data, fonts, invisible_text=True).render(path)
        return path.read_bytes()


def _tree(page: OutputPage, size: PhysicalSize) -> OcrElement:
    root = OcrElement(ocr_class=OcrClass.PAGE, bbox=BoundingBox(0, 0, page.width, page.height))
    if page.positioned:
        lines = [_positioned_line(line, page) for line in page.lines]
    else:
        lines = _rows(page, size)
    root.children.extend(line for line in lines if line is not None)
    return root


def _positioned_line(line: dict, page: OutputPage) -> OcrElement | None:
    text = (line.get("text") or "").strip()
    x0, y0, x1, y1 = (float(v) for v in line["bbox"])
    x0, x1 = max(0.0, x0), min(float(page.width), x1)
    y0, y1 = max(0.0, y0), min(float(page.height), y1)
    if not text or x1 <= x0 or y1 <= y0:
        return None
    vertical = (y1 - y0) >= VERTICAL_ASPECT * (x1 - x0) and len(text) >= 2
    return _line(text, BoundingBox(x0, y0, x1, y1), DOWNWARDS if vertical else None)


def _rows(page: OutputPage, size: PhysicalSize) -> list[OcrElement]:
    """The text's lines as rows down the page (pixels), each as wide as its text would be."""
    texts = [text.strip() for text in page.text.splitlines() if text.strip()]
    if not texts:
        return []
    px_per_pt = page.width / size.width_pt
    left, top = MARGIN * page.width, MARGIN * page.height
    usable_width, usable_height = page.width - 2 * left, page.height - 2 * top
    row = min(ROW_PT * px_per_pt, usable_height / len(texts))
    rows = []
    for index, text in enumerate(texts):
        width = min(usable_width, sum(row if is_cjk(char) else 0.55 * row for char in text))
        y = top + index * row
        rows.append(_line(text, BoundingBox(left, y, left + max(width, 1.0), y + row), None))
    return rows


def _line(text: str, box: BoundingBox, textangle: float | None) -> OcrElement:
    word = OcrElement(ocr_class=OcrClass.WORD, bbox=box, text=text)
    return OcrElement(ocr_class=OcrClass.LINE, bbox=box, textangle=textangle, children=[word])
