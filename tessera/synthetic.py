"""Synthetic documents whose text is known exactly.

Samples, tests and benchmarks draw their pages here, so an engine's output can be
scored against the text that was really rendered (`char_error_rate`). Everything
is deterministic: the only randomness is seeded.
"""

from __future__ import annotations

import hashlib
import io
import random
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

Lang = Literal["en", "zh"]
Box = tuple[int, int, int, int]

FONT_FILES: dict[str, str] = {
    "en": "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "zh": "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
}
PAGE_SIZE = (1700, 2200)  # US Letter at 200 dpi
MARGIN = 150
_NO_LINE_START = set("，。、；：？！）》」』”’")


@dataclass
class GroundTruth:
    """What a table or chart page holds: its data and its text in reading order.

    For a chart, `columns` is [category axis label, value axis label] and `rows`
    are [category, value] pairs, the shape of a ChartTable; `bbox` is the chart's
    area in page pixels.
    """

    title: str
    columns: list[str]
    rows: list[list[str]]
    lines: list[str]
    bbox: list[float]


@lru_cache(maxsize=32)
def font(lang: Lang, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(FONT_FILES[lang], size)


def wrap_text(
    text: str, lang: Lang = "en", font_size: int = 32, width: int = PAGE_SIZE[0] - 2 * MARGIN
) -> list[str]:
    """Greedy wrap to `width` pixels: by words for English, by characters for Chinese."""
    face = font(lang, font_size)
    tokens = text.split() if lang == "en" else list(text.replace(" ", ""))
    sep = " " if lang == "en" else ""
    lines: list[str] = []
    for token in tokens:
        candidate = f"{lines[-1]}{sep}{token}" if lines else token
        hangs = lang == "zh" and token in _NO_LINE_START  # CJK punctuation never starts a line
        if lines and (hangs or face.getlength(candidate) <= width):
            lines[-1] = candidate
        else:
            lines.append(token)
    return lines


def render_text_page(
    lines: list[str],
    size: tuple[int, int] = PAGE_SIZE,
    font_size: int = 32,
    lang: Lang = "en",
    margin: int = MARGIN,
    spacing: float = 1.6,
) -> Image.Image:
    """A white grayscale page with `lines` in black, one per rendered line.

    Raises ValueError if a line would not fit, so the text stays the ground truth.
    """
    page = Image.new("L", size, 255)
    draw = ImageDraw.Draw(page)
    face = font(lang, font_size)
    step = round(font_size * spacing)
    if margin + step * len(lines) > size[1] - margin // 2:
        raise ValueError(f"{len(lines)} lines do not fit a page {size[1]} px high")
    for i, line in enumerate(lines):
        if margin + face.getlength(line) > size[0] - margin // 2:
            raise ValueError(f"line {i + 1} is too wide for the page: {line!r}")
        draw.text((margin, margin + i * step), line, fill=0, font=face)
    return page


def make_pdf(pages: list[Image.Image], dpi: int = 200) -> bytes:
    """A raster PDF whose pages render back at `dpi` to the images' pixel sizes."""
    images = [p if p.mode in ("L", "RGB") else p.convert("RGB") for p in pages]
    buf = io.BytesIO()
    images[0].save(
        buf,
        "PDF",
        save_all=True,
        append_images=images[1:],
        resolution=float(dpi),
        creationDate=None,
        modDate=None,
    )  # no timestamps: same pages, same bytes
    return buf.getvalue()


def make_encrypted_pdf(pdf: bytes, user_password: str = "tessera") -> bytes:
    """`pdf` encrypted (RC4-128) with a user password: it cannot be opened without it.

    RC4 and a file identifier derived from `pdf` keep the bytes reproducible
    (AES would draw a random IV per stream).
    """
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import ArrayObject, ByteStringObject

    file_id = ByteStringObject(hashlib.sha256(pdf).digest()[:16])

    class _Writer(PdfWriter):
        def generate_file_identifiers(self) -> None:
            self._ID = ArrayObject((file_id, file_id))

    writer = _Writer(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.encrypt(
        user_password=user_password, owner_password=user_password + "-owner", algorithm="RC4-128"
    )
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def make_truncated_pdf(pdf: bytes, keep: float = 0.5) -> bytes:
    """The first `keep` fraction of `pdf`, as left by an interrupted upload."""
    return pdf[: int(len(pdf) * keep)]


def _reading_lines(items: list[tuple[str, Box]]) -> list[str]:
    """Drawn text items grouped into lines (vertical overlap), top-down, left-right."""
    lines: list[list[tuple[str, Box]]] = []
    for text, box in sorted(items, key=lambda item: (item[1][1], item[1][0])):
        if lines and box[1] < max(b[3] for _, b in lines[-1]) - (box[3] - box[1]) / 2:
            lines[-1].append((text, box))
        else:
            lines.append([(text, box)])
    return [" ".join(t for t, _ in sorted(line, key=lambda it: it[1][0])) for line in lines]


def _draw(
    draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, size: int, anchor: str = "la"
) -> tuple[str, Box]:
    face = font("en", size)
    draw.text(xy, text, fill=0, font=face, anchor=anchor)
    return text, tuple(int(v) for v in draw.textbbox(xy, text, font=face, anchor=anchor))


TABLE_REGIONS = ["North", "South", "East", "West", "Central", "Harbour", "Valley", "Summit"]


def render_table_page(
    seed: int = 0, n_rows: int = 8, size: tuple[int, int] = (1400, 900), font_size: int = 32
) -> tuple[Image.Image, GroundTruth]:
    """A ruled table of words and numbers under a title."""
    rng = random.Random(seed)
    columns = ["Region", "Quarter", "Units", "Revenue", "Growth"]
    rows = [
        [
            rng.choice(TABLE_REGIONS),
            f"Q{rng.randint(1, 4)} {rng.randint(2019, 2024)}",
            str(rng.randint(100, 9999)),
            f"{rng.uniform(10, 999):.2f}",
            f"{rng.uniform(-20, 40):+.1f}%",
        ]
        for _ in range(n_rows)
    ]
    title = f"Quarterly sales by region, table {seed + 1}"
    face = font("en", font_size)
    widths = [max(face.getlength(r[c]) for r in [columns, *rows]) for c in range(len(columns))]
    xs = [80 + sum(widths[:c]) + 70 * c for c in range(len(columns))]
    step = round(font_size * 2)
    page = Image.new("L", size, 255)
    draw = ImageDraw.Draw(page)
    items = [_draw(draw, (80, 60), title, font_size + 6)]
    for r, row in enumerate([columns, *rows]):
        y = 160 + r * step
        items += [_draw(draw, (xs[c], y), cell, font_size) for c, cell in enumerate(row)]
        draw.line(
            (70, y + step - 12, xs[-1] + widths[-1] + 10, y + step - 12),
            fill=0,
            width=2 if r == 0 else 1,
        )
    bbox = [70.0, 150.0, xs[-1] + widths[-1] + 10.0, 160.0 + (n_rows + 1) * step]
    return page, GroundTruth(title, columns, rows, _reading_lines(items), bbox)


BAR_CITIES = ["Lisbon", "Oslo", "Nairobi", "Lima", "Osaka", "Quebec", "Perth", "Dakar"]


def render_bar_chart_page(
    seed: int = 0, n_bars: int = 6, size: tuple[int, int] = (1600, 1000)
) -> tuple[Image.Image, GroundTruth]:
    """A horizontal bar chart: title, axis labels, one value printed at each bar's end."""
    rng = random.Random(seed)
    cats = rng.sample(BAR_CITIES, n_bars)
    values = [round(rng.uniform(5, 95), 1) for _ in cats]
    title, cat_label, value_label = "Annual revenue by city", "City", "Revenue (million USD)"
    w, h = size
    x0, x1, y0, y1 = 300, w - 220, 190, h - 190
    band = (y1 - y0) / n_bars
    page = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(page)
    items = [
        _draw(draw, (w / 2, 40), title, 44, "ma"),
        _draw(draw, (x0 - 20, 120), cat_label, 30, "ra"),
    ]
    for i, (cat, value) in enumerate(zip(cats, values)):
        cy, end = y0 + band * (i + 0.5), x0 + (x1 - x0) * value / 100
        draw.rectangle((x0, cy - band * 0.3, end, cy + band * 0.3), fill=(52, 101, 164))
        items += [
            _draw(draw, (x0 - 20, cy), cat, 30, "rm"),
            _draw(draw, (end + 15, cy), f"{value}", 30, "lm"),
        ]
    draw.line((x0, y0 - 10, x0, y1, x1, y1), fill=0, width=3)
    items.append(_draw(draw, ((x0 + x1) / 2, y1 + 60), value_label, 32, "ma"))
    rows = [[c, f"{v}"] for c, v in zip(cats, values)]
    return page, GroundTruth(
        title, [cat_label, value_label], rows, _reading_lines(items), [0.0, 0.0, w, h]
    )


def photo_scan(page: Image.Image, seed: int = 0, angle: float = 1.5) -> Image.Image:
    """`page` as a phone photo of paper: tinted, slightly rotated on a desk, shaded, noisy."""
    rng = np.random.default_rng(seed)
    paper = np.asarray(page.convert("RGB"), dtype=np.float32) / 255.0
    ink = np.array([40, 38, 45], dtype=np.float32)
    tint = np.array([246, 238, 220], dtype=np.float32)
    img = Image.fromarray((ink + paper * (tint - ink)).astype(np.uint8))
    img = img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(92, 78, 64))
    arr = np.asarray(img, dtype=np.float32)
    shade = np.linspace(1.0, 0.86, arr.shape[1], dtype=np.float32)[None, :, None]
    arr = arr * shade + rng.normal(0.0, 6.0, arr.shape).astype(np.float32)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return img.filter(ImageFilter.GaussianBlur(0.7))


def levenshtein(a: str, b: str) -> int:
    """Edit distance between two strings (one numpy row per character of `a`)."""
    if not a or not b:
        return len(a) + len(b)
    cols = np.arange(len(b) + 1)
    codes = np.array([ord(c) for c in b])
    row = cols.copy()
    for i, ch in enumerate(a, 1):
        cur = np.empty_like(row)
        cur[0] = i
        cur[1:] = np.minimum(row[:-1] + (codes != ord(ch)), row[1:] + 1)
        row = np.minimum.accumulate(cur - cols) + cols  # insertions, left to right
    return int(row[-1])


def char_error_rate(predicted: str, truth: str) -> float:
    """Levenshtein distance / truth length, whitespace removed from both sides."""
    pred, ref = "".join(predicted.split()), "".join(truth.split())
    return levenshtein(pred, ref) / max(len(ref), 1)


def label_png(text: str, size: tuple[int, int] = (200, 80)) -> bytes:
    """A small PNG with one line of text (Pillow's built-in font): a distinct one-page
    document for pipeline tests and benchmarks, where only its pixels matter."""
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).text((10, size[1] // 2 - 8), text, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()
