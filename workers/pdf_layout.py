"""What a PDF's pages are, as a viewer shows them: how many, their visible box, their turn, and
whether a scan covers them.

- Pages are the leaves of the page tree (qpdf, through pikepdf), as PDFium and browsers count
  them, not the `/Count` a damaged or hand-edited file declares. Poppler trusts `/Count`, so a PDF
  whose tree and `/Count` disagree is rewritten by qpdf (a fresh, flat page tree) before poppler
  reads or renders it: no page dropped, none rendered twice. The job says that this happened.
- A page's visible area is its CropBox, clipped to its MediaBox (PDF 32000-1:2008, 14.11.2); that
  is the box poppler renders with `-cropbox` and the box the pixel budget is checked on.
- A page whose area is covered by raster images is a scan: its images' resolution (pixels per
  inch, as poppler places them) says how many real pixels the page holds, whatever size the page
  claims (workers/render_plan.py).

All sizes are in PDF points (1/72 inch).
"""

from __future__ import annotations

import io
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from tessera.errors import CorruptDocument, EncryptedPdf, TooManyPages

log = structlog.get_logger(__name__)
POPPLER_TIMEOUT_S = 60
SCAN_COVERAGE = 0.8  # share of the visible area raster images must cover for a page to be a scan
_PAGES = re.compile(r"^Pages:\s+(\d+)", re.MULTILINE)
_BOX = re.compile(r"^Page\s+(\d+)\s+(MediaBox|CropBox):\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)\s+([-\d.]+)",
                  re.MULTILINE)
_ROT = re.compile(r"^Page\s+(\d+)\s+rot:\s+(-?\d+)", re.MULTILINE)

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in points


@dataclass(frozen=True)
class PdfPage:
    """One page as poppler will render it."""

    crop_box: Box  # the visible area: CropBox clipped to MediaBox
    media_box: Box
    rotate: int = 0  # /Rotate: degrees clockwise a viewer turns the page (0, 90, 180, 270)
    scan_ppi: float | None = None  # the covering rasters' resolution, when a scan covers the page

    @property
    def size_pt(self) -> tuple[float, float]:
        """Width and height of the visible area, before /Rotate."""
        x0, y0, x1, y1 = self.crop_box
        return abs(x1 - x0), abs(y1 - y0)


@dataclass
class PdfLayout:
    """A PDF's pages, and the bytes to hand poppler (rewritten when the page tree needed it)."""

    data: bytes
    pages: list[PdfPage]
    warnings: list[str] = field(default_factory=list)

    @property
    def page_count(self) -> int:
        return len(self.pages)


def read_layout(data: bytes, max_pages: int) -> PdfLayout:
    """Count, box and classify every page of a PDF.

    Raises EncryptedPdf (a user password is needed), CorruptDocument (unreadable), TooManyPages
    (more than `max_pages`, found before any page is read).
    """
    data, warnings = _with_true_page_tree(data)
    with tempfile.TemporaryDirectory(prefix="tessera-pdf-") as folder:
        path = Path(folder) / "document.pdf"
        path.write_bytes(data)
        # One pdfinfo call: the page count, and the boxes of the first max_pages pages
        info = _poppler(["pdfinfo", "-box", "-f", "1", "-l", str(max_pages), str(path)])
        count = _page_count(info)
        if count > max_pages:
            raise TooManyPages(f"the document has {count} pages; the limit is {max_pages}")
        pages = _boxes(info.stdout, count)
        ppi = _scan_resolutions(path, pages)
    pages = [PdfPage(p.crop_box, p.media_box, p.rotate, ppi.get(n)) for n, p in enumerate(pages, 1)]
    return PdfLayout(data, pages, warnings)


def _with_true_page_tree(data: bytes) -> tuple[bytes, list[str]]:
    """The document's bytes, rebuilt by qpdf with a flat page tree of its leaves when they and the
    /Count poppler trusts disagree; with a warning saying so."""
    import pikepdf

    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            leaves = len(pdf.pages)
            declared = int(pdf.Root.Pages.get("/Count", leaves))
            if leaves == declared or leaves == 0:
                return data, []
            with pikepdf.new() as rebuilt:  # qpdf copies each page with what it inherits
                rebuilt.pages.extend(pdf.pages)
                out = io.BytesIO()
                rebuilt.save(out)
    except (pikepdf.PdfError, pikepdf.PasswordError, ValueError, RecursionError, KeyError,
            AttributeError, TypeError) as exc:
        log.info("pdf.tree_unread", error=repr(exc)[:200])  # poppler decides, as before
        return data, []
    log.info("pdf.tree_rebuilt", leaves=leaves, declared=declared)
    return out.getvalue(), [f"the PDF's page tree holds {leaves} pages but its /Count says "
                            f"{declared}; all {leaves} pages were processed"]


def _poppler(args: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=POPPLER_TIMEOUT_S,
                              errors="replace")
    except subprocess.TimeoutExpired as exc:
        raise CorruptDocument("the PDF could not be read in time") from exc


def _page_count(proc: subprocess.CompletedProcess[str]) -> int:
    found = _PAGES.search(proc.stdout)
    if proc.returncode != 0 or not found:
        if "Incorrect password" in proc.stderr:
            raise EncryptedPdf("the PDF is encrypted with a password; send it unencrypted")
        raise CorruptDocument(f"the PDF could not be read: {_first_line(proc.stderr) or 'unknown error'}")
    return int(found.group(1))


def _boxes(pdfinfo: str, count: int) -> list[PdfPage]:
    """Each page's MediaBox, CropBox (clipped to the MediaBox) and /Rotate from `pdfinfo -box`."""
    boxes: dict[tuple[int, str], Box] = {}
    for number, name, *coords in _BOX.findall(pdfinfo):
        boxes[int(number), name] = tuple(float(c) for c in coords)  # type: ignore[assignment]
    turns = {int(number): int(rot) % 360 for number, rot in _ROT.findall(pdfinfo)}
    pages = []
    for number in range(1, count + 1):
        media = boxes.get((number, "MediaBox"), (0.0, 0.0, 612.0, 792.0))
        crop = _clip(boxes.get((number, "CropBox"), media), media)
        pages.append(PdfPage(crop, media, turns.get(number, 0)))
    return pages


def _clip(box: Box, bounds: Box) -> Box:
    """`box` clipped to `bounds` (both normalised to x0 < x1, y0 < y1); `bounds` if they miss."""
    bx0, by0, bx1, by1 = min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3])
    mx0, my0, mx1, my1 = (min(bounds[0], bounds[2]), min(bounds[1], bounds[3]),
                          max(bounds[0], bounds[2]), max(bounds[1], bounds[3]))
    x0, y0, x1, y1 = max(bx0, mx0), max(by0, my0), min(bx1, mx1), min(by1, my1)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else (mx0, my0, mx1, my1)


def _scan_resolutions(path: Path, pages: list[PdfPage]) -> dict[int, float]:
    """page number -> pixels per inch of the rasters covering it, for pages a scan covers.

    From `pdfimages -list` (poppler places every image with the page's transformation matrix and
    reports its resolution); a page counts as a scan when its images cover SCAN_COVERAGE of its
    visible area. The finest raster decides the resolution."""
    if not pages:
        return {}
    proc = _poppler(["pdfimages", "-list", str(path)])
    covered: dict[int, float] = {}
    finest: dict[int, float] = {}
    for line in proc.stdout.splitlines()[2:]:
        fields = line.split()
        if len(fields) < 14 or fields[2] != "image" or not fields[0].isdigit():
            continue
        try:
            number, width, height = int(fields[0]), int(fields[3]), int(fields[4])
            x_ppi, y_ppi = float(fields[12]), float(fields[13])
        except ValueError:
            continue
        if x_ppi <= 0 or y_ppi <= 0 or not 1 <= number <= len(pages):
            continue
        covered[number] = covered.get(number, 0.0) + (width / x_ppi * 72) * (height / y_ppi * 72)
        finest[number] = max(finest.get(number, 0.0), x_ppi, y_ppi)
    scans = {}
    for number, area in covered.items():
        width_pt, height_pt = pages[number - 1].size_pt
        if width_pt * height_pt > 0 and area >= SCAN_COVERAGE * width_pt * height_pt:
            scans[number] = finest[number]
    return scans


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:200] if text.strip() else ""
