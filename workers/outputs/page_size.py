"""A page's physical size, for the searchable PDF and hOCR's `scan_res`.

- A PDF page keeps the size of the box it was rendered from (`render.box_pt`, the CropBox),
  turned as its /Rotate and orientation detection turned the pixels.
- An image's page is its pixels at its own resolution tag (JFIF, EXIF, PNG pHYs or TIFF, recorded
  by workers/render.py as `render.image_dpi`) when it has a plausible one.
- Otherwise the size is assumed: the pixels at `assumed_dpi` (the service's default render
  resolution), and the result says so (`source` "assumed").

No side exceeds 14,400 pt (200 in), the page size limit of PDF readers (ISO 32000-1, Annex C.2):
a larger page is scaled down to it and its `source` says "assumed".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

POINTS_PER_INCH = 72.0
MAX_SIDE_PT = 14_400.0
# A tag outside this range is no scan resolution (0, 1, or a bogus value): the size is assumed.
MIN_TAG_DPI, MAX_TAG_DPI = 50.0, 4800.0


@dataclass(frozen=True)
class PhysicalSize:
    """`width_pt` x `height_pt`; `source`: "pdf_box", "image_tag" or "assumed"."""

    width_pt: float
    height_pt: float
    source: str

    def dpi(self, width_px: int, height_px: int) -> tuple[float, float]:
        """Pixels per inch of a width_px x height_px image shown at this size."""
        return (width_px * POINTS_PER_INCH / self.width_pt, height_px * POINTS_PER_INCH / self.height_pt)


def physical_size(width_px: int, height_px: int, render: dict[str, Any], assumed_dpi: float) -> PhysicalSize:
    """The size a width_px x height_px stored page image (as a viewer shows it) stands for."""
    size = _from_pdf_box(render) or _from_image_tag(width_px, height_px, render)
    if size is None or max(size.width_pt, size.height_pt) > MAX_SIDE_PT:
        size = PhysicalSize(width_px * POINTS_PER_INCH / assumed_dpi,
                            height_px * POINTS_PER_INCH / assumed_dpi, "assumed")
    scale = min(1.0, MAX_SIDE_PT / max(size.width_pt, size.height_pt))
    if scale < 1.0:
        return PhysicalSize(size.width_pt * scale, size.height_pt * scale, "assumed")
    return size


def _sideways(render: dict[str, Any], turn_key: str) -> bool:
    """The stored pixels are the source turned by an odd number of quarter turns."""
    quarters = int(render.get(turn_key) or 0) // 90 + int(render.get("rotation") or 0) // 90
    return quarters % 2 == 1


def _from_pdf_box(render: dict[str, Any]) -> PhysicalSize | None:
    box = render.get("box_pt")
    if render.get("source") != "pdf" or not box or len(box) != 4:
        return None
    width, height = abs(box[2] - box[0]), abs(box[3] - box[1])
    if width <= 0 or height <= 0:
        return None
    if _sideways(render, "pdf_rotate"):
        width, height = height, width
    return PhysicalSize(width, height, "pdf_box")


def _from_image_tag(width_px: int, height_px: int, render: dict[str, Any]) -> PhysicalSize | None:
    tag = render.get("image_dpi")
    if render.get("source") != "image" or not tag or len(tag) != 2:
        return None
    dpi_x, dpi_y = float(tag[0]), float(tag[1])
    if not all(MIN_TAG_DPI <= value <= MAX_TAG_DPI for value in (dpi_x, dpi_y)):
        return None
    if _sideways(render, "exif_rotate"):
        dpi_x, dpi_y = dpi_y, dpi_x
    return PhysicalSize(width_px * POINTS_PER_INCH / dpi_x, height_px * POINTS_PER_INCH / dpi_y, "image_tag")
