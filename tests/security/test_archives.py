"""Archive reading (api/archives.py) against hostile archives: no services, bytes in memory."""

from __future__ import annotations

import gzip
import io
import zipfile

import pytest

from api.archives import archive_kind, open_archive
from tessera.config import Settings
from tessera.errors import ArchiveTooLarge, CorruptArchive, TooManyEntries, UnsupportedMediaType
from tests.data.hostile import corpus

MiB = 2**20
PDF = corpus.text_pdf()


@pytest.fixture
def settings(tmp_path) -> Settings:  # noqa: ANN001
    return Settings(home=tmp_path, archive_max_entry_bytes=20 * MiB, archive_max_total_bytes=50 * MiB,
                    archive_max_entries=20, archive_max_depth=2)


def outcomes(data: bytes, settings: Settings) -> list[tuple[str, str]]:
    """(display name, 'ok' or the error code) per entry."""
    return [(e.name, "ok" if e.error is None else e.error.code) for e in open_archive(data, settings)]


def test_kinds_come_from_magic_bytes() -> None:
    assert archive_kind(corpus.zip_of([("a.pdf", PDF)])) == "zip"
    assert archive_kind(corpus.tar_of([("a.pdf", PDF)])) == "tar"
    assert archive_kind(corpus.tar_of([("a.pdf", PDF)], gz=True)) == "tar.gz"
    assert archive_kind(PDF) is None and archive_kind(b"") is None


def test_entry_data_is_read_whole(settings: Settings) -> None:
    for archive in (corpus.zip_of([("a.pdf", PDF)]), corpus.tar_of([("d/a.pdf", PDF)], gz=True)):
        (entry,) = list(open_archive(archive, settings))
        assert entry.data == PDF and entry.error is None


def test_unsafe_zip_names_and_links_are_refused_one_by_one(settings: Settings) -> None:
    archive = corpus.zip_of([("ok.pdf", PDF), ("../../etc/evil.pdf", PDF), ("/abs.pdf", PDF),
                             ("C:\\Windows\\evil.pdf", PDF), ("a/../../b.pdf", PDF), ("link.pdf", b"/etc/passwd"),
                             ("dir/", b""), ("__MACOSX/._ok.pdf", b"meta")], symlinks=("link.pdf",))
    assert outcomes(archive, settings) == [
        ("ok.pdf", "ok"), ("../../etc/evil.pdf", "unsafe_archive_entry"), ("/abs.pdf", "unsafe_archive_entry"),
        ("C:\\Windows\\evil.pdf", "unsafe_archive_entry"), ("a/../../b.pdf", "unsafe_archive_entry"),
        ("link.pdf", "unsafe_archive_entry")]


def test_unsafe_tar_members_are_refused_one_by_one(settings: Settings) -> None:
    archive = corpus.tar_of([("ok.pdf", PDF), corpus.tar_link("sym.pdf", "/etc/passwd"),
                             corpus.tar_link("hard.pdf", "ok.pdf", b"1"), ("/etc/abs.pdf", PDF),
                             corpus.tar_device("null"), ("../up.pdf", PDF)])
    assert outcomes(archive, settings) == [
        ("ok.pdf", "ok"), ("sym.pdf", "unsafe_archive_entry"), ("hard.pdf", "unsafe_archive_entry"),
        ("/etc/abs.pdf", "unsafe_archive_entry"), ("null", "unsafe_archive_entry"),
        ("../up.pdf", "unsafe_archive_entry")]


def test_zip_bomb_by_declared_entry_size(settings: Settings) -> None:
    assert outcomes(corpus.zip_bomb(30 * MiB), settings) == [("zeros.pdf", "entry_too_large")]


def test_zip_bomb_by_declared_total_refuses_the_archive(settings: Settings) -> None:
    archive = corpus.zip_of([(f"{n}.pdf", b"\x00" * (19 * MiB)) for n in range(3)])
    with pytest.raises(ArchiveTooLarge):
        open_archive(archive, settings)


def test_zip_bomb_with_lying_headers_is_cut_off(settings: Settings) -> None:
    """Headers claim 1000 bytes for 30 MiB: the read stops at the claim and the CRC check fails;
    headers claiming more than the limit are refused before reading."""
    assert outcomes(corpus.zip_bomb_lying(30 * MiB), settings) == [("small.pdf", "corrupt_archive")]
    assert outcomes(corpus.zip_bomb_lying(30 * MiB, claimed=25 * MiB), settings) == [
        ("small.pdf", "entry_too_large")]


def test_reads_are_bounded_whatever_the_headers_say(settings: Settings) -> None:
    """A reader that ignores the declared size still gets at most limit + 1 bytes."""
    from api.archives import _bounded

    assert len(_bounded(io.BytesIO(b"\x00" * (5 * MiB)), 1 * MiB)) == 1 * MiB + 1
    tight = settings.model_copy(update={"archive_max_entry_bytes": 1 * MiB})
    assert outcomes(corpus.tar_of([("big.pdf", b"\x00" * (2 * MiB))]), tight) == [("big.pdf", "entry_too_large")]


def test_tar_gz_bomb_is_refused_while_inflating(settings: Settings) -> None:
    with pytest.raises(ArchiveTooLarge):
        open_archive(corpus.tar_gz_bomb(60 * MiB), settings)


def test_too_many_entries(settings: Settings) -> None:
    with pytest.raises(TooManyEntries):
        open_archive(corpus.zip_of([(f"{n}.pdf", PDF) for n in range(21)]), settings)
    # Millions of central-directory records are refused from the end record, before parsing them.
    with pytest.raises(TooManyEntries, match="holds 5000 members"):
        open_archive(corpus.zip_of([(f"d{n}/", b"") for n in range(5000)]), settings)
    with pytest.raises(TooManyEntries):
        open_archive(corpus.tar_of([corpus.tar_link(f"l{n}", "x") for n in range(200)]), settings)


def test_nested_archives_expand_to_the_depth_limit(settings: Settings) -> None:
    assert outcomes(corpus.nested_zips(PDF, depth=3), settings) == [
        ("level1.pdf", "ok"), ("inner1.zip/level2.pdf", "ok"), ("inner1.zip/inner2.zip", "nested_archive_too_deep")]
    flat = settings.model_copy(update={"archive_max_depth": 1})
    assert outcomes(corpus.nested_zips(PDF, depth=2), flat) == [
        ("level1.pdf", "ok"), ("inner1.zip", "nested_archive_too_deep")]


def test_nested_bombs_share_the_budget(settings: Settings) -> None:
    inner = corpus.zip_of([(f"{n}.pdf", b"\x00" * (19 * MiB)) for n in range(2)])  # 38 MiB, fine alone
    archive = corpus.zip_of([("a.zip", inner), ("b.zip", inner)])
    assert outcomes(archive, settings) == [("a.zip/0.pdf", "ok"), ("a.zip/1.pdf", "ok"),
                                           ("b.zip", "archive_too_large")]


def test_office_documents_are_not_expanded(settings: Settings) -> None:
    docx = corpus.zip_of([("[Content_Types].xml", b"<Types/>"), ("word/document.xml", b"<w/>")])
    assert outcomes(corpus.zip_of([("report.docx", docx)]), settings) == [("report.docx", "ok")]
    with pytest.raises(UnsupportedMediaType):
        open_archive(docx, settings)


def test_not_an_archive_or_unreadable(settings: Settings) -> None:
    with pytest.raises(UnsupportedMediaType):
        open_archive(PDF, settings)
    with pytest.raises(UnsupportedMediaType):
        open_archive(gzip.compress(b"not a tar"), settings)
    with pytest.raises(CorruptArchive):
        open_archive(b"PK\x03\x04" + b"\x00" * 64, settings)


def test_encrypted_zip_entry_is_refused(settings: Settings) -> None:
    data = bytearray(corpus.zip_of([("secret.pdf", PDF)]))
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # set the 'encrypted' flag bit
        at = data.index(signature)
        data[at + offset] |= 0x1
    assert outcomes(bytes(data), settings) == [("secret.pdf", "corrupt_archive")]


def test_names_are_display_only(settings: Settings) -> None:
    archive = corpus.zip_of([("bad\x1b[31m\x07name.pdf", PDF)])
    (entry,) = list(open_archive(archive, settings))
    assert entry.name == "bad[31mname.pdf"
    assert zipfile.is_zipfile(io.BytesIO(archive))
