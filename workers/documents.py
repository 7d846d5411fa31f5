"""What a submitted file is, how many pages it has, and whether we will render it.

Runs at submission (to refuse bad input with a 4xx before queueing it) and
again in the split task (the authoritative check). Only magic bytes decide the
type; the client's file name and Content-Type are never trusted.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

from PIL import Image

from tessera.errors import (
    CorruptDocument,
    EmptyDocument,
    ImageTooLarge,
    InvalidOptions,
    TooManyPages,
    UnsupportedMediaType,
)
from workers.pdf_layout import PdfLayout, read_layout
from workers.render_plan import PageRender, plan_pages

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
TIFF = "image/tiff"

MAGIC = (
    (b"%PDF-", PDF),
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
    (b"II*\x00", TIFF),
    (b"MM\x00*", TIFF),
)


@dataclass
class DocumentInfo:
    media_type: str
    page_count: int
    pdf: PdfLayout | None = None  # PDFs: every page's box and scan resolution, the bytes to render
    warnings: list[str] = field(default_factory=list)  # about the whole document


def sniff_media_type(data: bytes) -> str:
    if not data:
        raise EmptyDocument("the uploaded file is empty")
    head = data[:1024]
    for magic, media_type in MAGIC:
        # PDFs may carry a little junk before the header; readers accept it within 1 KiB.
        if head.startswith(magic) or (media_type == PDF and magic in head):
            return media_type
    raise UnsupportedMediaType("unsupported file type: send a PDF, PNG, JPEG or TIFF")


def inspect_document(data: bytes, max_pages: int) -> DocumentInfo:
    """Type, pages and (PDFs) page geometry. Raises the InvalidInput errors a client is told."""
    media_type = sniff_media_type(data)
    if media_type == PDF:
        layout = read_layout(data, max_pages)
        info = DocumentInfo(PDF, layout.page_count, layout, list(layout.warnings))
    else:
        info = DocumentInfo(media_type, image_page_count(data, media_type))
    if info.page_count == 0:
        raise EmptyDocument("the document has no pages")
    if info.page_count > max_pages:
        raise TooManyPages(f"the document has {info.page_count} pages; the limit is {max_pages}")
    return info


def image_page_count(data: bytes, media_type: str) -> int:
    """A TIFF's frames are its pages (multi-page scans). Every other image is one page, its
    primary image: the extra frames of a JPEG (MPF/MPO: a camera's preview or a phone's HDR gain
    map) or of a PNG (APNG) are not pages, and a viewer shows only the first. Opening the image
    reads its header under Pillow's decompression-bomb guard (ImageTooLarge)."""
    with open_image(data) as image:
        return getattr(image, "n_frames", 1) if media_type == TIFF else 1


def open_image(data: bytes) -> Image.Image:
    """Open an image with Pillow's decompression-bomb guard turned into our error codes."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.size  # noqa: B018 (forces the header parse)
            return image
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"the image is too large to process safely: {exc}") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise CorruptDocument(f"the image could not be read: {exc}") from exc


def parse_page_range(spec: str | None, page_count: int) -> list[int]:
    """'1-3,7' -> [1, 2, 3, 7]; None -> every page. Pages are numbered from 1."""
    if not spec:
        return list(range(1, page_count + 1))
    selected: set[int] = set()
    for part in spec.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            start, end = int(first), int(last if dash else first)
        except ValueError as exc:
            raise InvalidOptions(f"pages: cannot read {part.strip()!r}; use a form like '1-3,7'") from exc
        if start < 1 or end < start:
            raise InvalidOptions(f"pages: {part.strip()!r} is not a valid range")
        if end > page_count:
            raise InvalidOptions(f"pages: {part.strip()!r} is beyond the last page ({page_count})")
        selected.update(range(start, end + 1))
    return sorted(selected)


def plan_renders(info: DocumentInfo, pages: list[int], dpi: int | None, default_dpi: int,
                 max_pixels: int) -> list[PageRender] | None:
    """Each selected PDF page's rendering resolution, checked against the pixel budget before
    anything is rendered (raises ImageTooLarge; workers/render_plan.py). `dpi`: the job's own,
    None for the default. Images: None (their pixels are checked as they are decoded)."""
    if info.pdf is None:
        return None
    return plan_pages(info.pdf.pages, pages, dpi or default_dpi, dpi is not None, max_pixels)
