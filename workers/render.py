"""Turn a document into page images as a viewer shows them: PDFs through poppler (pdf2image),
images through Pillow.

- A PDF page is its CropBox (`-cropbox`), turned by its /Rotate, at the resolution
  workers/render_plan.py chose for it.
- An image is turned and mirrored by its EXIF/TIFF Orientation tag (2-8) before anything else,
  as every viewer does (Pillow's ImageOps.exif_transpose); a TIFF's frames are pages, every other
  format's page is its primary image; transparency (alpha, palette or tRNS colour key) is
  composited over white.

Each page comes with a record of what was done to it (`RenderedPage.render`), which ends up in
the page's result.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pdf2image import convert_from_bytes
from pdf2image.exceptions import PDFPageCountError, PDFPopplerTimeoutError
from PIL import Image, ImageOps, ImageSequence

from tessera.errors import CorruptDocument, ImageTooLarge
from workers.documents import TIFF, DocumentInfo, open_image
from workers.render_plan import PageRender

RENDER_CHUNK_PAGES = 8
PAGE_RENDER_BUDGET_S = 60  # poppler on one page; a PDF can hide a huge image pdfinfo cannot see
# PNG at level 1: lossless for OCR and about 5x cheaper to encode than Pillow's default level.
PNG_COMPRESS_LEVEL = 1
EXIF_ORIENTATION = 0x0112
# EXIF Orientation -> (degrees turned clockwise to display, mirrored), CIPA DC-008 / TIFF 6.0
ORIENTATIONS = {1: (0, False), 2: (0, True), 3: (180, False), 4: (180, True),
                5: (90, True), 6: (90, False), 7: (270, True), 8: (270, False)}


@dataclass
class RenderedPage:
    """One page as a viewer shows it (RGB), and what was done to get it (for the page's result)."""

    page_no: int
    image: Image.Image
    render: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def render_pages(info: DocumentInfo, data: bytes, pages: list[int], plans: list[PageRender] | None,
                 max_pixels: int) -> Iterator[RenderedPage]:
    """The selected pages (numbers from 1), a few at a time in memory. PDFs render as their
    `plans` say (documents.plan_renders, covering at least `pages`); images are checked against
    `max_pixels` as each is decoded."""
    if info.pdf is not None:
        wanted = set(pages)
        yield from _render_pdf(info, [plan for plan in plans or [] if plan.page_no in wanted])
    else:
        yield from _image_pages(data, info.media_type, pages, max_pixels)


def _render_pdf(info: DocumentInfo, plans: list[PageRender]) -> Iterator[RenderedPage]:
    by_number = {plan.page_no: plan for plan in plans}
    for first, last in _runs(plans, RENDER_CHUNK_PAGES):
        dpi = by_number[first].dpi
        try:
            images = convert_from_bytes(info.pdf.data, dpi=dpi, first_page=first, last_page=last,
                                        fmt="ppm", use_cropbox=True, thread_count=1,
                                        timeout=PAGE_RENDER_BUDGET_S * (last - first + 1))
        except PDFPopplerTimeoutError as exc:
            raise CorruptDocument(f"pages {first}-{last} took longer than {PAGE_RENDER_BUDGET_S} s a page "
                                  "to render", code="render_timeout") from exc
        except PDFPageCountError as exc:
            raise CorruptDocument(f"pages {first}-{last} could not be rendered: {exc}") from exc
        if len(images) != last - first + 1:
            raise CorruptDocument(f"pages {first}-{last}: poppler rendered {len(images)} pages")
        for page_no, image in enumerate(images, start=first):
            page, plan = info.pdf.pages[page_no - 1], by_number[page_no]
            render = {"source": "pdf", "box": "CropBox", "box_pt": [round(v, 2) for v in page.crop_box],
                      "dpi": plan.dpi, "pdf_rotate": page.rotate}
            if page.scan_ppi is not None:
                render["scan_ppi"] = round(page.scan_ppi, 1)
            yield RenderedPage(page_no, image.convert("RGB"), render, list(plan.warnings))


def _runs(plans: list[PageRender], max_len: int) -> Iterator[tuple[int, int]]:
    """Group pages (sorted) into runs of consecutive numbers at one dpi, at most max_len long."""
    start = prev = plans[0]
    for plan in plans[1:]:
        if plan.page_no == prev.page_no + 1 and plan.dpi == start.dpi and plan.page_no - start.page_no < max_len:
            prev = plan
            continue
        yield start.page_no, prev.page_no
        start = prev = plan
    yield start.page_no, prev.page_no


def _image_pages(data: bytes, media_type: str, pages: list[int], max_pixels: int) -> Iterator[RenderedPage]:
    wanted = set(pages)
    with open_image(data) as image:
        frames = ImageSequence.Iterator(image) if media_type == TIFF else [image]
        for index, frame in enumerate(frames, start=1):
            if index not in wanted:
                continue
            if frame.width * frame.height > max_pixels:
                raise ImageTooLarge(f"page {index} is {frame.width}x{frame.height} pixels; the limit is "
                                    f"{max_pixels / 1e6:.0f} megapixels")
            try:
                yield _displayed(index, frame)
            except OSError as exc:
                raise CorruptDocument(f"page {index} of the image could not be decoded: {exc}") from exc


def _displayed(index: int, frame: Image.Image) -> RenderedPage:
    """A frame turned and mirrored as its Orientation tag says, in RGB over white."""
    tag = frame.getexif().get(EXIF_ORIENTATION)
    render: dict[str, Any] = {"source": "image", "frame": index}
    dpi = frame.info.get("dpi")  # JFIF, EXIF, PNG pHYs or TIFF resolution: the page's physical size
    if isinstance(dpi, tuple) and len(dpi) == 2 and all(float(v) > 0 for v in dpi):
        render["image_dpi"] = [round(float(v), 2) for v in dpi]
    if tag in ORIENTATIONS and tag != 1:
        degrees, mirrored = ORIENTATIONS[tag]
        render.update(exif_orientation=tag, exif_rotate=degrees, exif_mirrored=mirrored)
        frame = ImageOps.exif_transpose(frame)
    return RenderedPage(index, to_rgb(frame), render)


def to_rgb(image: Image.Image) -> Image.Image:
    """Any mode (CMYK, 16-bit, palette, alpha) to RGB; transparency over white like a viewer shows
    it, whether it is an alpha channel, a palette's transparent entries or a tRNS colour key."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        key = image.info.get("transparency")
        gray = image.point(lambda value: value / 256).convert("L")
        if isinstance(key, int):
            alpha = Image.fromarray(np.where(np.asarray(image) == key, 0, 255).astype(np.uint8))
            return _over_white(gray, alpha)
        return gray.convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        return _over_white(rgba.convert("RGB"), rgba.getchannel("A"))
    return image.convert("RGB")


def _over_white(image: Image.Image, alpha: Image.Image) -> Image.Image:
    canvas = Image.new("RGB", image.size, "white")
    canvas.paste(image.convert("RGB"), mask=alpha)
    return canvas


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()
