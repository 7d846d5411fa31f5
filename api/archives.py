"""Archives sent to POST /v1/batches (zip, tar, tar.gz), read in memory and never extracted to disk.

The type comes from magic bytes only. Limits (Settings) and what breaking one does:

- refused as a whole, before any job exists: not an archive (415 `unsupported_media_type`),
  unreadable (422 `corrupt_archive`), more than `archive_max_entries` documents (422
  `too_many_entries`), declared sizes adding up to more than `archive_max_total_bytes`, or a
  gzip stream inflating past it (413 `archive_too_large`);
- refused entry by entry, the batch goes on: `unsafe_archive_entry` (`..`, absolute path or
  drive letter, symlink, hard link, device), `entry_too_large` (over `archive_max_entry_bytes`
  by its header or by what was actually read: every read is bounded, headers are never
  trusted alone), `archive_too_large` (the batch's total ran out), `corrupt_archive` (bad data,
  encrypted zip entry), `nested_archive_too_deep`.

Nested archives are expanded up to `archive_max_depth` levels (the upload is level 1; with the
default 2, an archive inside the upload is expanded, one inside that is refused); nested
levels share the upload's entry and byte budget. Office/ODF/EPUB files are zips but documents,
so they are not expanded. Directories and macOS metadata (`__MACOSX/`, `._*`, `.DS_Store`) are
skipped. An entry's name is decoded as the zipping system wrote it (api/entry_names.py) and is
for display only: keys and paths come from ids (DESIGN.md).
"""

from __future__ import annotations

import gzip
import io
import re
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from api.entry_names import tar_entry_names, zip_entry_names
from tessera.config import Settings
from tessera.errors import (
    ArchiveTooLarge,
    CorruptArchive,
    EntryTooLarge,
    InvalidInput,
    NestedArchiveTooDeep,
    TooManyEntries,
    UnsafeArchiveEntry,
    UnsupportedArchive,
)

CHUNK = 1024 * 1024
SPOOL_IN_MEMORY = 64 * 1024 * 1024
TAR_OVERHEAD_PER_ENTRY = 3 * 512  # header, long-name/PAX header, padding
_DRIVE = re.compile(r"^[A-Za-z]:")
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, tarfile.TarError, EOFError, OSError, ValueError,
                RuntimeError, NotImplementedError)


@dataclass
class Entry:
    """One document of a batch: its display name and its bytes, or why it was refused."""

    name: str
    data: bytes | None = None
    error: InvalidInput | None = None


@dataclass
class Member:
    name: str
    size: int  # as declared by the archive's header
    kind: str  # file | dir | link | special
    read: Callable[[int], bytes] = field(repr=False)  # at most limit + 1 bytes


@dataclass
class Budget:
    entries: int
    bytes: int


def archive_kind(data: bytes) -> str | None:
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if data.startswith(b"\x1f\x8b"):
        return "tar.gz"
    if data[257:262] == b"ustar":
        return "tar"
    return None


def open_archive(data: bytes, settings: Settings) -> Iterator[Entry]:
    """Check the archive as a whole (raises), then return an iterator over its entries."""
    kind = archive_kind(data)
    if kind is None:
        raise UnsupportedArchive("send a zip, tar or tar.gz archive")
    if kind == "zip" and _is_office_document(data):
        raise UnsupportedArchive("an Office, ODF or EPUB document is not an archive of documents")
    budget = Budget(settings.archive_max_entries, settings.archive_max_total_bytes)
    members = _members(kind, data, settings, budget)
    return _expand(members, budget, settings, depth=1, prefix="")


def _members(kind: str, data: bytes, settings: Settings, budget: Budget) -> list[Member]:
    """List an archive's members and check its declared sizes against the budget."""
    try:
        members = _zip_members(data, settings) if kind == "zip" else _tar_members(data, kind, settings, budget)
    except InvalidInput:
        raise
    except _READ_ERRORS as exc:
        raise CorruptArchive(f"the {kind} archive could not be read: {exc}"[:300]) from exc
    documents = [m for m in members if m.kind != "dir" and not _skipped(m.name)]
    if len(documents) > budget.entries:
        raise TooManyEntries(f"the archive holds {len(documents)} entries; the limit is "
                             f"{settings.archive_max_entries}")
    limit = settings.archive_max_entry_bytes  # bigger entries are refused one by one, not counted
    declared = sum(m.size for m in documents if m.kind == "file" and m.size <= limit)
    if declared > budget.bytes:
        raise ArchiveTooLarge(f"the archive's entries add up to {declared / 2**20:.0f} MiB uncompressed; "
                              f"the limit is {settings.archive_max_total_bytes / 2**20:.0f} MiB")
    return members


def _expand(members: list[Member], budget: Budget, settings: Settings, depth: int,
            prefix: str) -> Iterator[Entry]:
    for member in members:
        if member.kind == "dir" or _skipped(member.name):
            continue
        name = display_name(prefix + member.name)
        try:
            data = _take(member, budget, settings)
        except InvalidInput as exc:
            yield Entry(name, error=exc)
            continue
        kind = archive_kind(data)
        if kind is None or (kind == "zip" and _is_office_document(data)):
            yield Entry(name, data=data)
        elif depth >= settings.archive_max_depth:
            yield Entry(name, error=NestedArchiveTooDeep(
                f"archives nested more than {settings.archive_max_depth} deep are not expanded"))
        else:
            try:
                inner = _members(kind, data, settings, budget)
            except InvalidInput as exc:
                yield Entry(name, error=exc)
                continue
            yield from _expand(inner, budget, settings, depth + 1, prefix=name + "/")


def _take(member: Member, budget: Budget, settings: Settings) -> bytes:
    """Check one member and read it, bounded by the entry limit and what is left of the budget."""
    reason = _unsafe(member)
    if reason:
        raise UnsafeArchiveEntry(f"refused: {reason}")
    limit = settings.archive_max_entry_bytes
    if member.size > limit:
        raise EntryTooLarge(f"the entry is {member.size / 2**20:.0f} MiB; "
                            f"the limit is {limit / 2**20:.0f} MiB")
    if budget.entries <= 0:
        raise TooManyEntries(f"the batch already holds {settings.archive_max_entries} entries")
    budget.entries -= 1
    try:
        data = member.read(min(limit, budget.bytes))
    except _READ_ERRORS as exc:
        raise CorruptArchive(f"the entry could not be read: {exc}"[:300]) from exc
    if len(data) > limit:
        raise EntryTooLarge(f"the entry inflates past the {limit / 2**20:.0f} MiB limit")
    if len(data) > budget.bytes:
        budget.bytes = 0
        raise ArchiveTooLarge("the archive inflates past the "
                              f"{settings.archive_max_total_bytes / 2**20:.0f} MiB limit")
    budget.bytes -= len(data)
    return data


def _unsafe(member: Member) -> str | None:
    name = member.name.replace("\\", "/")
    if member.kind == "link":
        return "links are not followed"
    if member.kind == "special":
        return "device, FIFO and other special files are not read"
    if name.startswith("/") or _DRIVE.match(name):
        return "absolute path"
    if ".." in name.split("/"):
        return "the path climbs out of the archive ('..')"
    if "\x00" in name:
        return "NUL character in the name"
    return None


def _skipped(name: str) -> bool:
    parts = name.replace("\\", "/").split("/")
    return parts[0] == "__MACOSX" or parts[-1].startswith("._") or parts[-1] in (".DS_Store", "Thumbs.db")


def display_name(name: str) -> str:
    """Printable characters only (no control or unpaired surrogate characters), at most 500."""
    return "".join(ch for ch in name if ch.isprintable())[:500] or "(unnamed)"


def _bounded(handle: io.BufferedIOBase, limit: int) -> bytes:
    """Read at most limit + 1 bytes, in chunks, whatever the header said."""
    out = bytearray()
    while len(out) <= limit:
        chunk = handle.read(min(CHUNK, limit + 1 - len(out)))
        if not chunk:
            break
        out += chunk
    return bytes(out)


# ---------------------------------------------------------------- zip


def _zip_members(data: bytes, settings: Settings) -> list[Member]:
    _check_zip_count(data, settings)
    archive = zipfile.ZipFile(io.BytesIO(data))
    infos = archive.infolist()
    return [Member(name, info.file_size, _zip_kind(info), _zip_reader(archive, info))
            for name, info in zip(zip_entry_names(infos), infos)]


def _check_zip_count(data: bytes, settings: Settings) -> None:
    """Refuse a central directory of millions of entries before zipfile parses each into memory."""
    end = zipfile._EndRecData(io.BytesIO(data))  # noqa: SLF001 (the stdlib's own EOCD reader)
    cap = _member_cap(settings)
    if end and end[zipfile._ECD_ENTRIES_TOTAL] > cap:  # noqa: SLF001
        raise TooManyEntries(f"the archive holds {end[zipfile._ECD_ENTRIES_TOTAL]} members; "  # noqa: SLF001
                             f"the limit is {settings.archive_max_entries}")


def _member_cap(settings: Settings) -> int:
    """Members (directories and skipped files included) an archive may list at all."""
    return 4 * settings.archive_max_entries + 16


def _zip_kind(info: zipfile.ZipInfo) -> str:
    if info.is_dir():
        return "dir"
    file_type = stat.S_IFMT(info.external_attr >> 16)
    if info.create_system == 3 and file_type:  # a unix file type is recorded (often only permissions are)
        if file_type == stat.S_IFLNK:
            return "link"
        if file_type != stat.S_IFREG:
            return "special"
    return "file"


def _zip_reader(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Callable[[int], bytes]:
    def read(limit: int) -> bytes:
        if info.flag_bits & 0x1:
            raise CorruptArchive("the entry is encrypted")
        with archive.open(info) as handle:
            return _bounded(handle, limit)
    return read


def _is_office_document(data: bytes) -> bool:
    try:
        names = set(zipfile.ZipFile(io.BytesIO(data)).namelist()[:50])
    except _READ_ERRORS:
        return False
    return "[Content_Types].xml" in names or "mimetype" in names


# ---------------------------------------------------------------- tar, tar.gz


def _tar_members(data: bytes, kind: str, settings: Settings, budget: Budget) -> list[Member]:
    source = io.BytesIO(data) if kind == "tar" else _gunzip_bounded(data, budget, settings)
    archive = tarfile.open(fileobj=source, mode="r:")
    members, cap = [], _member_cap(settings)
    while (info := archive.next()) is not None:
        members.append(Member(info.name, info.size, _tar_kind(info), _tar_reader(archive, info)))
        if len(members) > cap:
            raise TooManyEntries(f"the archive holds more than {cap} members")
    for member, name in zip(members, tar_entry_names([m.name for m in members])):
        member.name = name
    return members


def _tar_kind(info: tarfile.TarInfo) -> str:
    if info.isdir():
        return "dir"
    if info.issym() or info.islnk():
        return "link"
    return "file" if info.isreg() else "special"


def _tar_reader(archive: tarfile.TarFile, info: tarfile.TarInfo) -> Callable[[int], bytes]:
    def read(limit: int) -> bytes:
        handle = archive.extractfile(info)
        if handle is None:
            raise CorruptArchive("the entry has no data")
        with handle:
            return _bounded(handle, limit)
    return read


def _gunzip_bounded(data: bytes, budget: Budget, settings: Settings) -> tempfile.SpooledTemporaryFile:
    """Inflate into a spooled temp file, refusing (413) once past the budget plus tar overhead."""
    limit = budget.bytes + TAR_OVERHEAD_PER_ENTRY * (settings.archive_max_entries + 2)
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    written = 0
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
        while chunk := stream.read(CHUNK):
            written += len(chunk)
            if written > limit:
                spool.close()
                raise ArchiveTooLarge("the gzip stream inflates past the "
                                      f"{settings.archive_max_total_bytes / 2**20:.0f} MiB limit")
            spool.write(chunk)
    spool.seek(0)
    if _peek(spool)[257:262] != b"ustar":
        spool.close()
        raise UnsupportedArchive("the gzip file holds no tar archive")
    return spool


def _peek(spool: tempfile.SpooledTemporaryFile) -> bytes:
    head = spool.read(512)
    spool.seek(0)
    return head

