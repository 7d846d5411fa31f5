"""hOCR (the hOCR 1.2 embedded OCR format, kba.github.io/hocr-spec/1.2): one XHTML document with
an `ocr_page` per page and an `ocr_line` per line.

- `ocr_page`: `bbox 0 0 W H` (the stored page image's pixels), `ppageno` (from 0, as the spec
  counts), `scan_res` (pixels per inch, when the page's physical size is known: page_size.py).
- `ocr_line`: `bbox x0 y0 x1 y1` in those pixels and `x_wconf` (the line's confidence in
  percent, an integer, as Tesseract writes it), its text as the element's content.
- A page whose engine gave no geometry holds its text in an `ocr_par` without a box (the spec
  does not require one there), a line per `<br/>`; a page without a result holds nothing.

No word boxes: the engines give lines, and a box for each word would be invented.
"""

from __future__ import annotations

import re
from html import escape

from workers.outputs.page_size import physical_size
from workers.outputs.pages import OutputPage

OCR_SYSTEM = "tessera"
CAPABILITIES = "ocr_page ocr_par ocr_line ocrp_wconf"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # characters XML 1.0 forbids
HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
 <head>
  <title>{title}</title>
  <meta http-equiv="Content-Type" content="text/html;charset=utf-8"/>
  <meta name="ocr-system" content="{system}"/>
  <meta name="ocr-capabilities" content="{capabilities}"/>
  <meta name="ocr-number-of-pages" content="{pages}"/>
  <meta name="ocr-langs" content="zh en"/>
  <meta name="ocr-scripts" content="Hans Latn"/>
 </head>
 <body>
"""
TAIL = " </body>\n</html>\n"


def document_hocr(pages: list[OutputPage], assumed_dpi: float, title: str = "") -> str:
    """An hOCR document of `pages` (a whole document, or one page); `assumed_dpi` as in
    page_size.physical_size (a page whose size is assumed gets no `scan_res`)."""
    engine = next((page.engine for page in pages if page.engine), None)
    system = f"{OCR_SYSTEM} {engine}" if engine else OCR_SYSTEM
    head = HEAD.format(title=_text(title), system=_attr(system), capabilities=CAPABILITIES,
                       pages=len(pages))
    return head + "".join(_page(page, assumed_dpi) for page in pages) + TAIL


def _page(page: OutputPage, assumed_dpi: float) -> str:
    """`ppageno`: the page's place in the input document, from 0."""
    props = [f"bbox 0 0 {page.width} {page.height}", f"ppageno {page.page_no - 1}"]
    size = physical_size(page.width, page.height, page.render, assumed_dpi)
    if size.source != "assumed":
        dpi_x, dpi_y = size.dpi(page.width, page.height)
        props.append(f"scan_res {round(dpi_x)} {round(dpi_y)}")
    body = _lines(page) if page.positioned else _paragraph(page)
    return (f'  <div class="ocr_page" id="page_{page.page_no}" title="{"; ".join(props)}">\n'
            f"{body}  </div>\n")


def _lines(page: OutputPage) -> str:
    out = []
    for number, line in enumerate(page.lines, start=1):
        x0, x1 = (min(max(round(v), 0), page.width) for v in line["bbox"][0::2])
        y0, y1 = (min(max(round(v), 0), page.height) for v in line["bbox"][1::2])
        wconf = round(100 * float(line.get("confidence") or 0.0))
        out.append(f'   <span class="ocr_line" id="line_{page.page_no}_{number}" '
                   f'title="bbox {x0} {y0} {x1} {y1}; x_wconf {wconf}">{_text(line["text"])}</span>\n')
    return "".join(out)


def _paragraph(page: OutputPage) -> str:
    texts = [_text(text) for text in page.text.splitlines() if text.strip()]
    if not texts:
        return ""
    return f'   <p class="ocr_par" id="par_{page.page_no}_1">{"<br/>".join(texts)}</p>\n'


def _text(value: str) -> str:
    return escape(_NOT_XML.sub("", value), quote=False)


def _attr(value: str) -> str:
    return escape(_NOT_XML.sub("", value), quote=True)
