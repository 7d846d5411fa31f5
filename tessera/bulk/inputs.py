"""What `tessera submit` was given: files and folders, or one S3 prefix, as documents with a
relative path (`key`: the manifest's key and the base of the output path).

Local: folders are walked (symbolic links not followed, sorted), keeping files with a document
suffix; files named on the command line are kept whatever their suffix. The root that keys are
relative to is the deepest folder holding every argument (a folder argument counts as itself).
S3: the objects under the prefix (boto3, credentials and endpoint from the standard AWS_*
variables, e.g. AWS_ENDPOINT_URL_S3); keys are relative to the prefix, and the server fetches
each object itself (its bucket must be in the server's TESSERA_S3_SOURCE_BUCKETS).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DOCUMENT_SUFFIXES = {".pdf", ".png", ".jpg", ".jpeg", ".tif", ".tiff"}
HASH_CHUNK = 1024 * 1024


@dataclass
class Input:
    key: str  # relative path, "/"-separated
    source: str  # absolute local path, or s3://bucket/key
    size: int
    mtime_ns: int | None = None  # local files
    etag: str | None = None  # S3 objects

    @property
    def is_s3(self) -> bool:
        return self.source.startswith("s3://")


def is_s3(argument: str) -> bool:
    return argument.startswith("s3://")


def local_root(paths: list[Path]) -> Path:
    """The deepest folder that holds every argument."""
    folders = [p if p.is_dir() else p.parent for p in (path.resolve() for path in paths)]
    return Path(os.path.commonpath(folders))


def local_inputs(paths: list[Path], root: Path, skip: Path | None = None) -> Iterator[Input]:
    """Every document under `paths`, keyed relative to `root`; nothing under `skip` (the output
    folder). Raises ValueError for a path outside `root`."""
    seen: set[Path] = set()
    for path in (p.resolve() for p in paths):
        files = _walk(path, skip) if path.is_dir() else iter([path])
        for file in files:
            if file in seen:
                continue
            seen.add(file)
            if not file.is_relative_to(root):
                raise ValueError(f"{file} is outside {root}, the folder this output folder's "
                                 "results mirror; use another --out")
            stat = file.stat()
            yield Input(key=file.relative_to(root).as_posix(), source=str(file), size=stat.st_size,
                        mtime_ns=stat.st_mtime_ns)


def _walk(folder: Path, skip: Path | None) -> Iterator[Path]:
    for current, dirs, files in os.walk(folder):
        here = Path(current)
        dirs[:] = sorted(d for d in dirs if skip is None or (here / d).resolve() != skip)
        for name in sorted(files):
            if Path(name).suffix.lower() in DOCUMENT_SUFFIXES:
                yield here / name


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def s3_inputs(prefix_uri: str) -> Iterator[Input]:
    """Every object under s3://bucket/prefix, keyed relative to the prefix."""
    import boto3

    bucket, _, prefix = prefix_uri[len("s3://"):].partition("/")
    if not bucket:
        raise ValueError(f"{prefix_uri}: an S3 prefix is s3://bucket/prefix")
    client = boto3.client("s3")
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith("/"):
                continue
            yield Input(key=safe_key(item["Key"][len(prefix):]), source=f"s3://{bucket}/{item['Key']}",
                        size=int(item["Size"]), etag=item.get("ETag", "").strip('"'))


def safe_key(key: str) -> str:
    """The part of an S3 key after the prefix as a relative path that stays inside the output
    folder, one to one: the slash after the prefix dropped, `%` written `%25`, and segments that
    a file system would read otherwise (empty, `.`, `..`) written as `%` and `%2E`s."""
    out = []
    for segment in key.removeprefix("/").split("/"):
        segment = segment.replace("%", "%25")
        if segment == "":
            segment = "%"
        elif set(segment) == {"."}:
            segment = "%2E" * len(segment)
        out.append(segment)
    return "/".join(out)
