"""The cost preview (workers/preview.py) against what the pipeline really does: for every
document of the real-world corpora, each planned page's size is the size render.py gives it, and
its tile plan is the one the InternVL engine's tiling makes of that image."""

from __future__ import annotations

import io
import random
from decimal import Decimal
from pathlib import Path

import pikepdf
import pytest
from PIL import Image

from tessera.config import Settings
from tessera.errors import CorruptDocument, ImageTooLarge, InvalidOptions
from tessera.synthetic import make_pdf, render_text_page
from workers.documents import inspect_document, parse_page_range, plan_renders
from workers.internvl.tiling import plan_tiles, tile_uint8
from workers.preview import plan_document
from workers.render import render_pages

DATA = Path(__file__).resolve().parents[1] / "data"
DOCUMENTS = sorted(path for folder in ("real-world", "real_world_more") for path in (DATA / folder).iterdir()
                   if path.suffix in (".pdf", ".png", ".jpg", ".tif")
                   and path.name != "owner_password_only.pdf")  # opens: it has no user password
SETTINGS = Settings()


def rendered_sizes(data: bytes, pages: str | None = None, dpi: int | None = None) -> list[tuple[int, int]]:
    """What the split stage stores, before orientation detection: render.py's page images."""
    info = inspect_document(data, SETTINGS.max_pages)
    numbers = parse_page_range(pages, info.page_count)
    plans = plan_renders(info, numbers, dpi, SETTINGS.default_dpi, SETTINGS.max_page_pixels)
    return [page.image.size for page in render_pages(info, data, numbers, plans, SETTINGS.max_page_pixels)]


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: path.name)
def test_planned_page_sizes_are_the_rendered_ones(path: Path) -> None:
    data = path.read_bytes()
    plan = plan_document(data, SETTINGS, max_tiles=12)
    assert [(page.width, page.height) for page in plan.pages] == rendered_sizes(data)
    for page in plan.pages:
        assert page.tiles == plan_tiles(page.width, page.height, 12)


def test_options_select_pages_and_resolution() -> None:
    pdf = make_pdf([render_text_page(["one"], size=(850, 1100)) for _ in range(4)])
    plan = plan_document(pdf, SETTINGS, pages="2-3", dpi=100, max_tiles=6)
    assert [page.page for page in plan.pages] == [2, 3] and plan.page_count == 4
    assert [(page.width, page.height, page.dpi) for page in plan.pages] == [(w, h, 100) for w, h in
                                                                           rendered_sizes(pdf, "2-3", 100)]
    assert all(page.tiles.tiles <= 7 for page in plan.pages)  # 6 grid tiles + the thumbnail
    assert plan.tiles == sum(page.tiles.tiles for page in plan.pages)
    assert plan.visual_tokens == 256 * plan.tiles


@pytest.mark.parametrize("max_tiles", [1, 6, 12, 40])
def test_the_tile_plan_is_the_engines(max_tiles: int) -> None:
    """The engine tiles the stored image with tile_uint8; its plan is the preview's."""
    image = render_text_page(["a wide page"], size=(1900, 700))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    [page] = plan_document(buffer.getvalue(), SETTINGS, max_tiles=max_tiles).pages
    engine_plan, pixels = tile_uint8(image, max_tiles)
    assert page.tiles == engine_plan and len(pixels) == page.tiles.tiles


def test_bad_input_gets_the_submission_errors() -> None:
    with pytest.raises(InvalidOptions):
        plan_document(make_pdf([render_text_page(["x"])]), SETTINGS, pages="3")
    small = Settings(max_page_pixels=10_000)
    with pytest.raises(ImageTooLarge):
        plan_document(_png((200, 100)), small)
    with pytest.raises(CorruptDocument):
        plan_document(_png((200, 100))[:60], SETTINGS)


def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, "white").save(buffer, format="PNG")
    return buffer.getvalue()


def test_pdf_page_sizes_are_poppler_s_for_any_box() -> None:
    """Random boxes (offsets, 0-2 decimals, /Rotate) at random resolutions, rendered by pdftoppm:
    poppler reads 210.48 as 210.48000000000002, so a size computed from the nearest double is a
    pixel short for some boxes. Boxes come from `pdfinfo -box` (workers/pdf_layout.py), which
    prints two decimals: a box written with more can be a pixel off, hence 0-2 here."""
    rng = random.Random(13)
    pdf = pikepdf.new()
    resolutions = []
    for _ in range(40):
        x0, y0 = (Decimal(str(round(rng.uniform(0, 50), rng.choice([0, 1, 2])))) for _ in range(2))
        width, height = (Decimal(str(round(rng.uniform(50, 300), rng.choice([0, 1, 2])))) for _ in range(2))
        pdf.add_blank_page(page_size=(100, 100))
        pdf.pages[-1].obj.MediaBox = pikepdf.Array([x0, y0, x0 + width, y0 + height])
        pdf.pages[-1].obj.Rotate = rng.choice([0, 90, 180, 270])
        resolutions.append(rng.choice([72, 96, 100, 150, 200, 300]))
    buffer = io.BytesIO()
    pdf.save(buffer)
    data = buffer.getvalue()
    for dpi in sorted(set(resolutions)):
        pages = ",".join(str(n) for n, at in enumerate(resolutions, start=1) if at == dpi)
        plan = plan_document(data, SETTINGS, pages=pages, dpi=dpi)
        assert [(page.width, page.height) for page in plan.pages] == rendered_sizes(data, pages, dpi), dpi
