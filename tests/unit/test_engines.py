"""The CPU engines on real pages: digest (recomputable) and rapidocr (real models from the wheel).

CER threshold: rapidocr 3.10 reads these pages, and every sample in samples/, with
CER 0.000 (bench/ocr_quality.py). 0.05 leaves room for numeric drift between CPUs
while a real fault fails: one lost line of four is ~0.25, two swapped lines ~0.5,
RGB/BGR or reading-order mistakes far more.
"""

from __future__ import annotations

import hashlib
import io
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from tessera import synthetic
from tessera.config import Settings
from workers.engines.base import TASK_CHARTS, TASK_OCR, PageInput, PageResult
from workers.engines.digest import DigestEngine, expected_text, split_run
from workers.engines.rapidocr_engine import CHARTS_WARNING, RapidOcrEngine
from workers.engines.registry import create_engine

MAX_CER = 0.05
ENGLISH = [
    "Invoice 48213 was paid on 12 March 2024.",
    "The total came to $1,245.90, tax included.",
    "Please keep this receipt for your records.",
    "Questions? Call 0161 496 0732 any weekday.",
]
CHINESE = [
    "清晨的江南小镇总是被一层薄雾笼罩。",
    "河边的柳树垂下细长的枝条，白鹭掠过水面。",
    "镇上保存着三十六座古桥和一百多处老宅。",
]


def noise_image(seed: int, size: tuple[int, int] = (64, 48)) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def test_digest_text_is_recomputable_from_the_stored_page() -> None:
    pages = [noise_image(1), noise_image(2).convert("L")]
    results = DigestEngine().process([PageInput(image=p) for p in pages])
    for page, result in zip(pages, results):
        stored = io.BytesIO()
        page.save(stored, "PNG")
        reloaded = Image.open(io.BytesIO(stored.getvalue())).convert("RGB")
        digest = hashlib.sha256(reloaded.tobytes()).hexdigest()
        assert result.text == f"digest:{digest} size:64x48"
        assert result.engine == "digest" and result.charts == [] and result.tiles is None
    assert results[0].text != results[1].text


def test_digest_nonce_tells_two_runs_on_the_same_page_apart() -> None:
    page = PageInput(image=noise_image(4))
    first, second = (DigestEngine(nonce=True).process([page])[0].text for _ in range(2))
    assert split_run(first)[0] == split_run(second)[0] == expected_text(page.image)
    assert split_run(first)[1] != split_run(second)[1] and len(split_run(first)[1]) == 16
    assert split_run(DigestEngine().process([page])[0].text) == (expected_text(page.image), None)


def test_digest_delay_and_charts_warning() -> None:
    [result] = DigestEngine(delay_s=0.05).process(
        [PageInput(noise_image(3), tasks=(TASK_OCR, TASK_CHARTS))]
    )
    assert result.timings["ocr"] >= 0.05
    assert result.warnings == [CHARTS_WARNING]


@pytest.fixture(scope="module")
def rapidocr() -> RapidOcrEngine:
    return RapidOcrEngine(threads=2)


@pytest.fixture(scope="module")
def batch(rapidocr: RapidOcrEngine) -> list[PageResult]:
    # min side >= 736 px: rapidocr's detector scales a shorter page up to 736 (no time saved).
    english = synthetic.render_text_page(ENGLISH, size=(1000, 760), margin=60)
    chinese = synthetic.render_text_page(
        CHINESE, size=(1000, 760), margin=60, font_size=40, lang="zh"
    )
    return rapidocr.process([PageInput(english), PageInput(chinese.convert("RGB"))])


def test_rapidocr_reads_english(batch: list[PageResult]) -> None:
    text = batch[0].text
    assert synthetic.char_error_rate(text, "\n".join(ENGLISH)) < MAX_CER, text
    assert len(text.splitlines()) == len(ENGLISH)


def test_rapidocr_lines_make_the_text_and_sit_on_the_page(batch: list[PageResult]) -> None:
    result = batch[0]
    assert "\n".join(line["text"] for line in result.lines) == result.text
    tops = [line["bbox"][1] for line in result.lines]
    assert tops == sorted(tops)  # reading order, top down
    for line in result.lines:
        x0, y0, x1, y1 = line["bbox"]
        assert 0 <= x0 < x1 <= 1000 and 0 <= y0 < y1 <= 760 and 0.5 <= line["confidence"] <= 1
    # render_text_page draws line i at y = 60 + i * round(32 * 1.6): each box holds its line
    assert [round((y0 - 60) / 51) for _, y0, _, _ in (line["bbox"] for line in result.lines)] == [0, 1, 2, 3]
    assert result.recognition == {"width": 1000, "height": 760, "scale": 1.0, "strips": 1}


def test_rapidocr_reads_a_tall_page_at_its_own_resolution(rapidocr: RapidOcrEngine) -> None:
    lines = [f"Row {n:02d} balance {n * 13.25:.2f}" for n in range(1, 61)]
    page = synthetic.render_text_page(lines, size=(1000, 6000), font_size=26, margin=60, spacing=3.6)
    [result] = rapidocr.process([PageInput(page)])
    assert result.recognition["strips"] > 1 and result.recognition["scale"] == 1.0
    assert result.text.splitlines() == lines  # every digit, every line once, in order


def test_rapidocr_reads_chinese(batch: list[PageResult]) -> None:
    text = batch[1].text
    assert synthetic.char_error_rate(text, "\n".join(CHINESE)) < MAX_CER, text
    assert len(text.splitlines()) == len(CHINESE)


def test_rapidocr_batch_comes_back_in_order(batch: list[PageResult]) -> None:
    assert "Invoice" in batch[0].text and "江南" in batch[1].text
    for result in batch:
        assert result.engine == "rapidocr" and result.tiles is None and result.charts == []
        assert result.warnings == [] and result.timings["ocr"] > 0


def test_rapidocr_charts_need_internvl(rapidocr: RapidOcrEngine) -> None:
    page = PageInput(Image.new("RGB", (736, 736), "white"), tasks=(TASK_OCR, TASK_CHARTS))
    [result] = rapidocr.process([page])
    assert result.text == "" and result.charts == []
    assert result.warnings == [CHARTS_WARNING]


def test_rapidocr_unreadable_page_is_a_warning_not_a_crash(rapidocr: RapidOcrEngine) -> None:
    [result] = rapidocr.process([PageInput(Image.new("RGB", (20, 8000), "white"))])
    assert result.text == "" and result.warnings and "could not read" in result.warnings[0]


def test_registry_builds_engines_lazily() -> None:
    engine = create_engine(Settings(engine="rapidocr"))
    assert isinstance(engine, RapidOcrEngine) and engine._ocr is None  # no model loaded yet
    digest = create_engine(Settings(engine="digest"))
    assert isinstance(digest, DigestEngine) and digest.delay_s == 0.0
    slow = create_engine(Settings(engine="digest", digest_delay_s=0.25, digest_busy_s=0.1, digest_poison=True,
                                  digest_nonce=True))
    assert isinstance(slow, DigestEngine)
    assert (slow.delay_s, slow.busy_s, slow.poison, slow.nonce) == (0.25, 0.1, True, True)
    with pytest.raises(ValueError, match="unknown engine"):
        create_engine(SimpleNamespace(engine="tesseract"))
