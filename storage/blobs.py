"""Blob storage behind one small interface: S3 (any endpoint) or a local folder.

Keys are built by `blob_keys` from ids only, never from a user's file name.
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from tessera.errors import TransientError

S3_DELETE_BATCH = 1000  # the most keys one DeleteObjects request takes
READ_AHEAD = 8  # reads in flight in read_ahead; under botocore's default pool of 10 connections


class BlobNotFound(KeyError):
    pass


class BlobStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...
    def keys(self, prefix: str) -> list[str]: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def ping(self) -> None: ...


def read_ahead(get: Callable[[str], bytes], keys: Sequence[str], ahead: int = READ_AHEAD) -> Iterator[bytes]:
    """Each key's blob, in the order of `keys`, read `ahead` at a time on threads.

    Why: a blob read is a round trip (tens of milliseconds to a real S3 bucket), and assembling
    a long document reads a result and an image per page; one at a time, a 500-page document
    would spend most of its assemble waiting. At most `ahead` blobs are held beyond the one
    handed out. Raises what `get` raises (BlobNotFound, transient errors) for the first key
    that fails, when its turn comes."""
    if len(keys) <= 1:
        yield from (get(key) for key in keys)
        return
    with ThreadPoolExecutor(max_workers=min(ahead, len(keys)), thread_name_prefix="blob-read") as pool:
        waiting = iter(keys)
        in_flight: deque[Future[bytes]] = deque(pool.submit(get, key) for _, key in zip(range(ahead), waiting))
        while in_flight:
            data = in_flight.popleft().result()
            for key in waiting:
                in_flight.append(pool.submit(get, key))
                break
            yield data


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"invalid blob key {key!r}")
    return key


class LocalBlobStore:
    """A folder on disk. Writes are atomic (temp file + rename) so readers never see half a blob."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise BlobNotFound(key) from exc

    def delete(self, key: str) -> None:
        """Remove one blob; a missing one is not an error (deletes are retried)."""
        self._path(key).unlink(missing_ok=True)

    def keys(self, prefix: str) -> list[str]:
        """Keys under the folder `prefix` (sorted)."""
        base = self._path(prefix.rstrip("/"))
        if not base.is_dir():
            return []
        return sorted(str(path.relative_to(self.root)) for path in base.rglob("*")
                      if path.is_file() and not path.name.startswith(".tmp-"))

    def delete_prefix(self, prefix: str) -> int:
        removed = 0
        base = self._path(prefix.rstrip("/"))
        if base.is_dir():
            for path in sorted(base.rglob("*"), reverse=True):
                if path.is_file():
                    path.unlink()
                    removed += 1
                else:
                    path.rmdir()
            base.rmdir()
        return removed

    def ping(self) -> None:
        if not os.access(self.root, os.W_OK):
            raise TransientError(f"blob folder {self.root} is not writable")


class S3BlobStore:
    """An S3 bucket through boto3; the client is injected so tests and prod share the code."""

    def __init__(self, client, bucket: str):  # noqa: ANN001 (boto3 clients are untyped)
        self.client = client
        self.bucket = bucket

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(Bucket=self.bucket, Key=_check_key(key), Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=_check_key(key))
        except self.client.exceptions.NoSuchKey as exc:
            raise BlobNotFound(key) from exc
        return response["Body"].read()

    def delete(self, key: str) -> None:
        """Remove one blob; a missing one is not an error (S3 answers 204 either way)."""
        self.client.delete_object(Bucket=self.bucket, Key=_check_key(key))

    def keys(self, prefix: str) -> list[str]:
        """Keys under the folder `prefix` (sorted, as S3 lists them)."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix.rstrip("/") + "/")
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def delete_prefix(self, prefix: str) -> int:
        keys = self.keys(prefix)
        for start in range(0, len(keys), S3_DELETE_BATCH):
            objects = [{"Key": key} for key in keys[start:start + S3_DELETE_BATCH]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects})
        return len(keys)

    def ping(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)


def create_blob_store(settings) -> BlobStore:  # noqa: ANN001 (tessera.config.Settings)
    if settings.s3_bucket is None:
        return LocalBlobStore(settings.blob_dir)
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url,
        region_name=settings.s3_region,
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60),
    )
    return S3BlobStore(client, settings.s3_bucket)


class BlobKeys:
    """The only place blob keys are spelled (DESIGN.md 'Blob keys')."""

    @staticmethod
    def job_prefix(tenant_id: str, job_id: str) -> str:
        return f"{tenant_id}/{job_id}"

    @staticmethod
    def input(tenant_id: str, job_id: str) -> str:
        return f"{tenant_id}/{job_id}/input"

    @staticmethod
    def page_image(tenant_id: str, job_id: str, page_no: int) -> str:
        return f"{tenant_id}/{job_id}/pages/{page_no:05d}.png"

    @staticmethod
    def page_results(tenant_id: str, job_id: str) -> str:
        return f"{tenant_id}/{job_id}/results"

    @staticmethod
    def page_result(tenant_id: str, job_id: str, page_no: int, attempt: int) -> str:
        """One attempt's result: attempts never share a key, so a stale attempt cannot replace
        the result of the attempt that won the page (the row's `result_key` names the winner)."""
        return f"{BlobKeys.page_results(tenant_id, job_id)}/{page_no:05d}.a{attempt}.json"

    @staticmethod
    def result(tenant_id: str, job_id: str, fmt: str) -> str:
        return f"{tenant_id}/{job_id}/result.{fmt}"
