"""Checks of the archive formats by the field's own consumers: hocr-tools (hocr-check, hocr-lines),
the hOCR spec validator (hocr-spec), poppler (pdftotext, pdfinfo) and pikepdf."""

from __future__ import annotations

import html
import io
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pikepdf

BIN = Path(sys.executable).parent  # hocr-tools and hocr-spec install their scripts beside python


def _tool(args: list[str], data: bytes, suffix: str, after: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run a tool on `data` written to a file (its name after `args`, then `after`)."""
    with tempfile.NamedTemporaryFile(suffix=suffix) as handle:
        handle.write(data)
        handle.flush()
        return subprocess.run([*args, handle.name, *after], capture_output=True, text=True, timeout=60)


def hocr_problems(hocr: bytes, *, overlap: bool = True) -> list[str]:
    """Everything hocr-spec (standard profile) and hocr-tools' hocr-check find wrong; [] when valid.

    `overlap=False` turns off hocr-check's line overlap check, which in hocr-tools 1.1.1 compares
    the lines of every page with each other (its XPath `//*[@class='ocr_line']` from each page is
    the whole document), so two pages with a line at the same place fail it; check pages alone."""
    problems = []
    spec = _tool([str(BIN / "hocr-spec"), "--profile", "standard"], hocr, ".hocr")
    if spec.returncode != 0:
        problems.append(f"hocr-spec: {spec.stdout.strip()} {spec.stderr.strip()}")
    check = _tool([str(BIN / "hocr-check"), *([] if overlap else ["--nooverlap"])], hocr, ".hocr")
    problems += [f"hocr-check: {line}" for line in check.stderr.splitlines() if line.startswith("not ok")]
    if check.returncode != 0 or "ok 1 " not in check.stderr:
        problems.append(f"hocr-check did not run: {check.stderr[-300:]}")
    return problems


def hocr_lines(hocr: bytes) -> list[str]:
    """The text of every ocr_line, in order, as hocr-tools' hocr-lines reads it."""
    out = _tool([str(BIN / "hocr-lines")], hocr, ".hocr")
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.splitlines() if line.strip()]


def pdf_text(pdf: bytes, page: int) -> str:
    """pdftotext's reading of one page (from 1)."""
    out = _tool(["pdftotext", "-f", str(page), "-l", str(page), "-enc", "UTF-8"], pdf, ".pdf", ("-",))
    assert out.returncode == 0, out.stderr
    return out.stdout if not out.stdout.endswith("\f") else out.stdout[:-1]


def pdf_search(pdf: bytes, phrase: str) -> list[int]:
    """Pages (from 1) whose extracted text holds `phrase`, whitespace ignored: a text search."""
    wanted = re.sub(r"\s+", "", phrase)
    count = len(pikepdf.open(io.BytesIO(pdf)).pages)
    return [n for n in range(1, count + 1) if wanted in re.sub(r"\s+", "", pdf_text(pdf, n))]


def pdf_word_boxes(pdf: bytes, page: int) -> list[tuple[str, float, float, float, float]]:
    """(word, xMin, yMin, xMax, yMax) in points from the top-left, as pdftotext -bbox places them."""
    out = _tool(["pdftotext", "-f", str(page), "-l", str(page), "-bbox"], pdf, ".pdf", ("-",))
    assert out.returncode == 0, out.stderr
    words = re.findall(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>',
                       out.stdout)
    return [(html.unescape(text), float(x0), float(y0), float(x1), float(y1))
            for x0, y0, x1, y1, text in words]


def pdf_page_sizes(pdf: bytes) -> list[tuple[float, float]]:
    """Each page's size in points as a viewer shows it (MediaBox, /Rotate applied)."""
    sizes = []
    for page in pikepdf.open(io.BytesIO(pdf)).pages:
        box = page.cropbox
        width, height = float(box[2]) - float(box[0]), float(box[3]) - float(box[1])
        sizes.append((height, width) if int(page.obj.get("/Rotate", 0)) % 180 else (width, height))
    return sizes


def pdf_image_filters(pdf: bytes) -> list[str]:
    """The filters of the images on each page, e.g. "/DCTDecode" (several joined by commas)."""
    return [",".join(str(name) for image in page.get_images().values()
                     for name in pikepdf.PdfImage(image).filters)
            for page in pikepdf.open(io.BytesIO(pdf)).pages]
