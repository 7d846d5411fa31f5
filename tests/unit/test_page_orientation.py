"""Pages turned upright: by their EXIF/TIFF Orientation tag (what every viewer does), and by
orientation detection when nothing in the file says the text runs sideways or upside down."""

from __future__ import annotations

import io

import pytest
from PIL import Image, TiffImagePlugin

from tessera.synthetic import render_text_page, wrap_text
from workers.documents import JPEG, TIFF, inspect_document
from workers.orientation import OrientationDetector, content_windows, turn_upright
from workers.render import render_pages

# EXIF Orientation -> how to store an upright image so that the tag displays it upright
STORE_FOR = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
             4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
             7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}
RED, BLUE = (255, 0, 0), (0, 0, 255)


def marked(size: tuple[int, int] = (60, 40)) -> Image.Image:
    """A white image with a red block at its top-left corner and a blue one at its top-right."""
    image = Image.new("RGB", size, "white")
    image.paste(RED, (0, 0, 12, 12))
    image.paste(BLUE, (size[0] - 12, 0, size[0], 12))
    return image


def corners(image: Image.Image) -> tuple:
    return image.getpixel((5, 5)), image.getpixel((image.width - 6, 5))


def as_jpeg(image: Image.Image, tag: int) -> bytes:
    stored = image if STORE_FOR[tag] is None else image.transpose(STORE_FOR[tag])
    exif = Image.Exif()
    exif[0x0112] = tag
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", quality=100, exif=exif.tobytes())
    return buffer.getvalue()


def close(pixel: tuple, colour: tuple) -> bool:
    return all(abs(a - b) < 60 for a, b in zip(pixel, colour))


@pytest.mark.parametrize("tag", range(1, 9))
def test_every_exif_orientation_is_applied_before_the_page_is_stored(tag: int) -> None:
    data = as_jpeg(marked(), tag)
    info = inspect_document(data, max_pages=10)
    [page] = render_pages(info, data, [1], None, 10**8)
    assert page.image.size == (60, 40)
    red, blue = corners(page.image)
    assert close(red, RED) and close(blue, BLUE), (tag, red, blue)
    if tag != 1:
        assert page.render["exif_orientation"] == tag


def test_each_tiff_frame_is_turned_by_its_own_tag() -> None:
    upright = marked()
    buffer = io.BytesIO()
    with TiffImagePlugin.AppendingTiffWriter(buffer, new=True) as writer:
        for tag in (1, 6, 3):
            tags = TiffImagePlugin.ImageFileDirectory_v2()
            tags[274] = tag
            stored = upright if STORE_FOR[tag] is None else upright.transpose(STORE_FOR[tag])
            stored.save(writer, "TIFF", tiffinfo=tags)
            writer.newFrame()
    data = buffer.getvalue()
    info = inspect_document(data, max_pages=10)
    assert info.media_type == TIFF and info.page_count == 3
    for page in render_pages(info, data, [1, 2, 3], None, 10**8):
        red, blue = corners(page.image)
        assert page.image.size == (60, 40) and close(red, RED) and close(blue, BLUE), page.page_no


def test_turn_upright_turns_clockwise() -> None:
    image = marked()
    assert turn_upright(image, 0) is image
    turned = turn_upright(image, 90)  # the top-left corner goes to the top-right
    assert turned.size == (40, 60) and close(turned.getpixel((34, 5)), RED)
    assert close(turn_upright(image, 180).getpixel((54, 34)), RED)
    assert close(turn_upright(image, 270).getpixel((5, 54)), RED)


EN = ("The committee reviewed the annual budget and approved the new maintenance schedule for "
      "all regional offices before the end of the fiscal year. ")
ZH = "本公司董事会审议通过了年度预算报告，并批准了各地区办事处在本财年结束前的维护计划和人员安排。"
PAGES = {
    "english prose": lambda: render_text_page(wrap_text(EN * 6, "en", 30), font_size=30),
    "chinese prose": lambda: render_text_page(wrap_text(ZH * 5, "zh", 32), lang="zh", font_size=32),
    "two sparse lines": lambda: render_text_page(["Invoice 2231", "Total due: 418.20"], font_size=40),
    "a long receipt": lambda: render_text_page([f"Item {n:02d} coffee beans {n * 3.25:.2f}" for n in range(1, 40)],
                                               size=(700, 3200), font_size=30, margin=60),
}


@pytest.fixture(scope="module")
def detector() -> OrientationDetector:
    return OrientationDetector()


@pytest.mark.parametrize("name", PAGES)
@pytest.mark.parametrize("turned", [0, 90, 180, 270])
def test_orientation_detection_finds_the_turn_that_makes_the_text_upright(detector, name: str,  # noqa: ANN001
                                                                         turned: int) -> None:
    upright = PAGES[name]().convert("RGB")
    scanned = upright.rotate(turned, expand=True)  # PIL turns counter-clockwise
    verdict = detector.detect(scanned)
    assert verdict.decided and verdict.rotate == turned, (name, turned, verdict)
    assert turn_upright(scanned, verdict.rotate).tobytes() == upright.tobytes()


def test_a_blank_page_is_left_as_it_is(detector) -> None:  # noqa: ANN001
    verdict = detector.detect(Image.new("RGB", (1700, 2200), "white"))
    assert verdict.blank and not verdict.decided and verdict.rotate == 0


def test_a_page_without_text_is_not_turned_on_a_guess(detector) -> None:  # noqa: ANN001
    noise = Image.effect_noise((800, 1000), 80).convert("RGB")
    verdict = detector.detect(noise)
    assert verdict.rotate == 0 or verdict.decided  # only a confident verdict turns a page


def test_long_pages_are_seen_through_windows_along_their_length() -> None:
    tall = render_text_page([f"line {n}" for n in range(130)], size=(1200, 9000), font_size=40, margin=60)
    assert len(content_windows(tall)) == 4
    assert len(content_windows(render_text_page(["one line"]))) == 1
    assert content_windows(Image.new("L", (500, 500), 255)) == []
