"""More real-world inputs of every kind in ../real-world/ (issue 9): other orientation tags, other
crop boxes, other page-tree shapes, other code pages, other sizes. Each file is made here with
known text, so its right result is known exactly; `expected.json` says it in the same form as the
handed cases (tests/utils/real_world.py runs both folders).

    python tests/data/real_world_more/make_cases.py     # rewrites them

The output is deterministic (no timestamps, fixed seeds), so the committed files equal a rerun.
"""

from __future__ import annotations

import io
import json
import struct
import sys
import tarfile
import zipfile
import zlib
from pathlib import Path

import pikepdf
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))  # the repository root, for `tessera`

from tessera.synthetic import font, make_pdf, render_text_page  # noqa: E402
from tests.data.hostile.corpus import pdf_file  # noqa: E402
EN_A, ZH_A = "Quarterly report for the northern warehouse", "北方仓库季度报告已经完成"
EN_B, ZH_B = "Invoice 4471 was paid on the third of March", "发票已于三月三日全额支付"
EN_C, ZH_C = "Shipping manifest checked by the night shift", "夜班已经核对全部发货清单"
SEND = ("POST /v1/jobs (Authorization: Bearer <key>), multipart/form-data with one part: "
        "Content-Disposition: form-data; name=\"file\"; filename=\"{file}\" and Content-Type: "
        "application/octet-stream, the file's bytes as the body; no options.")


def text_image(lines: list[tuple[str, str]], size: tuple[int, int], font_size: int = 44,
               margin: int = 80, ink: tuple[int, int, int] = (0, 0, 0),
               paper: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """An RGB page with (text, lang) lines, one per line, from the top-left margin; the font shrinks
    until the longest line fits."""
    while font_size > 12 and max(font(lang, font_size).getlength(text) for text, lang in lines) > size[0] - 2 * margin:
        font_size -= 2
    image = Image.new("RGB", size, paper)
    draw = ImageDraw.Draw(image)
    for i, (text, lang) in enumerate(lines):
        draw.text((margin, margin + i * round(font_size * 1.7)), text, fill=ink, font=font(lang, font_size))
    return image


def two_pairs(first: tuple[str, str], second: tuple[str, str] | None = None) -> list[tuple[str, str]]:
    lines = [(first[0], "en"), (first[1], "zh")]
    return lines + ([(second[0], "en"), (second[1], "zh")] if second else [])


def jpeg(image: Image.Image, orientation: int | None = None) -> bytes:
    buffer = io.BytesIO()
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    image.save(buffer, "JPEG", quality=92, exif=exif.tobytes())
    return buffer.getvalue()


def stored_for(image: Image.Image, orientation: int) -> Image.Image:
    """The pixels a camera stores so that `orientation` displays `image` upright (the inverse of
    the EXIF transform for that tag)."""
    inverse = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
               4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
               6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
               8: Image.Transpose.ROTATE_270}
    return image.transpose(inverse[orientation])


# ---------------------------------------------------------------- kind 1: orientation tags


def exif_cases() -> list[dict]:
    cases = []
    for tag, size in ((3, (1400, 900)), (8, (1000, 1400)), (5, (1000, 1300)), (2, (1300, 900))):
        upright = text_image(two_pairs((EN_A, ZH_A)), size)
        name = f"exif_orientation{tag}.jpg"
        (HERE / name).write_bytes(jpeg(stored_for(upright, tag), tag))
        cases.append(_job(name, f"JPEG stored for EXIF Orientation {tag}", 1, {
            "1": f"{'portrait' if size[1] > size[0] else 'landscape'}, {size[0]}x{size[1]} px "
                 "(the image as displayed)"}, {"1": [EN_A, ZH_A]}))
    frames = [text_image(two_pairs((EN_A, ZH_A)), (1000, 1300)),
              stored_for(text_image(two_pairs((EN_B, ZH_B)), (1000, 1300)), 6)]
    tiff = _tiff_with_frame_tags([(frames[0], {}), (frames[1], {274: 6})])
    (HERE / "tiff_frame2_orientation6.tif").write_bytes(tiff)
    cases.append(_job("tiff_frame2_orientation6.tif", "2-frame TIFF; frame 2 stored sideways with "
                      "Orientation 6", 2, {"1": "portrait, 1000x1300 px", "2": "portrait, 1000x1300 px"},
                      {"1": [EN_A, ZH_A], "2": [EN_B, ZH_B]}))
    return cases


def _tiff_with_frame_tags(pages: list[tuple[Image.Image, dict[int, int]]]) -> bytes:
    """A multi-frame TIFF where each frame carries its own extra tags (Pillow's AppendingTiffWriter)."""
    from PIL import TiffImagePlugin

    out = io.BytesIO()
    with TiffImagePlugin.AppendingTiffWriter(out, new=True) as writer:
        for page, tags in pages:
            info = TiffImagePlugin.ImageFileDirectory_v2()
            for tag, value in tags.items():
                info[tag] = value
            page.save(writer, "TIFF", compression="tiff_lzw", tiffinfo=info)
            writer.newFrame()
    return out.getvalue()


# ---------------------------------------------------------------- kind 2: page boxes


def cropbox_cases() -> list[dict]:
    visible = text_image(two_pairs((EN_A, ZH_A)), (1700, 2200), font_size=48, margin=150)
    hidden = text_image([("INTERNAL DRAFT DO NOT PUBLISH", "en"), ("内部草稿请勿对外发布", "zh")],
                        (1700, 2200), font_size=48, margin=150)
    sheet = Image.new("RGB", (3400, 4400), "white")  # 2x2 Letter pages at 200 dpi
    sheet.paste(hidden, (0, 0))
    sheet.paste(visible, (1700, 0))  # top right
    sheet.paste(hidden, (0, 2200))
    sheet.paste(hidden, (1700, 2200))
    quadrant = _with_boxes(make_pdf([sheet]), media=[0, 0, 1224, 1584], crop=[612, 792, 1224, 1584])
    (HERE / "cropbox_top_right_quadrant.pdf").write_bytes(quadrant)
    beyond = _with_boxes(make_pdf([visible]), media=[0, 0, 612, 792], crop=[-100, -100, 712, 892])
    (HERE / "cropbox_beyond_mediabox.pdf").write_bytes(beyond)
    not_shown = {"1": ["INTERNAL DRAFT DO NOT PUBLISH", "内部草稿请勿对外发布"]}
    return [
        _job("cropbox_top_right_quadrant.pdf", "CropBox is the top-right quadrant of a 2x2-page MediaBox",
             1, {"1": "portrait, 1700x2200 px at 200 dpi"}, {"1": [EN_A, ZH_A]}, not_shown),
        _job("cropbox_beyond_mediabox.pdf", "CropBox reaches past the MediaBox: clipped to it",
             1, {"1": "portrait, 1700x2200 px at 200 dpi"}, {"1": [EN_A, ZH_A]}),
    ]


def _with_boxes(pdf: bytes, media: list[float], crop: list[float]) -> bytes:
    with pikepdf.open(io.BytesIO(pdf)) as document:
        page = document.pages[0]
        page.obj.MediaBox = pikepdf.Array(media)
        page.obj.CropBox = pikepdf.Array(crop)
        out = io.BytesIO()
        document.save(out, deterministic_id=True)
    return out.getvalue()


# ---------------------------------------------------------------- kind 3: image frames


def mpo_cases() -> list[dict]:
    primary = text_image(two_pairs((EN_B, ZH_B)), (1000, 1300))
    others = [text_image([("SECOND FRAME GAIN MAP", "en")], (500, 650)),
              text_image([("THIRD FRAME PREVIEW", "en")], (320, 416))]
    buffer = io.BytesIO()
    primary.save(buffer, "MPO", save_all=True, append_images=others, quality=90)
    (HERE / "mpo_three_frames.jpg").write_bytes(buffer.getvalue())
    apng = io.BytesIO()
    primary.save(apng, "PNG", save_all=True, append_images=[others[0].resize((1000, 1300))], duration=500)
    (HERE / "apng_two_frames.png").write_bytes(apng.getvalue())
    return [_job(name, what, 1, {"1": "portrait, 1000x1300 px"}, {"1": [EN_B, ZH_B]},
                 {"1": ["SECOND FRAME GAIN MAP"]})
            for name, what in (("mpo_three_frames.jpg", "MPO JPEG with three images"),
                               ("apng_two_frames.png", "animated PNG with two frames"))]


# ---------------------------------------------------------------- kind 4: large pages


def large_page_cases() -> list[dict]:
    receipt_lines = [f"Item {n:02d} paid {n * 7.35:.2f}" for n in range(1, 41)]
    receipt = _text_pdf(216, 2880, receipt_lines, size=11, step=66)  # 3 x 40 in
    (HERE / "receipt_3x40in.pdf").write_bytes(receipt)
    a4_lines = [f"Drawing note {n:02d} clearance {n * 1.25:.2f} mm" for n in range(1, 23)]
    a4 = _text_pdf(842, 595, a4_lines, size=7, step=24, x=60)  # A4 landscape, small text
    (HERE / "a4_landscape_small_text.pdf").write_bytes(a4)
    return [
        _job("receipt_3x40in.pdf", "a narrow 3 x 40 inch receipt at 200 dpi (600x8000 px)", 1,
             {"1": "portrait, 600x8000 px at 200 dpi"}, {"1": receipt_lines}),
        {**_job("a4_landscape_small_text.pdf", "A4 landscape drawing notes in 7 pt, asked at 300 dpi "
                "(3509x2480 px)", 1, {"1": "landscape, 3509x2480 px at 300 dpi"}, {"1": a4_lines}),
         "options": {"dpi": 300}},
    ]


def _text_pdf(width: float, height: float, lines: list[str], size: float, step: float,
              x: float = 18) -> bytes:
    """A one-page PDF of Helvetica text lines (ASCII), drawn top down: vector text, no raster."""
    ops = [b"BT /F1 %.1f Tf" % size]
    for index, line in enumerate(lines):
        y = height - 36 - index * step
        ops.append(b"1 0 0 1 %.1f %.1f Tm (%s) Tj" % (x, y, line.encode("ascii")))
    ops.append(b"ET")
    content = b"\n".join(ops)
    return pdf_file([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %g %g] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>" % (width, height),
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ])


# ---------------------------------------------------------------- kind 5: scan resolution tags


def scan_tag_cases() -> list[dict]:
    scan = render_text_page([EN_C, "Dock 7 pallets 118 cartons 2290"], size=(1654, 2339),
                            font_size=44, margin=140)  # an A4 page scanned at 200 ppi
    cases = []
    for ppi in (72, 30, 600):
        name = f"scan_tagged_{ppi}dpi.pdf"
        (HERE / name).write_bytes(make_pdf([scan], dpi=ppi))
        cases.append(_job(name, f"1654x2339 scan tagged {ppi} dpi", 1, {"1": "portrait"},
                          {"1": [EN_C, "Dock 7 pallets 118 cartons 2290"]}))
    return cases


# ---------------------------------------------------------------- kind 6: page orientation


def orientation_cases() -> list[dict]:
    pages = [text_image(two_pairs((EN_A, ZH_A), (EN_C, ZH_C)), (1275, 1650), font_size=40),
             text_image(two_pairs((EN_B, ZH_B), (EN_A, ZH_A)), (1275, 1650), font_size=40)]
    sideways = make_pdf([pages[0], pages[1].transpose(Image.Transpose.ROTATE_90)], dpi=150)
    (HERE / "scan_page2_sideways.pdf").write_bytes(sideways)
    photo = text_image(two_pairs((EN_C, ZH_C)), (1100, 1400)).transpose(Image.Transpose.ROTATE_180)
    (HERE / "photo_upside_down_no_exif.jpg").write_bytes(jpeg(photo))
    return [
        _job("scan_page2_sideways.pdf", "scan whose page 2 was fed sideways (no /Rotate)", 2,
             {"1": "portrait, 1700x2200 px at 200 dpi", "2": "portrait, 1700x2200 px at 200 dpi"},
             {"1": [EN_A, ZH_A, EN_C, ZH_C], "2": [EN_B, ZH_B, EN_A, ZH_A]}),
        _job("photo_upside_down_no_exif.jpg", "photo taken upside down, no EXIF tag", 1,
             {"1": "portrait, 1100x1400 px"}, {"1": [EN_C, ZH_C]}),
    ]


# ---------------------------------------------------------------- kind 7: page count


def page_tree_cases() -> list[dict]:
    def page(n: int, total: int) -> bytes:
        return b"BT /F1 36 Tf 72 700 Td (Page %d of %d) Tj ET" % (n, total)

    font_ref = b"/Resources << /Font << /F1 3 0 R >> >>"
    # /Count 4 over two real pages
    lying = pdf_file([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [4 0 R 6 0 R] /Count 4 /MediaBox [0 0 612 792] >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /Page /Parent 2 0 R /Contents 5 0 R " + font_ref + b" >>",
        _content(page(1, 2)),
        b"<< /Type /Page /Parent 2 0 R /Contents 7 0 R " + font_ref + b" >>",
        _content(page(2, 2)),
    ])
    (HERE / "count_says_4_of_2.pdf").write_bytes(lying)
    # a nested tree whose inner node says 1 of its 3 pages; MediaBox and /Rotate inherited
    nested = pdf_file([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [4 0 R 10 0 R] /Count 2 /MediaBox [0 0 612 792] >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /Page /Parent 2 0 R /Contents 5 0 R " + font_ref + b" >>",
        _content(page(1, 4)),
        b"<< /Type /Page /Parent 10 0 R /Contents 7 0 R " + font_ref + b" >>",
        _content(page(2, 4)),
        b"<< /Type /Page /Parent 10 0 R /Contents 9 0 R " + font_ref + b" >>",
        _content(page(3, 4)),
        b"<< /Type /Pages /Parent 2 0 R /Kids [6 0 R 8 0 R 11 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 10 0 R /Contents 12 0 R " + font_ref + b" >>",
        _content(page(4, 4)),
    ])
    (HERE / "nested_tree_count_says_2_of_4.pdf").write_bytes(nested)
    return [
        _job("count_says_4_of_2.pdf", "/Count 4 over 2 page objects", 2, {},
             {str(n): [f"Page {n} of 2"] for n in (1, 2)}),
        _job("nested_tree_count_says_2_of_4.pdf", "nested page tree whose counts say 2 of 4 leaves",
             4, {str(n): "portrait, 1700x2200 px at 200 dpi" for n in range(1, 5)},
             {str(n): [f"Page {n} of 4"] for n in range(1, 5)}),
    ]


def _content(data: bytes) -> bytes:
    return b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


# ---------------------------------------------------------------- kind 8: names


def name_cases() -> list[dict]:
    pdf = make_pdf([text_image(two_pairs((EN_A, ZH_A)), (1000, 700))], dpi=150)
    png = io.BytesIO()
    text_image(two_pairs((EN_B, ZH_B)), (1000, 700)).save(png, "PNG")
    cases = []
    for code_page, names in (("cp932", ["請求書.pdf", "見積もり.png"]),
                             ("cp866", ["Отчёт за квартал.pdf", "Счёт.png"]),
                             ("big5", ["季度報告.pdf", "發票掃描.png"])):
        archive = f"{code_page}_names.zip"
        (HERE / archive).write_bytes(_legacy_zip([(names[0], pdf), (names[1], png.getvalue())], code_page))
        cases.append(_batch(archive, f"zip whose names are {code_page} bytes, no UTF-8 flag", names))
    unicode_path = _legacy_zip([("报告.pdf", pdf)], "gbk", unicode_path="年度报告.pdf")
    (HERE / "unicode_path_extra.zip").write_bytes(unicode_path)
    cases.append(_batch("unicode_path_extra.zip", "Info-ZIP Unicode Path extra field over GBK bytes",
                        ["年度报告.pdf"]))
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w", format=tarfile.GNU_FORMAT, encoding="gbk") as archive:
        for name, data in (("季度报告.pdf", pdf), ("发票扫描.png", png.getvalue())):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            archive.addfile(info, io.BytesIO(data))
    (HERE / "gbk_names.tar").write_bytes(tar.getvalue())
    cases.append(_batch("gbk_names.tar", "tar whose names are GBK bytes", ["季度报告.pdf", "发票扫描.png"]))
    for file, disposition, name in (
            ("upload_name_rfc2047.pdf", 'form-data; name="file"; filename="=?utf-8?B?5a2j5bqm5oql5ZGKLnBkZg==?="',
             "季度报告.pdf"),
            ("upload_name_both_forms.pdf", "form-data; name=\"file\"; filename=\"report.pdf\"; "
             "filename*=UTF-8''%E5%B9%B4%E5%BA%A6%E6%8A%A5%E5%91%8A.pdf", "年度报告.pdf"),
            ("upload_name_raw_utf8.pdf", 'form-data; name="file"; filename="发票扫描.pdf"', "发票扫描.pdf")):
        (HERE / file).write_bytes(pdf)
        case = _job(file, f"an upload named by: Content-Disposition: {disposition}", 1, {}, {"1": [EN_A, ZH_A]})
        case["send"] = f"POST /v1/jobs, one multipart part whose header is exactly: Content-Disposition: {disposition}"
        case["disposition"] = disposition
        case["result"]["job_name"] = name
        cases.append(case)
    return cases


class _RawNameInfo(zipfile.ZipInfo):
    """A ZipInfo written with its name's bytes as given and the UTF-8 flag clear. (zipfile itself
    writes any non-ASCII name as flagged UTF-8; this overrides its private encoder, which is fine
    for a test-data generator and is what makes the archive look as Windows writes it.)"""

    raw_name = b""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # noqa: N802 (zipfile's name)
        return self.raw_name, self.flag_bits & ~0x800


def _legacy_zip(entries: list[tuple[str, bytes]], code_page: str, unicode_path: str | None = None) -> bytes:
    """A zip whose entry names are raw bytes in `code_page`, with the UTF-8 flag clear (as Windows'
    built-in zip writes them); optionally an Info-ZIP Unicode Path extra field on each entry."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            info = _RawNameInfo(name, date_time=(2026, 11, 30, 9, 0, 0))
            info.raw_name = name.encode(code_page)
            if unicode_path is not None:
                field = struct.pack("<BI", 1, zlib.crc32(info.raw_name)) + unicode_path.encode("utf-8")
                info.extra = struct.pack("<HH", 0x7075, len(field)) + field
            archive.writestr(info, data)
    return buffer.getvalue()


# ---------------------------------------------------------------- kinds 9 and 10


def vertical_and_transparency_cases() -> list[dict]:
    columns = ["第一列从上往下读", "第二列在它左边", "第三列还要更左", "最后一列写结论"]
    page = Image.new("RGB", (1100, 1300), "white")
    draw = ImageDraw.Draw(page)
    face = font("zh", 64)
    for index, column in enumerate(columns):
        x = 1100 - 180 - index * 220
        for row, char in enumerate(column):
            draw.text((x, 120 + row * 120), char, fill="black", font=face)
    page.save(HERE / "vertical_four_columns.png")
    keyed = text_image(two_pairs((EN_B, ZH_B)), (1400, 700), ink=(10, 10, 10), paper=(0, 0, 0))
    keyed.save(HERE / "trns_colour_key.png", transparency=(0, 0, 0))
    gray = text_image(two_pairs((EN_C, ZH_C)), (1400, 700), ink=(12, 12, 12), paper=(0, 0, 0)).convert("L")
    gray.save(HERE / "trns_grey_key.png", transparency=0)
    return [
        {**_job("vertical_four_columns.png", "four vertical columns, read right to left", 1, {},
                {"1": columns}), "in_order": True},
        _job("trns_colour_key.png", "RGB PNG whose black background is a tRNS colour key", 1, {},
             {"1": [EN_B, ZH_B]}),
        _job("trns_grey_key.png", "greyscale PNG whose black background is a tRNS key", 1, {},
             {"1": [EN_C, ZH_C]}),
    ]


# ---------------------------------------------------------------- expected.json


def _job(file: str, what: str, pages: int, geometry: dict, must: dict, must_not: dict | None = None) -> dict:
    result = {"http": 202, "status": "succeeded", "pages": pages, "page_geometry": geometry,
              "must_contain": must}
    if must_not:
        result["must_not_contain"] = must_not
    return {"name": Path(file).stem, "file": file, "send": SEND.format(file=file), "fault_kind": what,
            "result": result}


def _batch(file: str, what: str, names: list[str]) -> dict:
    return {"name": Path(file).name.replace(".", "_"), "file": file,
            "send": "POST /v1/batches (Authorization: Bearer <key>), multipart/form-data with one part: "
                    f"Content-Disposition: form-data; name=\"file\"; filename=\"{file}\"",
            "fault_kind": what,
            "result": {"http": 202, "batch_entries": [{"name": n, "status": "succeeded"} for n in names]}}


def main() -> None:
    cases = (exif_cases() + cropbox_cases() + mpo_cases() + large_page_cases() + scan_tag_cases()
             + orientation_cases() + page_tree_cases() + name_cases() + vertical_and_transparency_cases())
    for case in cases:
        if case.pop("in_order", False):
            case["result"]["in_order"] = case["result"]["must_contain"]
    about = {"about": "Tessera's own inputs of each real-world kind; made by make_cases.py.",
             "service_defaults": "tessera serve on its embedded defaults (default OCR engine, 200 dpi)",
             "matching": "as in ../real-world/expected.json", "cases": cases}
    (HERE / "expected.json").write_text(json.dumps(about, ensure_ascii=False, indent=1) + "\n",
                                        encoding="utf-8")


if __name__ == "__main__":
    main()
