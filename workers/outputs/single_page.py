"""One page's txt or hOCR, made on request from its stored result: a few milliseconds, so it is
not stored (the document's formats are: store.py)."""

from __future__ import annotations

from tessera.config import Settings
from workers.outputs.hocr import document_hocr
from workers.outputs.pages import OutputPage
from workers.outputs.text import page_txt


def page_format(name: str, page: OutputPage, settings: Settings) -> bytes:
    """`name`: "txt" or "hocr" (an hOCR document holding this page alone)."""
    if name == "txt":
        return page_txt(page).encode("utf-8")
    if name == "hocr":
        return document_hocr([page], settings.default_dpi, title=f"page {page.page_no}").encode("utf-8")
    raise ValueError(f"no per-page format {name!r}")
