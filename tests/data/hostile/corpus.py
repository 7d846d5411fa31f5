"""Malformed and hostile inputs, generated deterministically in code (no binary files in git).

`python -m tests.data.hostile.corpus OUT_DIR` writes every single-file input to OUT_DIR for a
look with other tools. Builders are cached: the suite asks for each more than once.

Hand-written PDFs come from `pdf_file`, which lays out numbered objects and a correct xref
table (or a deliberately broken one), so odd structures cost bytes, not rendering.
"""

from __future__ import annotations

import gzip
import io
import struct
import sys
import tarfile
import zipfile
import zlib
from functools import lru_cache
from pathlib import Path

from PIL import Image

from tessera.synthetic import make_encrypted_pdf, make_pdf, make_truncated_pdf, render_text_page

# ---------------------------------------------------------------- PDFs by hand


def pdf_file(objects: list[bytes], *, root: int = 1, broken_xref: bool = False, trailer_extra: bytes = b"") -> bytes:
    """Objects 1..n (bodies without `n 0 obj`), an xref table and a trailer. `broken_xref` makes
    every offset wrong (a reader must rebuild the table by scanning)."""
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % (offset + 7 if broken_xref else offset)
    out += b"trailer\n<< /Size %d /Root %d 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, root, trailer_extra, xref + (13 if broken_xref else 0))
    return bytes(out)


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(data), extra) + data + b"\nendstream"


HELLO = b"BT /F1 24 Tf 20 100 Td (Tessera) Tj ET"
FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def one_page_pdf(media_box: bytes = b"[0 0 200 200]", catalog_extra: bytes = b"", broken_xref: bool = False) -> bytes:
    return pdf_file([
        b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b">>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox " + media_box
        + b" /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        _stream(HELLO),
        FONT,
    ], broken_xref=broken_xref)


@lru_cache
def many_page_pdf(pages: int = 10_000) -> bytes:
    """`pages` tiny page objects sharing one content stream: about 80 bytes a page."""
    first = 4
    kids = b" ".join(b"%d 0 R" % n for n in range(first, first + pages))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [" + kids + b"] /Count %d /MediaBox [0 0 72 72] >>" % pages,
               _stream(b"0 0 m 72 72 l S")]
    objects += [b"<< /Type /Page /Parent 2 0 R /Contents 3 0 R >>"] * pages
    return pdf_file(objects)


def zero_page_pdf() -> bytes:
    return pdf_file([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"])


def page_tree_loop_pdf() -> bytes:
    """The page tree points back at itself: a naive reader recurses forever."""
    return pdf_file([b"<< /Type /Catalog /Pages 2 0 R >>",
                     b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
                     b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>"])


def javascript_pdf() -> bytes:
    return one_page_pdf(catalog_extra=b"/OpenAction << /S /JavaScript /JS (app.alert\\('hi'\\);) >> ")


def image_bomb_pdf() -> bytes:
    """A normal page drawing an image XObject that claims 30000 x 30000 pixels (0.9 GP) with
    a few bytes of data: the page's size gives nothing away."""
    return pdf_file([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R "
        b"/Resources << /XObject << /Im1 5 0 R >> >> >>",
        _stream(b"q 200 0 0 200 0 0 cm /Im1 Do Q"),
        _stream(zlib.compress(b"\x00" * 4096), b"/Type /XObject /Subtype /Image /Width 30000 /Height 30000 "
                b"/ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /FlateDecode "),
    ])


@lru_cache
def text_pdf(words: str = "Tessera hostile corpus good document") -> bytes:
    return make_pdf([render_text_page([words], size=(900, 300), margin=60)])


# ---------------------------------------------------------------- images


def _save(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@lru_cache
def png_bomb(side: int = 40_000) -> bytes:
    """A 1-bit side x side PNG of zeros: 1.6 gigapixels in about 200 KB."""
    row = b"\x00" * (1 + (side + 7) // 8)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def jpeg_huge_header() -> bytes:
    """A real small JPEG whose frame header claims 65000 x 65000 pixels."""
    data = bytearray(_save(Image.new("RGB", (16, 16), "white"), "JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", 65000, 65000)
    return bytes(data)


def multipage_tiff() -> bytes:
    pages = [render_text_page([f"tiff page {n}"], size=(400, 150), margin=40) for n in (1, 2, 3)]
    return _save(pages[0], "TIFF", save_all=True, append_images=pages[1:], compression="tiff_lzw")


def cmyk_jpeg() -> bytes:
    return _save(Image.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG", quality=100)  # pure red


def png_16bit() -> bytes:
    image = Image.new("I;16", (64, 48))
    image.putdata([(x * 1024) & 0xFFFF for x in range(64 * 48)])
    return _save(image, "PNG")


def animated_gif() -> bytes:
    frames = [Image.new("P", (32, 32), color) for color in (1, 2, 3)]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def truncated_jpeg() -> bytes:
    full = _save(render_text_page(["cut short"], size=(400, 200), margin=40).convert("RGB"), "JPEG")
    return full[: len(full) // 2]


def tiny_png() -> bytes:
    return _save(Image.new("RGB", (1, 1), "black"), "PNG")


def long_strip_png() -> bytes:
    return _save(Image.new("L", (100_000, 1), 0), "PNG")


def webp_image() -> bytes:
    return _save(Image.new("RGB", (32, 32), "blue"), "WEBP")


# ---------------------------------------------------------------- archives


def zip_of(entries: list[tuple[str, bytes]], *, symlinks: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            if name in symlinks:
                info.create_system = 3
                info.external_attr = (0o120777 << 16)
            archive.writestr(info, data)
    return buffer.getvalue()


def tar_of(entries: list[tarfile.TarInfo | tuple[str, bytes]], gz: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                archive.addfile(entry)
                continue
            name, data = entry
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            archive.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    return gzip.compress(raw, mtime=0) if gz else raw


def tar_link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mtime = kind, target, 1_700_000_000
    return info


def tar_device(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor, info.mtime = tarfile.CHRTYPE, 1, 3, 1_700_000_000
    return info


@lru_cache
def zip_bomb(size: int) -> bytes:
    """One entry of `size` zero bytes: its header honestly declares the size."""
    return zip_of([("zeros.pdf", b"\x00" * size)])


@lru_cache
def zip_bomb_lying(size: int, claimed: int = 1000) -> bytes:
    """One entry of `size` zero bytes whose headers claim `claimed` bytes."""
    data = bytearray(zip_of([("small.pdf", b"%PDF-" + b"\x00" * (size - 5))]))
    for signature, field in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.index(signature)
        data[at + field:at + field + 4] = struct.pack("<I", claimed)
    return bytes(data)


@lru_cache
def tar_gz_bomb(size: int) -> bytes:
    return tar_of([("zeros.pdf", b"\x00" * size)], gz=True)


def nested_zips(document: bytes, depth: int = 3) -> bytes:
    """doc.pdf inside `depth` zips, plus a document at every level."""
    inner = zip_of([("deepest.pdf", document)])
    for level in range(depth - 1, 0, -1):
        inner = zip_of([(f"level{level}.pdf", document), (f"inner{level}.zip", inner)])
    return inner


def polyglot_html_pdf(pdf: bytes) -> bytes:
    """HTML with a script, then a PDF: browsers see a page, PDF readers a document."""
    return b"<html><body><script>alert('polyglot')</script></body></html>\n" + pdf


def pdf_zip_polyglot(pdf: bytes) -> bytes:
    """A PDF with a zip appended: starts as a PDF, ends with a zip central directory."""
    return pdf + zip_of([("payload.txt", b"hidden")])


def encrypted_pdf() -> bytes:
    return make_encrypted_pdf(text_pdf())


def truncated_pdf() -> bytes:
    return make_truncated_pdf(text_pdf(), 0.4)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    singles = {
        "truncated.pdf": truncated_pdf(), "zero-pages.pdf": zero_page_pdf(),
        "10000-pages.pdf": many_page_pdf(), "200-inch.pdf": one_page_pdf(b"[0 0 14400 14400]"),
        "javascript.pdf": javascript_pdf(), "broken-xref.pdf": one_page_pdf(broken_xref=True),
        "page-tree-loop.pdf": page_tree_loop_pdf(), "image-bomb.pdf": image_bomb_pdf(),
        "encrypted.pdf": encrypted_pdf(), "bomb.png": png_bomb(), "huge-header.jpg": jpeg_huge_header(),
        "multipage.tiff": multipage_tiff(), "cmyk.jpg": cmyk_jpeg(), "16bit.png": png_16bit(),
        "animated.gif": animated_gif(), "truncated.jpg": truncated_jpeg(), "1x1.png": tiny_png(),
        "100000x1.png": long_strip_png(), "polyglot.html": polyglot_html_pdf(text_pdf()),
    }
    for name, data in singles.items():
        (out / name).write_bytes(data)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "hostile-corpus"))
