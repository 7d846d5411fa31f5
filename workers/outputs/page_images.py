"""Each stored page image encoded for the searchable PDF, chosen by what the page holds:

| the page | encoding in the PDF | lossless |
|---|---|---|
| two levels only, black and white (a bilevel scan) | CCITT Group 4 (1 bit a pixel) | yes |
| grey (every pixel R = G = B) | PNG, 8-bit grey (Flate) | yes |
| at most 256 colours (charts, forms, drawn pages) | PNG with a palette (Flate) | yes |
| anything else (photographs, colour scans) | JPEG, quality `jpeg_quality` | no |

Stored page images are 24-bit RGB PNGs at compression level 1 (chosen for the engines' speed,
workers/render.py), so every lossless choice here is smaller than the stored page, and JPEG is
kept for continuous tone, where lossless would be several times the size. img2pdf embeds each
encoding as it is (no second compression: JPEG as DCTDecode, PNG data as FlateDecode, Group 4 as
CCITTFaxDecode).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

DEFAULT_JPEG_QUALITY = 85
PNG_LEVEL = 6  # zlib's default: within 2% of level 9 on text pages, 2.5x faster


@dataclass(frozen=True)
class EncodedImage:
    """`encoding`: "ccitt_g4", "png_grey", "png_palette" or "jpeg"."""

    data: bytes
    encoding: str

    @property
    def lossless(self) -> bool:
        return self.encoding != "jpeg"


def encode_for_pdf(image: Image.Image, jpeg_quality: int = DEFAULT_JPEG_QUALITY) -> EncodedImage:
    rgb = image.convert("RGB")
    pixels = np.asarray(rgb)
    if (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all():
        grey = pixels[..., 0]
        if np.isin(grey, (0, 255)).all():
            return EncodedImage(_group4(Image.fromarray(grey).convert("1")), "ccitt_g4")
        return EncodedImage(_png(Image.fromarray(grey, "L")), "png_grey")
    palette = _exact_palette(rgb, pixels)
    if palette is not None:
        return EncodedImage(_png(palette), "png_palette")
    buffer = io.BytesIO()
    rgb.save(buffer, format="JPEG", quality=jpeg_quality)
    return EncodedImage(buffer.getvalue(), "jpeg")


def _exact_palette(rgb: Image.Image, pixels: np.ndarray) -> Image.Image | None:
    """The image as a palette image when it has at most 256 colours and the palette holds them
    exactly (checked, not assumed); None otherwise."""
    if rgb.getcolors(256) is None:
        return None
    indexed = rgb.quantize(colors=256, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE)
    if not np.array_equal(np.asarray(indexed.convert("RGB")), pixels):
        return None
    return indexed


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_LEVEL)
    return buffer.getvalue()


def _group4(image: Image.Image) -> bytes:
    """A one-strip Group 4 TIFF, which img2pdf embeds as it is (CCITTFaxDecode)."""
    buffer = io.BytesIO()
    image.save(buffer, format="TIFF", compression="group4", tiffinfo={278: image.height})
    return buffer.getvalue()
