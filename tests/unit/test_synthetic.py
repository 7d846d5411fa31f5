"""Synthetic documents: sizes survive poppler, broken PDFs break as real ones do, truth is exact."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from pdf2image import convert_from_bytes, pdfinfo_from_path
from pdf2image.exceptions import PDFPageCountError
from PIL import Image, ImageChops

from tessera import synthetic

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def small_page(text: str = "Tessera synthetic page") -> Image.Image:
    return synthetic.render_text_page([text, "second line 12345"], size=(800, 600), margin=60)


def test_text_page_is_white_with_black_text() -> None:
    page = synthetic.render_text_page(["Hello"], size=(400, 300), margin=40)
    assert page.size == (400, 300) and page.mode == "L"
    assert page.getextrema() == (0, 255)


def test_text_page_refuses_text_that_does_not_fit() -> None:
    with pytest.raises(ValueError, match="too wide"):
        synthetic.render_text_page(["x" * 200], size=(800, 600))
    with pytest.raises(ValueError, match="do not fit"):
        synthetic.render_text_page(["x"] * 100, size=(800, 600))


@pytest.mark.parametrize(
    ("lang", "text", "sep"),
    [
        ("en", "The quick brown fox jumps over the lazy dog. " * 12, " "),
        ("zh", "清晨的江南小镇总是被一层薄雾笼罩，石板路上还留着昨夜的雨水。" * 6, ""),
    ],
)
def test_wrap_text_keeps_every_character_and_fits(
    lang: synthetic.Lang, text: str, sep: str
) -> None:
    lines = synthetic.wrap_text(text, lang, font_size=32, width=900)
    assert len(lines) > 2
    assert sep.join(lines) == sep.join(text.split())
    assert not any(line[0] in "，。" for line in lines)
    synthetic.render_text_page(lines, size=(900 + 2 * 60 + 40, 2200), margin=60, lang=lang)


def test_pdf_renders_back_at_the_same_pixel_size() -> None:
    pages = [small_page(), synthetic.render_text_page(["odd size"], size=(777, 333), margin=30)]
    rendered = convert_from_bytes(synthetic.make_pdf(pages, dpi=200), dpi=200)
    assert [p.size for p in rendered] == [(800, 600), (777, 333)]
    diff = ImageChops.difference(rendered[0].convert("L"), pages[0])
    assert sum(diff.histogram()[32:]) < 0.01 * 800 * 600  # same picture, up to JPEG noise


def test_pdf_bytes_are_reproducible() -> None:
    assert synthetic.make_pdf([small_page()]) == synthetic.make_pdf([small_page()])
    pdf = synthetic.make_pdf([small_page()])
    assert synthetic.make_encrypted_pdf(pdf) == synthetic.make_encrypted_pdf(pdf)


def test_encrypted_pdf_needs_its_password() -> None:
    pdf = synthetic.make_encrypted_pdf(synthetic.make_pdf([small_page()]), user_password="s3cret")
    with pytest.raises(PDFPageCountError, match="Incorrect password"):
        convert_from_bytes(pdf, dpi=50)
    assert [p.size for p in convert_from_bytes(pdf, dpi=200, userpw="s3cret")] == [(800, 600)]


def test_truncated_pdf_cannot_be_counted() -> None:
    pdf = synthetic.make_pdf([small_page(), small_page("two")])
    with pytest.raises(PDFPageCountError):
        convert_from_bytes(synthetic.make_truncated_pdf(pdf, keep=0.6), dpi=50)


def test_table_truth_matches_what_was_drawn() -> None:
    image, truth = synthetic.render_table_page(seed=3, n_rows=5)
    assert image.size == (1400, 900)
    assert truth.lines[0] == truth.title
    assert truth.lines[1:] == [" ".join(row) for row in [truth.columns, *truth.rows]]
    again, same = synthetic.render_table_page(seed=3, n_rows=5)
    assert again.tobytes() == image.tobytes() and same == truth
    assert synthetic.render_table_page(seed=4, n_rows=5)[1].rows != truth.rows


def test_bar_chart_truth_is_a_chart_table() -> None:
    image, truth = synthetic.render_bar_chart_page(seed=1, n_bars=4)
    assert image.mode == "RGB"
    assert truth.columns == ["City", "Revenue (million USD)"] and len(truth.rows) == 4
    assert truth.lines == [
        truth.title,
        "City",
        *(f"{c} {v}" for c, v in truth.rows),
        truth.columns[1],
    ]
    assert all(5 <= float(v) <= 95 for _, v in truth.rows)


def test_photo_scan_is_tilted_tinted_and_reproducible() -> None:
    page = small_page()
    photo = synthetic.photo_scan(page, seed=2, angle=2.0)
    assert photo.mode == "RGB" and photo.width > page.width and photo.height > page.height
    assert photo.tobytes() == synthetic.photo_scan(page, seed=2, angle=2.0).tobytes()
    r, g, b = photo.getpixel((photo.width // 2, photo.height - 30))
    assert r > b  # paper tint, not white


def naive_levenshtein(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def test_levenshtein_agrees_with_the_textbook_version() -> None:
    assert synthetic.levenshtein("kitten", "sitting") == 3
    assert synthetic.levenshtein("", "abc") == synthetic.levenshtein("abc", "") == 3
    rng = random.Random(0)
    for _ in range(200):
        a = "".join(rng.choices("ab中c", k=rng.randint(0, 12)))
        b = "".join(rng.choices("ab中c", k=rng.randint(0, 12)))
        assert synthetic.levenshtein(a, b) == naive_levenshtein(a, b)


def test_char_error_rate_ignores_whitespace() -> None:
    assert synthetic.char_error_rate("a b\nc", "abc") == 0.0
    assert synthetic.char_error_rate("abd", "a b c") == pytest.approx(1 / 3)
    assert synthetic.char_error_rate("", "") == 0.0


@pytest.mark.parametrize(
    "sample", sorted(p.name for p in SAMPLES.glob("*.*") if p.suffix in {".pdf", ".png", ".jpg"})
)
def test_every_sample_page_has_its_truth(sample: str) -> None:
    path = SAMPLES / sample
    pages = pdfinfo_from_path(path)["Pages"] if path.suffix == ".pdf" else 1
    truth = sorted((SAMPLES / "truth" / path.stem).glob("*.txt"), key=lambda t: int(t.stem))
    assert [t.name for t in truth] == [f"{n}.txt" for n in range(1, pages + 1)]
    assert all(t.read_text(encoding="utf-8").strip() for t in truth)
