"""Build a job's archive formats (txt, hOCR, PDF) at assemble time and store them as blobs
(`{tenant}/{job}/result.txt|hocr|pdf`), so a download is served as stored bytes.

Why at assemble time: the PDF costs tens to hundreds of milliseconds a page (re-encoding each
page image; bench/output_formats.py), too long to do inside an API request for a long document
and wasteful to repeat per download, while the cpu worker that assembles has the page images at
hand. txt and hOCR cost a few milliseconds a page; they are stored alongside for one code path.

A format that cannot be built (a bug, a page image that will not decode) does not fail the job:
the job keeps its JSON and Markdown results and a warning says which format is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

from storage.blobs import BlobKeys
from storage.models import Job, Page
from tessera.config import Settings
from tessera.errors import TRANSIENT_ERRORS
from tessera.formats import ARCHIVE_FORMATS, RESULT_FORMATS
from workers.outputs.fonts import text_layer_fonts
from workers.outputs.hocr import document_hocr
from workers.outputs.pages import OutputPage, output_page
from workers.outputs.searchable_pdf import searchable_pdf
from workers.outputs.text import document_txt
from workers.runtime import Runtime

log = structlog.get_logger(__name__)


def build_txt(pages: list[OutputPage]) -> bytes:
    return document_txt(pages).encode("utf-8")


def build_hocr(pages: list[OutputPage], settings: Settings, title: str) -> bytes:
    return document_hocr(pages, settings.default_dpi, title=title).encode("utf-8")


def build_pdf(pages: list[OutputPage], settings: Settings, title: str,
              load_image: Callable[[str], bytes]) -> bytes:
    fonts = text_layer_fonts(settings.pdf_cjk_font)
    build = searchable_pdf([page for page in pages if page.image_key], load_image, fonts,
                           assumed_dpi=settings.default_dpi, title=title,
                           jpeg_quality=settings.pdf_jpeg_quality)
    log.info("assemble.pdf", pages=len(build.encodings), bytes=len(build.data),
             encodings=sorted(set(build.encodings.values())), unpositioned=build.unpositioned)
    return build.data


def store_archive_formats(rt: Runtime, job: Job, pages: list[Page],
                          results: dict[int, dict[str, Any] | None]) -> list[str]:
    """Build and store every archive format; returns a warning per format that could not be built.
    `results`: each page's stored result by page number (None: the page has none)."""
    outputs = [output_page(page, results.get(page.page_no)) for page in pages]
    title = job.filename or job.id
    builders = {"txt": lambda: build_txt(outputs),
                "hocr": lambda: build_hocr(outputs, rt.settings, title),
                "pdf": lambda: build_pdf(outputs, rt.settings, title, rt.blobs.get)}
    warnings = []
    for name in ARCHIVE_FORMATS:
        fmt = RESULT_FORMATS[name]
        try:
            data = builders[name]()
        except TRANSIENT_ERRORS:
            raise
        except Exception as exc:  # noqa: BLE001 (the job keeps its other results)
            log.exception("assemble.format_failed", job_id=job.id, format=name)
            warnings.append(f"the {name} result could not be built: {type(exc).__name__}: {exc}"[:300])
            continue
        rt.blobs.put(BlobKeys.result(job.tenant_id, job.id, fmt.stored_as), data, fmt.media_type)
    return warnings
