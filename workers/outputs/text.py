"""Plain text: each page's text, pages separated by form feeds (U+000C, the page break of plain
text that pdftotext and `pr` also write), so page N is the Nth form-feed-separated part.

A page without a result (failed) is an empty part; a form feed inside a page's own text becomes a
newline, so page numbers stay right.
"""

from __future__ import annotations

from workers.outputs.pages import OutputPage

FORM_FEED = "\f"


def page_txt(page: OutputPage) -> str:
    """One page's text, ending with a newline unless it is empty."""
    text = page.text.replace(FORM_FEED, "\n").rstrip("\n")
    return f"{text}\n" if text else ""


def document_txt(pages: list[OutputPage]) -> str:
    return FORM_FEED.join(page_txt(page) for page in pages)
