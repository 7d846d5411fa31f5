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

Each font is used as a copy without its OpenType layout tables (GSUB, GPOS, GDEF, ...), made once
per machine (`layout_free_copy`). fpdf2 parses the font file again for every document and drops
those tables from the subset it embeds anyway, but fontTools' subsetter decompiles them first:
0.56-0.58x the text layer's time for a one-line Latin page, 0.71x for a dense one, 0.95x for a
Chinese one, where parsing WenQuanYi's 49,531 glyphs is the cost (bench/text_layer_fonts.py).
Invisible text is never shaped or drawn, so nothing in the file changes but its size and build
time.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from functools import lru_cache
from pathlib import Path

import ocrmypdf
import structlog
from fontTools.ttLib import TTFont, TTLibError
from ocrmypdf.font import FontManager, MultiFontManager

log = structlog.get_logger(__name__)
OCRMYPDF_FONTS = Path(ocrmypdf.__file__).parent / "data"
LATIN, CJK, GLYPHLESS = "NotoSans-Regular", "CJK", "Occulta"  # the renderer asks for NotoSans by name
# Tables only text shaping and layout read (fpdf2 drops them from every subset it embeds) and
# tables fpdf2 drops besides; what stays (cmap, hmtx, glyf, name, OS/2, ...) is all it embeds.
LAYOUT_TABLES = ("GSUB", "GPOS", "GDEF", "BASE", "JSTF", "MATH", "kern", "morx", "FFTM", "DSIG",
                 "hdmx", "meta")
FONT_CACHE = Path(tempfile.gettempdir()) / f"tessera-text-layer-fonts-{os.getuid()}"


def layout_free_copy(source: Path, font_number: int = 0) -> Path:
    """`source` (face `font_number` of a collection) without LAYOUT_TABLES, as a .ttf named like
    the source (the renderer names the font family after the file). Written once, atomically, to
    a folder keyed by the source's path, size and mtime, shared by a machine's workers.

    Raises OSError when the source cannot be read or the copy cannot be written, TTLibError
    when the source is not a font fontTools can read."""
    stat = source.stat()
    key = hashlib.sha256(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{font_number}".encode())
    target = FONT_CACHE / key.hexdigest()[:16] / f"{source.stem}.ttf"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    font = TTFont(source, fontNumber=font_number, recalcTimestamp=False)
    for tag in LAYOUT_TABLES:
        if tag in font:
            del font[tag]
    partial = target.with_name(f".{target.name}.{os.getpid()}")
    font.save(partial)
    os.replace(partial, target)
    return target


def _font_file(source: Path) -> Path:
    """The layout-free copy of `source`; `source` itself when no copy can be written (slower
    PDF builds, same files)."""
    try:
        return layout_free_copy(source)
    except (OSError, TTLibError) as exc:
        log.warning("pdf.font_copy_failed", path=str(source), error=repr(exc)[:200])
        return source


class TextLayerFonts:
    """OCRmyPDF's FontProvider (and GlyphSearchingFontProvider) over a fixed list of fonts,
    instead of its default search of the machine's fonts: the same document gets the same PDF
    on every worker."""

    def __init__(self, cjk_font: Path | None):
        self._fonts = {LATIN: FontManager(_font_file(OCRMYPDF_FONTS / "NotoSans-Regular.ttf"))}
        if cjk_font is not None and cjk_font.is_file():
            self._fonts[CJK] = FontManager(_font_file(cjk_font))
        elif cjk_font is not None:
            log.warning("pdf.cjk_font_missing", path=str(cjk_font),
                        effect="CJK text is carried by the glyphless font")
        self._fonts[GLYPHLESS] = FontManager(_font_file(OCRMYPDF_FONTS / "Occulta.ttf"))

    def files_present(self) -> bool:
        """Whether every font file is still there: fpdf2 opens them again for each document, and
        a temp-folder cleaner may have removed the copies of a long-running worker."""
        return all(font.font_path.is_file() for font in self._fonts.values())

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


def text_layer_fonts(cjk_font: Path | None) -> MultiFontManager:
    """One font manager per process and font path (loading the CJK font, 5 MB, is slow), made
    again if its font files have gone."""
    provider, fonts = _text_layer_fonts(cjk_font)
    if not provider.files_present():
        _text_layer_fonts.cache_clear()
        provider, fonts = _text_layer_fonts(cjk_font)
    return fonts


@lru_cache(maxsize=4)
def _text_layer_fonts(cjk_font: Path | None) -> tuple[TextLayerFonts, MultiFontManager]:
    provider = TextLayerFonts(cjk_font)
    return provider, MultiFontManager(font_provider=provider)
