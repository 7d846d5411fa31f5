"""Turn a document into page images: PDFs through poppler (pdf2image), images through Pillow."""

from __future__ import annotations

import io
from collections.abc import Iterator

from pdf2image import convert_from_bytes
from pdf2image.exceptions import PDFPageCountError, PDFPopplerTimeoutError
from PIL import Image, ImageSequence

from tessera.errors import CorruptDocument, ImageTooLarge
from workers.documents import PDF, open_image

RENDER_CHUNK_PAGES = 8
PAGE_RENDER_BUDGET_S = 60  # poppler on one page; a PDF can hide a huge image pdfinfo cannot see
# PNG at level 1: lossless for OCR and about 5x cheaper to encode than Pillow's default level.
PNG_COMPRESS_LEVEL = 1


def render_pages(data: bytes, media_type: str, pages: list[int], dpi: int, max_pixels: int
                 ) -> Iterator[tuple[int, Image.Image]]:
    """Yield (page_no, RGB image) for the selected pages, a few pages at a time in memory."""
    if media_type == PDF:
        yield from _render_pdf(data, pages, dpi)
    else:
        yield from _image_frames(data, pages, max_pixels)


def _render_pdf(data: bytes, pages: list[int], dpi: int) -> Iterator[tuple[int, Image.Image]]:
    for first, last in _runs(pages, RENDER_CHUNK_PAGES):
        try:
            images = convert_from_bytes(data, dpi=dpi, first_page=first, last_page=last, fmt="ppm",
                                        thread_count=1, timeout=PAGE_RENDER_BUDGET_S * (last - first + 1))
        except PDFPopplerTimeoutError as exc:
            raise CorruptDocument(f"pages {first}-{last} took longer than {PAGE_RENDER_BUDGET_S} s a page "
                                  "to render", code="render_timeout") from exc
        except PDFPageCountError as exc:
            raise CorruptDocument(f"pages {first}-{last} could not be rendered: {exc}") from exc
        if len(images) != last - first + 1:
            raise CorruptDocument(f"pages {first}-{last}: poppler rendered {len(images)} pages")
        for offset, image in enumerate(images):
            yield first + offset, image.convert("RGB")


def _runs(pages: list[int], max_len: int) -> Iterator[tuple[int, int]]:
    """Group sorted page numbers into contiguous runs of at most max_len pages."""
    start = prev = pages[0]
    for page in pages[1:]:
        if page == prev + 1 and page - start < max_len:
            prev = page
            continue
        yield start, prev
        start = prev = page
    yield start, prev


def _image_frames(data: bytes, pages: list[int], max_pixels: int) -> Iterator[tuple[int, Image.Image]]:
    wanted = set(pages)
    with open_image(data) as image:
        for index, frame in enumerate(ImageSequence.Iterator(image), start=1):
            if index not in wanted:
                continue
            if frame.width * frame.height > max_pixels:
                raise ImageTooLarge(f"page {index} is {frame.width}x{frame.height} pixels; the limit is "
                                    f"{max_pixels / 1e6:.0f} megapixels")
            try:
                yield index, to_rgb(frame)
            except OSError as exc:
                raise CorruptDocument(f"page {index} of the image could not be decoded: {exc}") from exc


def to_rgb(image: Image.Image) -> Image.Image:
    """Any mode (CMYK, 16-bit, palette, alpha) to RGB; transparency over white like a viewer shows it."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, "white")
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        return image.point(lambda value: value / 256).convert("L").convert("RGB")
    return image.convert("RGB")


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()
