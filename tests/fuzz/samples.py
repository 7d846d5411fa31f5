"""Small valid documents and archives for the fuzz tests."""

from __future__ import annotations

import io
import tarfile
import zipfile

from tessera.synthetic import make_pdf, render_text_page


def small_pdf(pages: int, tag: str) -> bytes:
    """A raster PDF of 400x300 px pages; `tag` (a few characters) makes the bytes unique."""
    return make_pdf([render_text_page([f"p{n} {tag}"], size=(400, 300), font_size=24)
                     for n in range(1, pages + 1)])


def image(fmt: str, tag: str) -> bytes:
    """A 400x300 px page in a Pillow format (PNG, JPEG, TIFF)."""
    buffer = io.BytesIO()
    render_text_page([tag], size=(400, 300), font_size=24).save(buffer, format=fmt)
    return buffer.getvalue()


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def tar_gz_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
