"""At what resolution each PDF page is rendered, judged by the pixels it really holds.

The pixel limit (`TESSERA_MAX_PAGE_PIXELS`) guards against pages that would render into more
pixels than a worker should hold. It is checked on the box that is rendered (the CropBox,
workers/pdf_layout.py), at the resolution that is rendered:

- A drawn page (text, vectors) renders at the job's dpi (default `TESSERA_DEFAULT_DPI`); one that
  would exceed the limit at that dpi is refused with `image_too_large`.
- A scanned page (rasters cover it) holds the scan's pixels, whatever page size its resolution tag
  claims. Without a dpi in the job it renders at the default dpi, but never coarser than the scan
  (a 2480x3508 scan tagged 1200 dpi claims a 2x3 inch page: it renders at 1200 dpi and keeps its
  pixels) and never finer than MAX_SCAN_UPSAMPLE times the scan (a 2480x3508 scan tagged 50 dpi
  claims a 50x70 inch page, 139 megapixels at 200 dpi: it renders at 66 dpi, about 3270x4630, since
  enlarging it further adds pixels and no detail). A 150-ppi scan renders at 200 dpi like any
  page. A job's explicit dpi is honoured. Either way a scan larger than the limit renders at the
  finest dpi within it, with a warning when that is coarser than the scan itself.

Every departure from the dpi asked for is a warning on the page.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tessera.errors import ImageTooLarge
from workers.pdf_layout import PdfPage

# A scan is enlarged at most this much to reach the default dpi: enough for the common 150-ppi
# scans to render at 200 dpi like other pages (recognisers read small print better there),
# while a scan that only claims a low resolution is not blown up into pixels with no detail.
MAX_SCAN_UPSAMPLE = 4 / 3


@dataclass(frozen=True)
class PageRender:
    """How one PDF page is rendered: its number (from 1), dots per inch, and what to tell the user."""

    page_no: int
    dpi: int
    warnings: tuple[str, ...] = ()


def rendered_size(page: PdfPage, dpi: int) -> tuple[int, int]:
    """The pixel size pdftoppm renders the page's visible box at `dpi`, before /Rotate (the
    area is the same after it): ceil(side * dpi / 72) on the box as poppler reads it.

    Poppler reads a PDF's real numbers digit by digit (its Lexer: `x += scale * digit; scale *=
    0.1`), which is not always the nearest double: `210.48` is 210.48000000000002 to it, so a
    210.48 pt tall page at 1200 dpi renders 3509 pixels tall, where 210.48 * 1200 / 72 is 3508.0.
    tests/unit/test_preview.py renders random boxes to check it."""
    x0, y0, x1, y1 = (_as_poppler_reads(value) for value in page.crop_box)
    return math.ceil(abs(x1 - x0) * dpi / 72), math.ceil(abs(y1 - y0) * dpi / 72)


def _as_poppler_reads(value: float) -> float:
    """The double poppler's lexer makes of a number written in the file. The box comes from
    `pdfinfo -box` as a short decimal, whose shortest repr is that decimal again."""
    text = repr(float(value))
    if "e" in text or "n" in text:  # exponent form, inf, nan: no digit string to replay
        return float(value)
    negative, (whole, _, fraction) = text.startswith("-"), text.lstrip("-").partition(".")
    result, scale = float(int(whole)), 0.1
    for digit in fraction:
        result += scale * int(digit)
        scale *= 0.1
    return -result if negative else result


def finest_dpi_within(page: PdfPage, max_pixels: int) -> int:
    """The largest whole dpi whose rendering stays within `max_pixels` (0 if even 1 dpi does not)."""
    width_pt, height_pt = page.size_pt
    if width_pt * height_pt <= 0:
        return 0
    dpi = math.floor(72 * math.sqrt(max_pixels / (width_pt * height_pt)))
    while dpi > 0 and math.prod(rendered_size(page, dpi)) > max_pixels:
        dpi -= 1
    return dpi


def plan_page(page: PdfPage, page_no: int, dpi: int, dpi_requested: bool, max_pixels: int) -> PageRender:
    """The resolution for one page. Raises ImageTooLarge for a drawn page over the limit at `dpi`
    (or any page over it at 1 dpi). `dpi_requested`: the job asked for `dpi` itself."""
    fit = finest_dpi_within(page, max_pixels)
    if page.scan_ppi is None:
        if dpi <= fit:
            return PageRender(page_no, dpi)
        raise _too_large(page, page_no, dpi, max_pixels)
    native = max(1, round(page.scan_ppi))
    wanted = dpi if dpi_requested else min(max(dpi, native), math.floor(MAX_SCAN_UPSAMPLE * native + 1e-9))
    if wanted <= fit:
        return PageRender(page_no, wanted)
    if fit < 1:
        raise _too_large(page, page_no, wanted, max_pixels)
    width, height = rendered_size(page, fit)
    warning = (f"rendered at {fit} dpi ({width}x{height} px) instead of {wanted} dpi: the page is a "
               f"{native}-ppi scan of {_inches(page)}, and {wanted} dpi would exceed the "
               f"{max_pixels / 1e6:.0f}-megapixel limit")
    if fit < native:
        warning += f"; the scan was reduced to {fit / native:.0%} of its resolution"
    return PageRender(page_no, fit, (warning,))


def plan_pages(pages: list[PdfPage], numbers: list[int], dpi: int, dpi_requested: bool,
               max_pixels: int) -> list[PageRender]:
    """plan_page for each selected page (numbers from 1, within the document)."""
    return [plan_page(pages[n - 1], n, dpi, dpi_requested, max_pixels) for n in numbers]


def _inches(page: PdfPage) -> str:
    width_pt, height_pt = page.size_pt
    return f"{width_pt / 72:.1f}x{height_pt / 72:.1f} in"


def _too_large(page: PdfPage, page_no: int, dpi: int, max_pixels: int) -> ImageTooLarge:
    pixels = math.prod(rendered_size(page, dpi))
    return ImageTooLarge(f"page {page_no} is {_inches(page)}: at {dpi} dpi it would be "
                         f"{pixels / 1e6:.0f} megapixels; the limit is {max_pixels / 1e6:.0f}")
