"""The searchable PDF: each stored page image as a page at its physical size, with the page's
text as an invisible layer over it (an OCRmyPDF-style "sandwich").

Three well-kept libraries do the PDF work; Tessera only decides sizes and encodings:
- img2pdf makes each image page, embedding the encoded image as it is (page_images.py), on a
  page exactly `PhysicalSize` big (page_size.py);
- OCRmyPDF's text layer renderer (fpdf2 underneath) draws the invisible text (text_layer.py);
- pikepdf (qpdf) lays each text page over its image page as a Form XObject and writes the file.

Page images are read a few pages ahead (storage.blobs.read_ahead), written to a scratch folder
and opened lazily, so building a long document holds about READ_AHEAD page images in memory at a
time, plus the finished file.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import img2pdf
import pikepdf
from ocrmypdf.font import MultiFontManager
from PIL import Image

from storage.blobs import read_ahead
from workers.outputs.page_images import DEFAULT_JPEG_QUALITY, encode_for_pdf
from workers.outputs.page_size import PhysicalSize, physical_size
from workers.outputs.pages import OutputPage
from workers.outputs.text_layer import text_layer_pdf

PRODUCER = "Tessera (img2pdf, OCRmyPDF text layer, pikepdf)"


@dataclass
class PdfBuild:
    """The file, and how each page was made (for logs and the bench): `encodings` by page
    number, `sizes` by page number, `unpositioned`: pages whose text layer has no geometry."""

    data: bytes
    encodings: dict[int, str] = field(default_factory=dict)
    sizes: dict[int, PhysicalSize] = field(default_factory=dict)
    unpositioned: list[int] = field(default_factory=list)


def searchable_pdf(pages: list[OutputPage], load_image: Callable[[str], bytes], fonts: MultiFontManager,
                   *, assumed_dpi: float, title: str = "",
                   jpeg_quality: int = DEFAULT_JPEG_QUALITY) -> PdfBuild:
    """`pages` in order, each with a stored image; `load_image(key)` gives its PNG bytes."""
    sizes = [physical_size(page.width, page.height, page.render, assumed_dpi) for page in pages]
    build = PdfBuild(b"", sizes={page.page_no: size for page, size in zip(pages, sizes)},
                     unpositioned=[page.page_no for page in pages
                                   if page.done and page.text.strip() and not page.positioned])
    with tempfile.TemporaryDirectory(prefix="tessera-pdf-") as scratch, ExitStack() as opened:
        folder, document = Path(scratch), pikepdf.new()
        images = read_ahead(load_image, [page.image_key for page in pages])
        for page, size, png in zip(pages, sizes, images):  # copied pages read from their files until the save
            one = _write(folder / f"{page.page_no:05d}.pdf", _image_page(png, size, build, page.page_no,
                                                                         jpeg_quality))
            document.pages.append(opened.enter_context(pikepdf.open(one)).pages[0])
        text = _write(folder / "text.pdf", text_layer_pdf(list(zip(pages, sizes)), fonts))
        for target, layer in zip(document.pages, opened.enter_context(pikepdf.open(text)).pages):
            target.add_overlay(layer)
        _describe(document, title, build.unpositioned)
        document.save(folder / "out.pdf", compress_streams=True,
                      object_stream_mode=pikepdf.ObjectStreamMode.generate)
        build.data = (folder / "out.pdf").read_bytes()
    return build


def _image_page(png: bytes, size: PhysicalSize, build: PdfBuild, page_no: int, jpeg_quality: int) -> bytes:
    with Image.open(io.BytesIO(png)) as image:
        encoded = encode_for_pdf(image, jpeg_quality)
    build.encodings[page_no] = encoded.encoding
    width, height = size.width_pt, size.height_pt

    def fill_page(*_: object) -> tuple[float, float, float, float]:
        """img2pdf's layout function: the page is `size`, the image fills it."""
        return width, height, width, height

    return img2pdf.convert(encoded.data, layout_fun=fill_page)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _describe(document: pikepdf.Pdf, title: str, unpositioned: list[int]) -> None:
    """Document information; `/TesseraUnpositionedPages` lists the pages whose text layer has no
    geometry (their engine gave none), so a reader of the file alone can tell."""
    document.docinfo["/Producer"] = PRODUCER
    document.docinfo["/Creator"] = "Tessera"
    if title:
        document.docinfo["/Title"] = title
    document.docinfo["/TesseraUnpositionedPages"] = ",".join(str(n) for n in unpositioned)
