"""Input inspection: type sniffing, page counts from the page tree, page boxes, the pixel budget
judged on the pixels a page really holds, image modes and frames."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from tessera.errors import CorruptDocument, EmptyDocument, ImageTooLarge, InvalidOptions, UnsupportedMediaType
from tessera.synthetic import make_pdf, render_text_page
from workers.documents import (
    JPEG,
    PDF,
    PNG,
    TIFF,
    image_page_count,
    inspect_document,
    parse_page_range,
    plan_renders,
    sniff_media_type,
)
from workers.pdf_layout import PdfPage
from workers.render import render_pages, to_rgb
from workers.render_plan import plan_page

DATA = Path(__file__).resolve().parents[1] / "data"
HANDED, MORE = DATA / "real-world", DATA / "real_world_more"
LIMIT = 100_000_000


@pytest.mark.parametrize(("head", "media_type"), [
    (b"%PDF-1.7\n", PDF), (b"\x89PNG\r\n\x1a\n....", PNG), (b"\xff\xd8\xff\xe0", JPEG),
    (b"II*\x00", TIFF), (b"MM\x00*", TIFF), (b"\n\n  %PDF-1.4", PDF),
])
def test_type_comes_from_magic_bytes(head: bytes, media_type: str) -> None:
    assert sniff_media_type(head) == media_type


@pytest.mark.parametrize("data", [b"<html>", b"PK\x03\x04zip", b"GIF89a", b"plain text"])
def test_other_types_are_refused(data: bytes) -> None:
    with pytest.raises(UnsupportedMediaType):
        sniff_media_type(data)


def test_empty_file_has_its_own_code() -> None:
    with pytest.raises(EmptyDocument):
        sniff_media_type(b"")


@pytest.mark.parametrize(("spec", "count", "pages"), [
    (None, 3, [1, 2, 3]), ("2", 3, [2]), ("1-3,7", 9, [1, 2, 3, 7]), (" 3-4 , 1 ", 5, [1, 3, 4]),
    ("2-2,2", 2, [2]),
])
def test_page_ranges_number_pages_from_one(spec: str | None, count: int, pages: list[int]) -> None:
    assert parse_page_range(spec, count) == pages


@pytest.mark.parametrize("spec", ["0", "3-1", "x", "1-", "5", "1-9"])
def test_bad_page_ranges_are_invalid_options(spec: str) -> None:
    with pytest.raises(InvalidOptions):
        parse_page_range(spec, 4)


def test_pdf_pages_and_boxes_come_from_poppler() -> None:
    pdf = make_pdf([render_text_page(["a"], size=(400, 300), margin=20),
                    render_text_page(["b"], size=(800, 200), margin=20)], dpi=100)
    info = inspect_document(pdf, max_pages=10)
    assert info.page_count == 2 and info.warnings == []
    assert [page.size_pt for page in info.pdf.pages] == [(288.0, 216.0), (576.0, 144.0)]
    assert [page.scan_ppi for page in info.pdf.pages] == [100.0, 100.0]  # rasters cover them


@pytest.mark.parametrize(("path", "pages", "declared"), [
    (HANDED / "count_says_1_of_3.pdf", 3, 1),
    (MORE / "count_says_4_of_2.pdf", 2, 4),
    (MORE / "nested_tree_count_says_2_of_4.pdf", 4, 2),
])
def test_pages_are_the_leaves_of_the_page_tree_not_its_count(path: Path, pages: int, declared: int) -> None:
    info = inspect_document(path.read_bytes(), max_pages=10)
    assert info.page_count == pages
    assert info.warnings == [f"the PDF's page tree holds {pages} pages but its /Count says {declared}; "
                             f"all {pages} pages were processed"]
    # the bytes poppler renders hold every leaf once, with what it inherited (MediaBox)
    assert [page.size_pt for page in info.pdf.pages] == [(612.0, 792.0)] * pages
    rendered = list(render_pages(info, info.pdf.data, list(range(1, pages + 1)),
                                 plan_renders(info, list(range(1, pages + 1)), 50, 200, LIMIT), LIMIT))
    assert [page.page_no for page in rendered] == list(range(1, pages + 1))
    assert len({page.image.tobytes() for page in rendered}) == pages  # no page rendered twice


def test_an_owner_password_only_pdf_opens_without_a_password() -> None:
    info = inspect_document((HANDED / "owner_password_only.pdf").read_bytes(), max_pages=10)
    assert info.page_count == 1 and info.warnings == []


@pytest.mark.parametrize(("path", "crop_box", "size"), [
    (HANDED / "cropbox_hides_half.pdf", (0.0, 0.0, 612.0, 792.0), (1700, 2200)),
    (MORE / "cropbox_top_right_quadrant.pdf", (612.0, 792.0, 1224.0, 1584.0), (1700, 2200)),
    (MORE / "cropbox_beyond_mediabox.pdf", (0.0, 0.0, 612.0, 792.0), (1700, 2200)),  # clipped
])
def test_the_page_is_its_cropbox_clipped_to_its_mediabox(path: Path, crop_box: tuple, size: tuple) -> None:
    info = inspect_document(path.read_bytes(), max_pages=10)
    assert info.pdf.pages[0].crop_box == crop_box
    [page] = render_pages(info, info.pdf.data, [1], plan_renders(info, [1], None, 200, LIMIT), LIMIT)
    assert page.image.size == size
    assert page.render["box"] == "CropBox" and page.render["box_pt"] == list(crop_box)


def test_rotated_pages_render_as_a_viewer_turns_them() -> None:
    info = inspect_document((HANDED / "rotate_90_180_270.pdf").read_bytes(), max_pages=10)
    assert [page.rotate for page in info.pdf.pages] == [90, 180, 270]
    pages = render_pages(info, info.pdf.data, [1, 2, 3], plan_renders(info, [1, 2, 3], None, 200, LIMIT), LIMIT)
    assert [page.image.size for page in pages] == [(1700, 2200)] * 3


def test_garbage_after_a_pdf_header_is_corrupt() -> None:
    with pytest.raises(CorruptDocument):
        inspect_document(b"%PDF-1.4\nthis is not a pdf body", max_pages=10)


# ---------------------------------------------------------------- the pixel budget


LETTER = (0.0, 0.0, 612.0, 792.0)


def page(box: tuple = LETTER, scan_ppi: float | None = None) -> PdfPage:
    return PdfPage(box, box, 0, scan_ppi)


@pytest.mark.parametrize(("desc", "pdf_page", "dpi", "asked", "expected_dpi"), [
    ("drawn page at the default", page(), 200, False, 200),
    ("drawn page at an asked dpi", page(), 300, True, 300),
    ("150-ppi scan renders at 200 like any page", page(scan_ppi=150), 200, False, 200),
    ("1200-ppi scan on a 2x3 inch page keeps its pixels", page((0, 0, 148.8, 210.48), 1200), 200, False, 1200),
    ("scan tagged 50 dpi on a 50x70 inch page: its own pixels, 4/3 at most", page((0, 0, 3571.2, 5051.52), 50),
     200, False, 66),
    ("a scan is never blown up past 4/3 of itself", page((0, 0, 1653.8, 2339.0), 72), 200, False, 96),
    ("an asked dpi is honoured on a scan", page(scan_ppi=150), 100, True, 100),
])
def test_each_page_renders_at_the_resolution_of_its_real_pixels(desc: str, pdf_page: PdfPage, dpi: int,
                                                                 asked: bool, expected_dpi: int) -> None:
    plan = plan_page(pdf_page, 1, dpi, asked, LIMIT)
    assert (plan.dpi, plan.warnings) == (expected_dpi, ()), desc


def test_a_drawn_page_over_the_pixel_budget_is_refused_before_rendering() -> None:
    with pytest.raises(ImageTooLarge, match="200.0x200.0 in: at 200 dpi it would be 1600 megapixels"):
        plan_page(page((0, 0, 14400, 14400)), 1, 200, False, LIMIT)  # a 200-inch square page


def test_a_scan_larger_than_the_budget_is_reduced_to_fit_and_says_so() -> None:
    # 30000 x 30000 px claimed on a 200-pt page: 10800 ppi (the hostile corpus's image bomb)
    plan = plan_page(page((0, 0, 200, 200), 10800), 1, 200, False, LIMIT)
    assert plan.dpi == 3600
    assert len(plan.warnings) == 1 and "reduced to 33% of its resolution" in plan.warnings[0]


def test_the_budget_is_checked_on_the_box_that_is_rendered() -> None:
    # the handed case of 'a 123-megapixel page through a 100-megapixel limit': a small CropBox on a
    # huge MediaBox is fine; the same page with the CropBox as large as the MediaBox is not
    huge, small = (0.0, 0.0, 14400.0, 5000.0), (0.0, 0.0, 612.0, 792.0)
    assert plan_page(PdfPage(small, huge), 1, 200, False, LIMIT).dpi == 200
    with pytest.raises(ImageTooLarge):
        plan_page(PdfPage(huge, huge), 1, 200, False, LIMIT)


def test_a_scan_tagged_low_is_accepted_and_rendered_within_the_budget() -> None:
    info = inspect_document((HANDED / "scan_tagged_50dpi.pdf").read_bytes(), max_pages=10)
    [plan] = plan_renders(info, [1], None, 200, LIMIT)
    [rendered] = render_pages(info, info.pdf.data, [1], [plan], LIMIT)
    assert rendered.image.width * rendered.image.height <= LIMIT
    assert rendered.image.width >= 2480 and rendered.render["scan_ppi"] == 50.0


# ---------------------------------------------------------------- images


@pytest.mark.parametrize("mode", ["CMYK", "I;16", "LA", "P", "RGBA", "L", "1"])
def test_every_image_mode_becomes_rgb(mode: str) -> None:
    image = Image.new(mode, (8, 4))
    assert to_rgb(image).mode == "RGB" and to_rgb(image).size == (8, 4)


def test_sixteen_bit_grey_keeps_its_levels() -> None:
    image = Image.new("I;16", (2, 1))
    image.putpixel((0, 0), 65535)
    assert to_rgb(image).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(image).getpixel((1, 0)) == (0, 0, 0)


def test_transparent_pixels_render_on_white() -> None:
    image = Image.new("RGBA", (1, 1), (0, 0, 0, 0))
    assert to_rgb(image).getpixel((0, 0)) == (255, 255, 255)


def reopened(image: Image.Image, **params: object) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **params)
    return Image.open(io.BytesIO(buffer.getvalue()))


@pytest.mark.parametrize(("image", "key"), [
    (Image.new("RGB", (2, 1), (0, 0, 0)), (0, 0, 0)),
    (Image.new("L", (2, 1), 0), 0),
    (Image.new("I;16", (2, 1), 0), 0),
])
def test_a_trns_colour_key_is_transparent_like_an_alpha_channel(image: Image.Image, key: object) -> None:
    image.putpixel((1, 0), (30, 30, 30) if image.mode == "RGB" else 30 * (257 if image.mode == "I;16" else 1))
    rgb = to_rgb(reopened(image, transparency=key))
    assert rgb.getpixel((0, 0)) == (255, 255, 255)  # the keyed background: white, as viewers show it
    assert rgb.getpixel((1, 0)) == (30, 30, 30)  # the ink stays


def test_rendered_pdf_pages_have_the_size_of_the_page_at_that_dpi() -> None:
    pdf = make_pdf([render_text_page([f"p{i}"], size=(400, 300)) for i in range(1, 4)], dpi=100)
    info = inspect_document(pdf, max_pages=10)
    pages = list(render_pages(info, pdf, [1, 3], plan_renders(info, [1, 3], 50, 200, LIMIT), LIMIT))
    assert [(page.page_no, page.image.size) for page in pages] == [(1, (200, 150)), (3, (200, 150))]


def test_an_image_page_over_the_pixel_budget_is_refused() -> None:
    buffer = io.BytesIO()
    Image.new("L", (300, 300)).save(buffer, "PNG")
    info = inspect_document(buffer.getvalue(), max_pages=10)
    with pytest.raises(ImageTooLarge):
        list(render_pages(info, buffer.getvalue(), [1], None, max_pixels=50_000))


@pytest.mark.parametrize(("path", "media_type", "pages"), [
    (HANDED / "mpo_second_image.jpg", JPEG, 1),  # MPO: a camera's second image is not a page
    (MORE / "mpo_three_frames.jpg", JPEG, 1),
    (MORE / "apng_two_frames.png", PNG, 1),  # an animated PNG's frames are not pages
    (MORE / "tiff_frame2_orientation6.tif", TIFF, 2),  # a TIFF's frames are
])
def test_only_tiff_frames_are_pages(path: Path, media_type: str, pages: int) -> None:
    assert image_page_count(path.read_bytes(), media_type) == pages
