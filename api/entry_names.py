"""The names of archive entries, decoded as the system that made the archive wrote them.

A zip entry's name is UTF-8 only when general-purpose flag bit 11 says so (APPNOTE.TXT 4.4.4);
otherwise it is bytes in whatever code page the zipping tool used: Windows' built-in zip and 7-Zip
use the system's OEM code page (GBK on Chinese systems, Shift_JIS/cp932 on Japanese, cp866 on
Russian), and Python's zipfile reads every such name as cp437, which garbles all of them. Tar names
are bytes too (tarfile decodes them as UTF-8 and keeps undecodable bytes as surrogates).

For a name that is not flagged UTF-8, in order:
1. the Info-ZIP Unicode Path extra field (0x7075, APPNOTE 4.6.9), when its CRC-32 matches the name;
2. plain ASCII;
3. the archive's legacy encoding, guessed once from all its undecided names together (more bytes,
   a better guess): UTF-8 when every one of them is valid UTF-8 (tools that forget the flag), else
   what `chardet` detects. chardet 7 scores CJK by character frequency, which short names need:
   measured on 22 names in 9 code pages it was right on 21, charset-normalizer on 16
   (bench/entry_names.py);
4. cp437, the zip specification's default, when nothing else decodes.
"""

from __future__ import annotations

import struct
import zipfile
import zlib

import chardet

UTF8_FLAG = 0x800
UNICODE_PATH_EXTRA = 0x7075
ZIP_DEFAULT_ENCODING = "cp437"


def zip_entry_names(infos: list[zipfile.ZipInfo]) -> list[str]:
    """Display names for a zip's entries, in order."""
    names = [_declared_name(info) for info in infos]
    undecided = [i for i, name in enumerate(names) if name is None]
    guessed = decode_legacy([infos[i].orig_filename.encode(ZIP_DEFAULT_ENCODING) for i in undecided])
    for index, name in zip(undecided, guessed):
        names[index] = name
    return names  # type: ignore[return-value] (every None was replaced)


def tar_entry_names(names: list[str]) -> list[str]:
    """Display names for tar entries as tarfile read them (UTF-8, undecodable bytes kept as
    surrogates by its `surrogateescape` default)."""
    undecided = [i for i, name in enumerate(names) if _has_surrogates(name)]
    guessed = decode_legacy([names[i].encode("utf-8", "surrogateescape") for i in undecided])
    decoded = list(names)
    for index, name in zip(undecided, guessed):
        decoded[index] = name
    return decoded


def _has_surrogates(name: str) -> bool:
    return any("\udc80" <= char <= "\udcff" for char in name)


def decode_legacy(raw_names: list[bytes]) -> list[str]:
    """Names in one unknown legacy encoding, decoded together (steps 2-4 of the module doc)."""
    if not raw_names:
        return []
    foreign = [raw for raw in raw_names if not raw.isascii()]
    encoding = _guess_encoding(b"\n".join(foreign)) if foreign else "ascii"
    return [_decode(raw, encoding) for raw in raw_names]


def _guess_encoding(sample: bytes) -> str:
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    guess = chardet.detect(sample, prefer_superset=True).get("encoding")
    try:
        if guess:
            sample.decode(guess)
            return guess
    except (LookupError, UnicodeDecodeError):
        pass
    return ZIP_DEFAULT_ENCODING


def _decode(raw: bytes, encoding: str) -> str:
    try:
        return raw.decode(encoding)
    except (LookupError, UnicodeDecodeError):
        return raw.decode(ZIP_DEFAULT_ENCODING)


def _declared_name(info: zipfile.ZipInfo) -> str | None:
    """The name when the archive says how it is encoded (UTF-8 flag, Unicode Path field, ASCII);
    None when it must be guessed."""
    if info.flag_bits & UTF8_FLAG:
        return info.filename
    raw = info.orig_filename.encode(ZIP_DEFAULT_ENCODING)
    unicode_path = _unicode_path(info.extra, raw)
    if unicode_path is not None:
        return unicode_path
    return raw.decode("ascii") if raw.isascii() else None


def _unicode_path(extra: bytes, raw_name: bytes) -> str | None:
    """The UTF-8 name in an Info-ZIP Unicode Path extra field, if one is there and still belongs to
    the name (its CRC-32 of the header's name bytes matches: a tool that renamed the entry without
    updating the field leaves a stale one)."""
    offset = 0
    while offset + 4 <= len(extra):
        header_id, size = struct.unpack_from("<HH", extra, offset)
        body = extra[offset + 4:offset + 4 + size]
        offset += 4 + size
        if header_id != UNICODE_PATH_EXTRA or len(body) < 5 or body[0] != 1:
            continue
        (crc,) = struct.unpack_from("<I", body, 1)
        if crc == zlib.crc32(raw_name):
            try:
                return body[5:].decode("utf-8")
            except UnicodeDecodeError:
                return None
    return None
