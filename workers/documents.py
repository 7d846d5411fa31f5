"""What a submitted file is, how many pages it has, and whether we will render it.

Runs at submission (to refuse bad input with a 4xx before queueing it) and
again in the split task (the authoritative check). Only magic bytes decide the
type; the client's file name and Content-Type are never trusted.
"""

from __future__ import annotations

import io
import re
import subprocess
import tempfile
import warnings
from dataclasses import dataclass

from PIL import Image

from tessera.errors import (
    CorruptDocument,
    EmptyDocument,
    EncryptedPdf,
    ImageTooLarge,
    InvalidOptions,
    TooManyPages,
    UnsupportedMediaType,
)

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
PDFINFO_TIMEOUT_S = 60
_PAGE_SIZE = re.compile(r"^Page\s+(\d+)\s+size:\s+([\d.]+)\s+x\s+([\d.]+)\s+pts", re.MULTILINE)
_PAGES = re.compile(r"^Pages:\s+(\d+)", re.MULTILINE)


@dataclass
class DocumentInfo:
    media_type: str
    page_count: int
    page_sizes_pt: list[tuple[float, float]] | None = None  # PDFs only, in points


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
    media_type = sniff_media_type(data)
    info = _inspect_pdf(data) if media_type == PDF else _inspect_image(data, media_type)
    if info.page_count == 0:
        raise EmptyDocument("the document has no pages")
    if info.page_count > max_pages:
        raise TooManyPages(f"the document has {info.page_count} pages; the limit is {max_pages}")
    return info


def _inspect_pdf(data: bytes) -> DocumentInfo:
    with tempfile.NamedTemporaryFile(suffix=".pdf") as handle:
        handle.write(data)
        handle.flush()
        try:
            proc = subprocess.run(
                ["pdfinfo", "-f", "1", "-l", "1000000", handle.name],
                capture_output=True, text=True, timeout=PDFINFO_TIMEOUT_S, errors="replace",
            )
        except subprocess.TimeoutExpired as exc:
            raise CorruptDocument("the PDF could not be read in time") from exc
    if proc.returncode != 0 or not _PAGES.search(proc.stdout):
        if "Incorrect password" in proc.stderr:
            raise EncryptedPdf("the PDF is encrypted with a password; send it unencrypted")
        raise CorruptDocument(f"the PDF could not be read: {_first_line(proc.stderr) or 'unknown error'}")
    sizes = [(float(w), float(h)) for _, w, h in _PAGE_SIZE.findall(proc.stdout)]
    return DocumentInfo(PDF, int(_PAGES.search(proc.stdout).group(1)), sizes)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:200] if text.strip() else ""


def _inspect_image(data: bytes, media_type: str) -> DocumentInfo:
    with open_image(data) as image:
        return DocumentInfo(media_type, getattr(image, "n_frames", 1))


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


def check_page_pixels(info: DocumentInfo, pages: list[int], dpi: int, max_pixels: int) -> None:
    """Refuse a PDF page whose rendering at `dpi` would exceed the pixel budget, before rendering it."""
    if not info.page_sizes_pt:
        return
    for page_no in pages:
        if page_no > len(info.page_sizes_pt):
            continue
        width_pt, height_pt = info.page_sizes_pt[page_no - 1]
        pixels = (width_pt / 72 * dpi) * (height_pt / 72 * dpi)
        if pixels > max_pixels:
            raise ImageTooLarge(
                f"page {page_no} is {width_pt / 72:.0f}x{height_pt / 72:.0f} inches: at {dpi} dpi it "
                f"would be {pixels / 1e6:.0f} megapixels; the limit is {max_pixels / 1e6:.0f}"
            )
