"""What a document would cost, without rendering or running anything: its pages, each page's
size as it will be stored, and the InternVL tile plan and visual tokens of each.

The same decisions the pipeline makes, from the same functions: the checks and page selection
of submission (`inspect_document`, `parse_page_range`, `plan_renders`: the dpi each PDF page
renders at, workers/render_plan.py), the pixel size pdftoppm gives the page's box at that dpi
(`render_plan.rendered_size`) turned by its /Rotate (workers/render.py renders it so), an image's size after its EXIF/TIFF
orientation (render.py turns it so), and the tile plan the InternVL engine cuts that stored
image into (workers/internvl/tiling.py `plan_tiles`, with the job's `max_tiles`).

Not known before running: orientation detection may turn a page a quarter turn after it is
rendered (workers/orientation.py), which swaps its width and height and so may change its grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image, ImageSequence

from tessera.config import Settings
from tessera.errors import CorruptDocument, ImageTooLarge
from workers.documents import TIFF, DocumentInfo, inspect_document, open_image, parse_page_range, plan_renders
from workers.internvl.tiling import TilePlan, plan_tiles
from workers.render import EXIF_ORIENTATION
from workers.render_plan import rendered_size

QUARTER_TURN_EXIF = {5, 6, 7, 8}  # EXIF orientations that swap width and height (CIPA DC-008)


@dataclass(frozen=True)
class PagePlan:
    """One page: number (from 1), stored size in pixels, dpi (PDFs), its tile plan, warnings."""

    page: int
    width: int
    height: int
    dpi: int | None
    tiles: TilePlan
    warnings: tuple[str, ...] = ()


@dataclass
class DocumentPlan:
    media_type: str
    page_count: int  # pages in the document; `pages` holds the selected ones
    pages: list[PagePlan]
    warnings: list[str] = field(default_factory=list)

    @property
    def tiles(self) -> int:
        return sum(page.tiles.tiles for page in self.pages)

    @property
    def visual_tokens(self) -> int:
        return sum(page.tiles.visual_tokens for page in self.pages)


def plan_document(data: bytes, settings: Settings, *, pages: str | None = None,
                  dpi: int | None = None, max_tiles: int = 12) -> DocumentPlan:
    """The plan for one document with the job options `pages`, `dpi`, `max_tiles`. Raises the
    errors submission raises (InvalidInput and its kinds), and ImageTooLarge for an image the
    split stage would refuse."""
    info = inspect_document(data, settings.max_pages)
    numbers = parse_page_range(pages, info.page_count)
    renders = plan_renders(info, numbers, dpi, settings.default_dpi, settings.max_page_pixels)
    if renders is not None:
        planned = [_pdf_page(info, render.page_no, render.dpi, render.warnings, max_tiles)
                   for render in renders]
    else:
        planned = _image_pages(data, info.media_type, numbers, settings.max_page_pixels, max_tiles)
    return DocumentPlan(info.media_type, info.page_count, planned, list(info.warnings))


def _pdf_page(info: DocumentInfo, number: int, dpi: int, warnings: tuple[str, ...],
              max_tiles: int) -> PagePlan:
    page = info.pdf.pages[number - 1]
    width, height = rendered_size(page, dpi)
    if page.rotate % 180:
        width, height = height, width
    return PagePlan(number, width, height, dpi, plan_tiles(width, height, max_tiles), warnings)


def _image_pages(data: bytes, media_type: str, numbers: list[int], max_pixels: int,
                 max_tiles: int) -> list[PagePlan]:
    wanted, planned = set(numbers), []
    with open_image(data) as image:
        frames = ImageSequence.Iterator(image) if media_type == TIFF else [image]
        try:
            for number, frame in enumerate(frames, start=1):
                if number in wanted:
                    width, height = _displayed_size(number, frame, media_type, max_pixels)
                    planned.append(PagePlan(number, width, height, None,
                                            plan_tiles(width, height, max_tiles)))
        except (OSError, SyntaxError, ValueError) as exc:  # a frame's header or EXIF is broken
            raise CorruptDocument(f"the image could not be read: {exc}"[:300]) from exc
    return planned


def _displayed_size(number: int, frame: Image.Image, media_type: str, max_pixels: int) -> tuple[int, int]:
    """The frame's size as a viewer shows it; over `max_pixels` it is refused as render.py does.
    Pillow's TIFF reader already reports a frame's size turned by its Orientation tag (and turns
    the pixels on load); other formats report the stored size and keep the tag for
    ImageOps.exif_transpose (render.py)."""
    width, height = frame.size
    if width * height > max_pixels:
        raise ImageTooLarge(f"page {number} is {width}x{height} pixels; the limit is "
                            f"{max_pixels / 1e6:.0f} megapixels")
    if media_type != TIFF and frame.getexif().get(EXIF_ORIENTATION) in QUARTER_TURN_EXIF:
        return height, width
    return width, height
