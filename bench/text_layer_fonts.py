"""The searchable PDF's text layer per document: fonts as shipped against the layout-free copies
Tessera embeds from (workers/outputs/fonts.py), same pages, same process.

    .venv/bin/python bench/text_layer_fonts.py [--runs 10]

Three one-page documents: one line of Latin text (what a digest or a short scan gives), a dense
Latin page (40 lines) and a dense Chinese page (40 lines, the CJK font).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ocrmypdf.font import MultiFontManager  # noqa: E402

from tessera.config import Settings  # noqa: E402
from workers.outputs import fonts as text_fonts  # noqa: E402
from workers.outputs.page_size import physical_size  # noqa: E402
from workers.outputs.pages import OutputPage  # noqa: E402
from workers.outputs.text_layer import text_layer_pdf  # noqa: E402


def page(texts: list[str]) -> OutputPage:
    lines = [{"text": text, "bbox": [100, 50 + 40 * i, 1500, 80 + 40 * i]} for i, text in enumerate(texts)]
    return OutputPage(1, 1700, 2200, "k", {}, done=True, text="\n".join(texts), lines=lines, positioned=True)


def shipped_fonts(cjk_font: Path | None) -> MultiFontManager:
    """The same provider over the font files as shipped (no layout-free copies)."""
    made_from = text_fonts._font_file
    text_fonts._font_file = lambda source: source
    try:
        return MultiFontManager(font_provider=text_fonts.TextLayerFonts(cjk_font))
    finally:
        text_fonts._font_file = made_from


def ms_per_document(document: OutputPage, fonts: MultiFontManager, runs: int) -> float:
    size = physical_size(document.width, document.height, {}, 200)
    text_layer_pdf([(document, size)], fonts)  # warm
    started = time.perf_counter()
    for _ in range(runs):
        text_layer_pdf([(document, size)], fonts)
    return 1000 * (time.perf_counter() - started) / runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    cjk_font = Settings().pdf_cjk_font
    documents = {
        "one line, Latin": page(["digest 3f2a9c0145be"]),
        "40 lines, Latin": page([f"Line {i}: the lighthouse keepers kept careful logs, 12.5%" for i in range(40)]),
        "40 lines, Chinese": page([f"第{i}行 中文文本识别测试 ABC 123" for i in range(40)]),
    }
    shipped, copies = shipped_fonts(cjk_font), text_fonts.text_layer_fonts(cjk_font)
    for name, document in documents.items():
        before = ms_per_document(document, shipped, args.runs)
        after = ms_per_document(document, copies, args.runs)
        print(f"{name}: {before:.1f} ms with the fonts as shipped, {after:.1f} ms with the layout-free "
              f"copies ({after / before:.2f}x)")


if __name__ == "__main__":
    main()
