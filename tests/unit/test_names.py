"""File names as their senders wrote them: zip and tar entries in legacy code pages, and upload
names in every Content-Disposition form HTTP clients send."""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile
import zlib

import pytest

from api.entry_names import tar_entry_names, zip_entry_names
from api.uploads import disposition_names


class RawNameInfo(zipfile.ZipInfo):
    """Writes the name's bytes as given, UTF-8 flag clear (as Windows' built-in zip does)."""

    raw_name = b""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # noqa: N802 (zipfile's own name)
        return self.raw_name, self.flag_bits & ~0x800


def legacy_zip(names: list[str], code_page: str, extra: bytes | None = None, flagged: list[str] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            info = RawNameInfo(name)
            info.raw_name = name.encode(code_page)
            if extra is not None:
                info.extra = extra
            archive.writestr(info, b"%PDF-1.4")
        for name in flagged:
            archive.writestr(name, b"%PDF-1.4")  # zipfile flags non-ASCII names as UTF-8
    return buffer.getvalue()


def names_of(data: bytes) -> list[str]:
    return zip_entry_names(zipfile.ZipFile(io.BytesIO(data)).infolist())


@pytest.mark.parametrize(("code_page", "names"), [
    ("gbk", ["季度报告.pdf", "发票扫描.png"]),
    ("gbk", ["扫描件/第一页.png", "扫描件/第二页.png"]),
    ("cp932", ["請求書.pdf", "見積もり.png"]),
    ("cp866", ["Отчёт за квартал.pdf", "Счёт.png"]),
    ("cp1251", ["Договор поставки.pdf"]),
    ("big5", ["季度報告.pdf", "發票掃描.png"]),
    ("cp949", ["분기 보고서.pdf"]),
    ("utf-8", ["名前だけUTF-8.pdf"]),  # a tool that writes UTF-8 without setting the flag
])
def test_legacy_zip_names_are_decoded_as_their_system_wrote_them(code_page: str, names: list[str]) -> None:
    assert names_of(legacy_zip(names, code_page)) == names


def test_flagged_and_ascii_names_are_taken_as_they_are() -> None:
    data = legacy_zip(["plain.pdf"], "ascii", flagged=["已标记.pdf"])
    assert names_of(data) == ["plain.pdf", "已标记.pdf"]


def test_the_unicode_path_extra_field_wins_when_it_matches_the_name() -> None:
    raw = "报告.pdf".encode("gbk")
    good = struct.pack("<BI", 1, zlib.crc32(raw)) + "年度报告.pdf".encode()
    assert names_of(legacy_zip(["报告.pdf"], "gbk", extra=struct.pack("<HH", 0x7075, len(good)) + good)) == \
        ["年度报告.pdf"]
    stale = struct.pack("<BI", 1, zlib.crc32(b"renamed")) + "旧名字.pdf".encode()
    assert names_of(legacy_zip(["报告.pdf"], "gbk", extra=struct.pack("<HH", 0x7075, len(stale)) + stale)) == \
        ["报告.pdf"]  # renamed since: the field no longer describes this name


def test_tar_names_in_a_legacy_code_page_are_decoded() -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT, encoding="gbk") as archive:
        for name in ("季度报告.pdf", "readme.txt"):
            info = tarfile.TarInfo(name)
            archive.addfile(info, io.BytesIO(b""))
    with tarfile.open(fileobj=io.BytesIO(buffer.getvalue())) as archive:
        read = [member.name for member in archive.getmembers()]
    assert read[0] != "季度报告.pdf"  # tarfile's own UTF-8 reading fails
    assert tar_entry_names(read) == ["季度报告.pdf", "readme.txt"]


@pytest.mark.parametrize(("header", "name", "filename"), [
    ('form-data; name="file"; filename="report.pdf"', "file", "report.pdf"),
    ('form-data; name="file"; filename="季度报告.pdf"'.encode().decode("latin-1"), "file", "季度报告.pdf"),
    ("form-data; name=\"file\"; filename*=utf-8''%E5%AD%A3%E5%BA%A6%E6%8A%A5%E5%91%8A.pdf", "file", "季度报告.pdf"),
    ("form-data; name=\"file\"; filename=\"report.pdf\"; filename*=UTF-8''%E5%B9%B4.pdf", "file", "年.pdf"),
    ("form-data; name=\"file\"; filename*=gbk''%BC%BE%B6%C8.pdf", "file", "季度.pdf"),
    ("form-data; name=\"file\"; filename*0*=utf-8''%E5%AD%A3; filename*1=.pdf", "file", "季.pdf"),
    ('form-data; name="file"; filename="=?utf-8?B?5a2j5bqm5oql5ZGKLnBkZg==?="', "file", "季度报告.pdf"),
    ('form-data; name="file"; filename="=?gb2312?Q?=BC=BE=B6=C8.pdf?="', "file", "季度.pdf"),
    ('form-data; name="file"; filename="a\\"b.pdf"', "file", 'a"b.pdf'),
    ('form-data; name="options"', "options", None),
    ('form-data; filename="x.pdf"', None, "x.pdf"),
])
def test_upload_names_in_every_form_clients_send(header: str, name: str | None, filename: str | None) -> None:
    raw = header.encode("latin-1") if not header.isascii() else header.encode()
    assert disposition_names(raw) == (name, filename)
