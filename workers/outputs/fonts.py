"""The fonts that carry the searchable PDF's invisible text (for OCRmyPDF's text layer renderer).

The text is drawn in render mode 3 (invisible), so a font's glyphs are never seen; what matters
is that every character maps back to itself (the ToUnicode map, which fpdf2 writes for the
subset it embeds) and that advance widths give highlight boxes their place. A word goes to the
first of these fonts that has a glyph for each of its characters:

1. Noto Sans (shipped inside OCRmyPDF): Latin, Greek, Cyrillic.
2. The CJK font (`TESSERA_PDF_CJK_FONT`, default WenQuanYi Micro Hei from Debian's
   fonts-wqy-microhei, which scripts/setup.sh and the images install): Chinese, Japanese kana,
   Korean hangul, with Latin letters and digits, so a mixed line stays in one font.
3. Occulta (shipped inside OCRmyPDF): glyphless, every character of the Basic Multilingual
   Plane; anything the others lack still extracts and searches, it only selects as blank boxes.

Fonts are subset: a document embeds only the glyphs it uses (about 110 bytes a CJK character).
A missing CJK font file is not an error: CJK text then falls back to Occulta.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import ocrmypdf
import structlog
from ocrmypdf.font import FontManager, MultiFontManager

log = structlog.get_logger(__name__)
OCRMYPDF_FONTS = Path(ocrmypdf.__file__).parent / "data"
LATIN, CJK, GLYPHLESS = "NotoSans-Regular", "CJK", "Occulta"  # the renderer asks for NotoSans by name


class TextLayerFonts:
    """OCRmyPDF's FontProvider (and GlyphSearchingFontProvider) over a fixed list of fonts,
    instead of its default search of the machine's fonts: the same document gets the same PDF
    on every worker."""

    def __init__(self, cjk_font: Path | None):
        self._fonts = {LATIN: FontManager(OCRMYPDF_FONTS / "NotoSans-Regular.ttf")}
        if cjk_font is not None and cjk_font.is_file():
            self._fonts[CJK] = FontManager(cjk_font)
        elif cjk_font is not None:
            log.warning("pdf.cjk_font_missing", path=str(cjk_font),
                        effect="CJK text is carried by the glyphless font")
        self._fonts[GLYPHLESS] = FontManager(OCRMYPDF_FONTS / "Occulta.ttf")

    def get_font(self, font_name: str) -> FontManager | None:
        return self._fonts.get(font_name)

    def get_available_fonts(self) -> list[str]:
        return list(self._fonts)

    def get_fallback_font(self) -> FontManager:
        return self._fonts[GLYPHLESS]

    def find_font_with_glyphs(self, text: str) -> tuple[str, FontManager] | None:
        for name, font in self._fonts.items():
            if name != GLYPHLESS and all(font.has_glyph(ord(char)) for char in text):
                return name, font
        return None


@lru_cache(maxsize=4)
def text_layer_fonts(cjk_font: Path | None) -> MultiFontManager:
    """One font manager per process and font path: loading the CJK font (5 MB) is the slow part."""
    return MultiFontManager(font_provider=TextLayerFonts(cjk_font))
