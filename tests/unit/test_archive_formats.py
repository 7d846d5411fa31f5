"""The archive formats (workers/outputs/) on pages with known lines, checked by the field's own
consumers: hocr-spec and hocr-tools for hOCR, poppler (pdftotext, pdffonts) and pikepdf for the
searchable PDF. The real path (poppler, rapidocr, a worker, storage) is tests/e2e/test_archive_outputs.py."""

from __future__ import annotations

import io
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pikepdf
import pytest
from fontTools.ttLib import TTFont
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from storage.blobs import BlobKeys, BlobNotFound
from storage.models import Job, Page, PageStatus
from tessera.cli import app
from tessera.config import Settings
from tessera.formats import parse_formats
from tessera.synthetic import char_error_rate, font
from workers.outputs.fonts import LAYOUT_TABLES, OCRMYPDF_FONTS, layout_free_copy, text_layer_fonts
from workers.outputs.hocr import document_hocr
from workers.outputs.page_images import encode_for_pdf
from workers.outputs.page_size import MAX_SIDE_PT, physical_size
from workers.outputs.pages import OutputPage
from workers.outputs.searchable_pdf import searchable_pdf
from workers.outputs.store import store_archive_formats
from workers.outputs.text import document_txt
from workers.runtime import Runtime
from tests.utils.archive_checks import (
    hocr_lines,
    hocr_problems,
    pdf_image_filters,
    pdf_page_sizes,
    pdf_search,
    pdf_text,
    pdf_word_boxes,
)

WQY = Settings().pdf_cjk_font  # Debian fonts-wqy-microhei (scripts/setup.sh)
PDF_RENDER = {"source": "pdf", "box": "CropBox", "box_pt": [0, 0, 432.0, 288.0], "dpi": 200,
              "pdf_rotate": 0, "rotation": 0}


def drawn_page(page_no: int, texts: list[str], lang: str = "en", size: tuple[int, int] = (1200, 800),
               render: dict | None = None) -> tuple[OutputPage, bytes]:
    """A page image with `texts` drawn one per line, and the page with each line's true box."""
    image = Image.new("L", size, 255)
    draw, face = ImageDraw.Draw(image), font(lang, 36)
    lines = []
    for index, text in enumerate(texts):
        x0, y0, x1, y1 = draw.textbbox((60, 60 + 70 * index), text, font=face)
        draw.text((60, 60 + 70 * index), text, fill=0, font=face)
        lines.append({"text": text, "bbox": [x0, y0, x1, y1], "confidence": 0.97})
    png = io.BytesIO()
    image.convert("RGB").save(png, "PNG")
    page = OutputPage(page_no, size[0], size[1], f"p{page_no}", render or {"source": "image"},
                      done=True, text="\n".join(texts), lines=lines, positioned=True, engine="rapidocr")
    return page, png.getvalue()


@pytest.fixture(scope="module")
def document() -> tuple[list[OutputPage], dict[str, bytes]]:
    """Page 1 English (a PDF page: CropBox 6 x 4 in), page 2 Chinese, page 3 text without geometry,
    page 4 without a result."""
    english, english_png = drawn_page(1, ["Quarterly report of the northern depot",
                                          "Revenue grew 12% <over> plan & budget"], render=PDF_RENDER)
    chinese, chinese_png = drawn_page(2, ["北方仓库季度报告", "请于周五之前提交"], lang="zh")
    blank = _png(Image.new("RGB", (800, 600), "white"))
    unplaced = OutputPage(3, 800, 600, "p3", {"source": "image", "image_dpi": [100.0, 100.0]},
                          done=True, text="Lighthouse ledger\n灯塔日志", positioned=False, engine="internvl")
    failed = OutputPage(4, 800, 600, "p4", {"source": "image"})
    images = {"p1": english_png, "p2": chinese_png, "p3": blank, "p4": blank}
    return [english, chinese, unplaced, failed], images


@pytest.fixture(scope="module")
def pdf(document) -> bytes:  # noqa: ANN001
    pages, images = document
    return searchable_pdf(pages, images.__getitem__, text_layer_fonts(WQY), assumed_dpi=200).data


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_hocr_validates_and_gives_back_every_line(document) -> None:  # noqa: ANN001
    pages, _ = document
    hocr = document_hocr(pages, assumed_dpi=200, title="report.pdf").encode()
    assert hocr_problems(hocr, overlap=False) == []
    for page in pages:  # each page alone, with hocr-check's line overlap check on
        assert hocr_problems(document_hocr([page], assumed_dpi=200).encode()) == [], page.page_no
    assert hocr_lines(hocr) == [line["text"] for page in pages[:2] for line in page.lines]
    text = hocr.decode()
    assert text.count('class="ocr_page"') == 4 and text.count('class="ocr_line"') == 4
    assert 'title="bbox 0 0 1200 800; ppageno 0; scan_res 200 200"' in text  # 1200 px over 6 in
    assert 'title="bbox 0 0 1200 800; ppageno 1"' in text  # size assumed: no scan_res
    assert "ppageno 2; scan_res 100 100" in text
    x0, y0, x1, y1 = pages[0].lines[0]["bbox"]
    assert f'title="bbox {x0} {y0} {x1} {y1}; x_wconf 97">Quarterly report' in text
    assert "Revenue grew 12% &lt;over&gt; plan &amp; budget" in text
    assert '<p class="ocr_par" id="par_3_1">Lighthouse ledger<br/>灯塔日志</p>' in text


def test_txt_separates_pages_with_form_feeds(document) -> None:  # noqa: ANN001
    pages, _ = document
    odd = OutputPage(5, 10, 10, None, done=True, text="before\fafter\n\n")
    parts = document_txt([*pages, odd]).split("\f")
    assert parts == [pages[0].text + "\n", pages[1].text + "\n", pages[2].text + "\n", "", "before\nafter\n"]


@pytest.mark.parametrize(("size", "render", "expected"), [
    ((1700, 2200), {"source": "pdf", "box_pt": [0, 0, 612, 792], "pdf_rotate": 0}, (612, 792, "pdf_box")),
    # /Rotate 90, then turned 180 by orientation detection: the pixels lie sideways to the box
    ((2200, 1700), {"source": "pdf", "box_pt": [10, 10, 622, 802], "pdf_rotate": 90, "rotation": 180},
     (792, 612, "pdf_box")),
    ((3000, 1500), {"source": "image", "image_dpi": [300, 300]}, (720, 360, "image_tag")),
    # EXIF orientation 6 turned a 150 x 300 dpi scan: the tags swap with the axes
    ((600, 300), {"source": "image", "image_dpi": [150, 300], "exif_rotate": 90}, (144, 144, "image_tag")),
    ((1000, 500), {"source": "image", "image_dpi": [1, 1]}, (360, 180, "assumed")),
    ((1000, 500), {"source": "image"}, (360, 180, "assumed")),
    ((100_000, 1000), {"source": "image"}, (MAX_SIDE_PT, 144, "assumed")),  # PDF's 200 in limit
])
def test_physical_size(size: tuple[int, int], render: dict, expected: tuple) -> None:
    got = physical_size(*size, render, assumed_dpi=200)
    assert (round(got.width_pt, 2), round(got.height_pt, 2), got.source) == expected


def _photo() -> Image.Image:
    rng = np.random.default_rng(1)
    ramp = np.linspace(0, 255, 300)[None, :, None] * np.ones((200, 1, 3))
    return Image.fromarray(np.clip(ramp + rng.normal(0, 12, (200, 300, 3)), 0, 255).astype(np.uint8))


def _bilevel() -> Image.Image:
    """Black and white only, as a bilevel scanner writes it (stored as RGB like every page)."""
    return Image.fromarray(np.where(np.indices((200, 300)).sum(0) % 7 == 0, 0, 255).astype(np.uint8)).convert("RGB")


def _chart() -> Image.Image:
    image = Image.new("RGB", (300, 200), "white")
    ImageDraw.Draw(image).rectangle((20, 40, 250, 80), fill=(52, 101, 164))
    ImageDraw.Draw(image).text((20, 100), "Q3 revenue", fill=(200, 30, 30))
    return image


@pytest.mark.parametrize(("make", "encoding", "pdf_filter"), [
    (_bilevel, "ccitt_g4", "/CCITTFaxDecode"),
    (lambda: Image.fromarray(np.tile(np.arange(300, dtype=np.uint8)[None, :] // 2, (200, 1))).convert("RGB"),
     "png_grey", "/FlateDecode"),
    (_chart, "png_palette", "/FlateDecode"),
    (_photo, "jpeg", "/DCTDecode"),
])
def test_each_page_image_is_encoded_for_what_it_holds(make, encoding: str, pdf_filter: str) -> None:  # noqa: ANN001
    image = make()
    encoded = encode_for_pdf(image)
    assert encoded.encoding == encoding
    page = OutputPage(1, image.width, image.height, "k", {"source": "image"}, done=True)
    pdf = searchable_pdf([page], lambda _: _png(image), text_layer_fonts(WQY), assumed_dpi=100).data
    assert pdf_image_filters(pdf) == [pdf_filter]
    if encoded.lossless:  # the page's pixels come back exactly
        with pikepdf.open(io.BytesIO(pdf)) as opened:
            [embedded] = opened.pages[0].get_images().values()
            back = pikepdf.PdfImage(embedded).as_pil_image().convert("RGB")
        assert np.array_equal(np.asarray(back), np.asarray(image))
    else:
        assert len(encoded.data) < len(_png(image)) / 2


def test_searchable_pdf_text_layer_sizes_and_fonts(document, pdf: bytes) -> None:  # noqa: ANN001
    pages, _ = document
    assert pdf_page_sizes(pdf) == [(432.0, 288.0), (432.0, 288.0), (576.0, 432.0), (288.0, 216.0)]
    for page in pages[:3]:
        assert char_error_rate(pdf_text(pdf, page.page_no), page.text) <= 0.01, page.page_no
    assert pdf_text(pdf, 4).strip() == ""
    assert pdf_search(pdf, "Revenue grew 12% <over> plan & budget") == [1]
    assert pdf_search(pdf, "请于周五之前提交") == [2]  # CJK round-trips through the text layer
    assert pdf_search(pdf, "灯塔日志") == [3]  # and on a page without geometry
    with pikepdf.open(io.BytesIO(pdf)) as document_pdf:
        assert str(document_pdf.docinfo["/TesseraUnpositionedPages"]) == "3"
    with tempfile.NamedTemporaryFile(suffix=".pdf") as handle:
        handle.write(pdf)
        handle.flush()
        fonts = subprocess.run(["pdffonts", handle.name], capture_output=True, text=True).stdout
    assert "+NotoSans" in fonts and "+WenQuanYiMicroHei" in fonts  # subset-embedded


def test_searchable_pdf_places_each_line_on_its_box(document, pdf: bytes) -> None:  # noqa: ANN001
    """pdftotext's word boxes of a positioned line lie on the line's box (pixels at 200 dpi)."""
    pages, _ = document
    for page in pages[:2]:
        words = pdf_word_boxes(pdf, page.page_no)
        scale = 72 / 200
        for line in page.lines:
            x0, y0, x1, y1 = (v * scale for v in line["bbox"])
            mine = [w for w in words if (w[2] + w[4]) / 2 > y0 and (w[2] + w[4]) / 2 < y1]
            assert "".join(w[0] for w in mine).replace(" ", "") == line["text"].replace(" ", "")
            assert min(w[1] for w in mine) == pytest.approx(x0, abs=3)
            assert max(w[3] for w in mine) == pytest.approx(x1, abs=3)


def test_format_names_are_parsed_once_in_order_and_unknown_ones_refused(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    assert [f.suffix for f in parse_formats(" pdf,hocr,TXT,pdf ")] == [".pdf", ".hocr", ".txt"]
    for names, problem in (("pdf,docx", "unknown format 'docx'"), (" , ", "no format given")):
        with pytest.raises(ValueError, match=problem):
            parse_formats(names)
    source = tmp_path / "a.png"
    source.write_bytes(_png(Image.new("RGB", (50, 50), "white")))
    # the CLI's logging would bind CliRunner's stderr, closed after the call, for later tests
    monkeypatch.setattr("tessera.logs.configure_logging", lambda *args, **kwargs: None)
    result = CliRunner().invoke(app, ["run", str(source), "--out", str(tmp_path), "--format", "docx"])
    assert result.exit_code == 2 and "unknown format 'docx'" in result.output
    assert not (tmp_path / "a").exists()  # refused before any work


def test_vertical_cjk_columns_stay_in_the_text_layer() -> None:
    """Columns of vertical Chinese (tall, narrow boxes) are drawn running down the page; laid as a
    horizontal line the renderer would judge their box implausible and drop the text."""
    image, face = Image.new("L", (500, 700), 255), font("zh", 40)
    draw, lines = ImageDraw.Draw(image), []
    for column, text in enumerate(["北方仓库季度报告", "请于周五之前提交"]):
        x = 380 - 150 * column
        for index, char in enumerate(text):
            draw.text((x, 40 + 48 * index), char, fill=0, font=face)
        lines.append({"text": text, "bbox": [x, 40, x + 42, 40 + 48 * len(text)], "confidence": 0.99})
    page = OutputPage(1, 500, 700, "v", {"source": "image"}, done=True, text="\n".join(l["text"] for l in lines),
                      lines=lines, positioned=True)
    pdf = searchable_pdf([page], lambda _: _png(image.convert("RGB")), text_layer_fonts(WQY), assumed_dpi=200).data
    assert pdf_search(pdf, "北方仓库季度报告") == [1] and pdf_search(pdf, "请于周五之前提交") == [1]
    assert char_error_rate(pdf_text(pdf, 1), page.text) == 0


def test_a_format_that_cannot_be_built_leaves_the_others_and_says_so(tmp_path) -> None:  # noqa: ANN001
    """A page image that is gone (or will not decode) costs the job its PDF, not its other results."""
    rt = Runtime(Settings(home=tmp_path))
    job = Job(id="j" * 32, tenant_id="t" * 32, filename="lost.pdf")
    page = Page(job_id=job.id, tenant_id=job.tenant_id, page_no=1, status=PageStatus.DONE,
                image_key=BlobKeys.page_image(job.tenant_id, job.id, 1), width=400, height=300,
                render={"source": "image"})
    result = {"text": "kept text", "lines": [], "positioned": False, "engine": "internvl"}
    warnings = store_archive_formats(rt, job, [page], {1: result})
    assert len(warnings) == 1 and warnings[0].startswith("the pdf result could not be built: BlobNotFound")
    assert rt.blobs.get(BlobKeys.result(job.tenant_id, job.id, "txt")) == b"kept text\n"
    assert b"kept text" in rt.blobs.get(BlobKeys.result(job.tenant_id, job.id, "hocr"))
    with pytest.raises(BlobNotFound):
        rt.blobs.get(BlobKeys.result(job.tenant_id, job.id, "pdf"))


@pytest.mark.parametrize("source", [OCRMYPDF_FONTS / "NotoSans-Regular.ttf", WQY])
def test_the_text_layer_fonts_are_their_sources_less_the_layout_tables(source: Path) -> None:
    """The copies the PDF embeds from: every character and advance width of the source (face 0
    of the WenQuanYi collection), no OpenType layout tables, written once and then reused."""
    copy = layout_free_copy(source)
    assert copy.name == f"{source.stem}.ttf" and layout_free_copy(source) == copy
    original, stripped = TTFont(source, fontNumber=0, lazy=True), TTFont(copy, lazy=True)
    assert any(tag in original for tag in LAYOUT_TABLES)
    assert not any(tag in stripped for tag in LAYOUT_TABLES)
    assert stripped.getBestCmap() == original.getBestCmap()
    assert stripped["hmtx"].metrics == original["hmtx"].metrics
    assert stripped["name"].getBestFullName() == original["name"].getBestFullName()


def test_text_layer_fonts_are_copied_again_when_a_temp_cleaner_removed_them() -> None:
    fonts = text_layer_fonts(WQY)
    copy = fonts.font_provider.get_font("NotoSans-Regular").font_path
    copy.unlink()
    again = text_layer_fonts(WQY)
    assert again is not fonts and again.font_provider.get_font("NotoSans-Regular").font_path.is_file()
    pdf = searchable_pdf([OutputPage(1, 400, 100, "k", {"source": "image"}, done=True, text="Tessera",
                                     lines=[{"text": "Tessera", "bbox": [10, 10, 200, 60]}], positioned=True)],
                         lambda _: _png(Image.new("L", (400, 100), 255)), again, assumed_dpi=100).data
    assert pdf_search(pdf, "Tessera") == [1]
