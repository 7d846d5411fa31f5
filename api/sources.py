"""Documents fetched for a batch: http(s) URLs and allow-listed S3 buckets.

Every URL request goes through tessera/netguard.py (public addresses only, pinned to the
address checked); redirects are followed by hand here and each hop is checked again.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
from pydantic import BaseModel, ConfigDict, Field

from api.archives import Entry, display_name
from api.schemas import JobOptions
from tessera.config import Settings
from tessera.netguard import check_url, guarded_client, guarded_send
from tessera.errors import (
    InvalidInput,
    PayloadTooLarge,
    SourceNotAllowed,
    SourceNotFound,
    SourceUnavailable,
)

FETCH_PARALLEL = 4


class UrlSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2000)


class S3Source(BaseModel):
    model_config = ConfigDict(extra="forbid")
    s3_uri: str = Field(max_length=2000)


class JobSourceIn(BaseModel):
    """POST /v1/jobs as JSON: one document fetched from a URL or an allow-listed S3 bucket."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"source": {"url": "https://example.com/report.pdf"}, "options": {"pages": "1-3"}},
        {"source": {"s3_uri": "s3://scans/2026/box-17/0001.tif"}},
    ]})

    source: UrlSource | S3Source
    options: JobOptions = Field(default_factory=JobOptions)


# ---------------------------------------------------------------- URL sources


def fetch_url(url: str, settings: Settings) -> bytes:
    """GET a URL source: bounded in size (max_upload_bytes) and time, redirects re-checked."""
    current = check_url(url)
    deadline = time.monotonic() + settings.url_fetch_timeout_s
    with guarded_client(settings.url_fetch_timeout_s) as client:
        for _ in range(settings.url_max_redirects + 1):
            try:
                with guarded_send(client, "GET", current, settings.allow_private_urls) as response:
                    if response.is_redirect and "location" in response.headers:
                        current = check_url(str(current.join(response.headers["location"])))
                        continue
                    _check_status(response)
                    return _read_bounded(response, settings.max_upload_bytes, deadline)
            except httpx.HTTPError as exc:
                raise SourceUnavailable(f"fetching {display_url(current)} failed: "
                                        f"{type(exc).__name__}") from exc
    raise SourceUnavailable(f"more than {settings.url_max_redirects} redirects")


def _check_status(response: httpx.Response) -> None:
    if response.status_code in (404, 410):
        raise SourceNotFound(f"the URL answered HTTP {response.status_code}")
    if not 200 <= response.status_code < 300:
        raise SourceUnavailable(f"the URL answered HTTP {response.status_code}")


def _read_bounded(response: httpx.Response, limit: int, deadline: float) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the document is larger than the {limit // (1024 * 1024)} MiB limit")
    body = bytearray()
    for chunk in response.iter_bytes():  # as it arrives, decoded: a gzip bomb is bounded here too
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"the document is larger than the {limit // (1024 * 1024)} MiB limit")
        if time.monotonic() > deadline:
            raise SourceUnavailable("the download took too long")
    return bytes(body)


def display_url(url: httpx.URL | str) -> str:
    """scheme://host/path only: query strings (presigned URLs) and credentials stay private."""
    try:
        parsed = httpx.URL(str(url))
        return str(parsed.copy_with(query=None, fragment=None, userinfo=b""))[:500]
    except (httpx.InvalidURL, TypeError, ValueError):
        return "(invalid URL)"


# ---------------------------------------------------------------- S3 sources


def parse_s3_uri(uri: str, settings: Settings) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise SourceNotAllowed("an S3 source is an s3://bucket/key URI")
    bucket, _, key = uri[len("s3://"):].partition("/")
    if bucket not in settings.s3_source_buckets or bucket == settings.s3_bucket:
        raise SourceNotAllowed(f"bucket {bucket!r} is not open to batch sources "
                               "(TESSERA_S3_SOURCE_BUCKETS)")
    return bucket, key


def s3_client(settings: Settings):  # noqa: ANN201 (boto3 clients are untyped)
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region,
                        config=Config(retries={"max_attempts": 3, "mode": "standard"},
                                      connect_timeout=5, read_timeout=60))


def fetch_s3(client, uri: str, settings: Settings) -> bytes:  # noqa: ANN001
    bucket, key = parse_s3_uri(uri, settings)
    if not key or key.endswith("/"):
        raise SourceNotFound(f"{uri} names no object")
    limit = settings.max_upload_bytes
    try:
        response = client.get_object(Bucket=bucket, Key=key)
        if response.get("ContentLength", 0) > limit:
            raise PayloadTooLarge(f"the object is larger than the {limit // (1024 * 1024)} MiB limit")
        body = response["Body"].read(limit + 1)
    except client.exceptions.NoSuchKey as exc:
        raise SourceNotFound(f"no object {uri}") from exc
    except client.exceptions.ClientError as exc:
        raise _s3_error(uri, exc) from exc
    if len(body) > limit:
        raise PayloadTooLarge(f"the object is larger than the {limit // (1024 * 1024)} MiB limit")
    return body


def list_s3_prefix(client, prefix_uri: str, settings: Settings) -> list[str]:  # noqa: ANN001
    """The objects under an s3://bucket/prefix/, as URIs; at most archive_max_entries of them."""
    from tessera.errors import EmptyBatch, TooManyEntries

    bucket, prefix = parse_s3_uri(prefix_uri, settings)
    uris: list[str] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if item["Key"].endswith("/"):
                    continue
                uris.append(f"s3://{bucket}/{item['Key']}")
                if len(uris) > settings.archive_max_entries:
                    raise TooManyEntries(f"more than {settings.archive_max_entries} objects under "
                                         f"{prefix_uri}")
    except client.exceptions.ClientError as exc:
        raise _s3_error(prefix_uri, exc) from exc
    if not uris:
        raise EmptyBatch(f"no objects under {prefix_uri}")
    return uris


def _s3_error(uri: str, exc: Exception) -> InvalidInput:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    if code in ("NoSuchKey", "NoSuchBucket", "404"):
        return SourceNotFound(f"no object {uri}")
    return SourceUnavailable(f"reading {uri} failed: {code or type(exc).__name__}")


# ---------------------------------------------------------------- many sources


def fetch_all(sources: Iterable[UrlSource | S3Source], settings: Settings) -> Iterator[Entry]:
    """Fetch sources a few at a time, in input order; a source that cannot be read becomes an
    entry with its error. Only a few documents are in memory at once."""
    items = list(sources)
    client = s3_client(settings) if any(isinstance(s, S3Source) for s in items) else None

    def one(source: UrlSource | S3Source) -> Entry:
        try:
            return Entry(source_name(source), data=fetch_source(source, settings, client))
        except InvalidInput as exc:
            return Entry(source_name(source), error=exc)

    with ThreadPoolExecutor(max_workers=FETCH_PARALLEL, thread_name_prefix="fetch") as pool:
        for start in range(0, len(items), FETCH_PARALLEL):
            yield from pool.map(one, items[start:start + FETCH_PARALLEL])


def source_name(source: UrlSource | S3Source) -> str:
    """What a source is called in listings: the URL without its query, or the S3 URI."""
    return display_name(display_url(source.url) if isinstance(source, UrlSource) else source.s3_uri)


def fetch_source(source: UrlSource | S3Source, settings: Settings, client=None) -> bytes:  # noqa: ANN001
    """One source's bytes, through the same guards as every source (netguard, bucket allow-list,
    size limit); raises InvalidInput (source_not_allowed, source_unavailable, ...)."""
    if isinstance(source, UrlSource):
        return fetch_url(source.url, settings)
    return fetch_s3(client or s3_client(settings), source.s3_uri, settings)
