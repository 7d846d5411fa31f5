"""Input inspection: type sniffing, page ranges, pixel budget, image modes."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tessera.errors import CorruptDocument, EmptyDocument, ImageTooLarge, InvalidOptions, UnsupportedMediaType
from tessera.synthetic import make_pdf, render_text_page
from workers.documents import (
    JPEG,
    PDF,
    PNG,
    TIFF,
    DocumentInfo,
    check_page_pixels,
    inspect_document,
    parse_page_range,
    sniff_media_type,
)
from workers.render import render_pages, to_rgb


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


def test_pdf_pages_and_sizes_come_from_poppler() -> None:
    pdf = make_pdf([render_text_page(["a"], size=(400, 300), margin=20),
                    render_text_page(["b"], size=(800, 200), margin=20)], dpi=100)
    info = inspect_document(pdf, max_pages=10)
    assert info.page_count == 2
    assert info.page_sizes_pt == [(288.0, 216.0), (576.0, 144.0)]


def test_a_page_over_the_pixel_budget_is_refused_before_rendering() -> None:
    info = DocumentInfo(PDF, 1, [(200 * 72.0, 200 * 72.0)])  # a 200-inch square page
    with pytest.raises(ImageTooLarge, match="200x200 inches"):
        check_page_pixels(info, [1], dpi=200, max_pixels=100_000_000)


def test_garbage_after_a_pdf_header_is_corrupt() -> None:
    with pytest.raises(CorruptDocument):
        inspect_document(b"%PDF-1.4\nthis is not a pdf body", max_pages=10)


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


def test_rendered_pdf_pages_have_the_size_of_the_page_at_that_dpi() -> None:
    pdf = make_pdf([render_text_page([f"p{i}"], size=(400, 300)) for i in range(1, 4)], dpi=100)
    pages = list(render_pages(pdf, PDF, [1, 3], dpi=50, max_pixels=10**8))
    assert [(n, image.size) for n, image in pages] == [(1, (200, 150)), (3, (200, 150))]


def test_an_image_page_over_the_pixel_budget_is_refused() -> None:
    buffer = io.BytesIO()
    Image.new("L", (300, 300)).save(buffer, "PNG")
    with pytest.raises(ImageTooLarge):
        list(render_pages(buffer.getvalue(), PNG, [1], dpi=200, max_pixels=50_000))
