"""Documents fetched for a batch (http(s) URLs, allow-listed S3 buckets), and the guard every
request to a client-given URL goes through (URL sources here, webhooks in workers/webhooks.py).

The guard resolves the host itself, refuses the request unless every address is public
(loopback, private, link-local, multicast, reserved, CGNAT and the IPv4 inside IPv6 forms are
refused; `TESSERA_ALLOW_PRIVATE_URLS=true` lifts this for tests), then connects to the address
it checked (TLS still verifies the host name), so a DNS answer that changes between check and
connect cannot reach an internal address. Redirects are followed by hand and re-checked.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
from pydantic import BaseModel, ConfigDict, Field

from api.archives import Entry, display_name
from tessera.config import Settings
from tessera.errors import (
    InvalidInput,
    PayloadTooLarge,
    SourceNotAllowed,
    SourceNotFound,
    SourceUnavailable,
)

FETCH_PARALLEL = 4
NAT64 = ipaddress.ip_network("64:ff9b::/96")
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UrlSource(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(max_length=2000)


class S3Source(BaseModel):
    model_config = ConfigDict(extra="forbid")
    s3_uri: str = Field(max_length=2000)


# ---------------------------------------------------------------- the address guard


def check_url(url: str) -> httpx.URL:
    """Parse a client-given URL: http or https, with a host. Nothing is resolved yet."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise SourceNotAllowed(f"not a valid URL: {exc}") from exc
    if parsed.scheme not in ("http", "https"):
        raise SourceNotAllowed(f"only http and https URLs are allowed, not {parsed.scheme or 'none'!r}")
    if not parsed.host:
        raise SourceNotAllowed("the URL has no host")
    return parsed


def is_public(ip: IpAddress) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_private
                                 or ip.is_loopback or ip.is_link_local or ip.is_unspecified)


def resolve_allowed(host: str, port: int, allow_private: bool) -> str:
    """The address to connect to: the first one `host` resolves to, if every one is allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise SourceUnavailable(f"cannot resolve host {host!r}") from exc
    addresses = list(dict.fromkeys(info[4][0].split("%", 1)[0] for info in infos))
    if not allow_private:
        refused = [a for a in addresses if not is_public(ipaddress.ip_address(a))]
        if refused:
            raise SourceNotAllowed(f"host {host!r} resolves to a non-public address ({refused[0]}); "
                                   "Tessera only fetches from public addresses")
    if not addresses:
        raise SourceUnavailable(f"host {host!r} has no address")
    return addresses[0]


def pinned(url: httpx.URL, allow_private: bool) -> tuple[httpx.URL, dict[str, str], dict[str, str]]:
    """(URL with the checked IP as host, Host header, extensions) for one request to `url`."""
    host = url.raw_host.decode("ascii")
    address = resolve_allowed(host, url.port or (443 if url.scheme == "https" else 80), allow_private)
    extensions = {"sni_hostname": host} if url.scheme == "https" and not _is_ip(host) else {}
    return url.copy_with(host=address), {"Host": url.netloc.decode("ascii")}, extensions


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def guarded_client(timeout_s: float) -> httpx.Client:
    """No proxies from the environment, no automatic redirects (each hop is checked by hand)."""
    return httpx.Client(trust_env=False, follow_redirects=False,
                        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)))


@contextmanager
def guarded_send(client: httpx.Client, method: str, url: httpx.URL, allow_private: bool, *,
                 content: bytes | None = None, headers: dict[str, str] | None = None
                 ) -> Iterator[httpx.Response]:
    """One request (no redirect following) to the checked address of `url`, streamed."""
    target, host_header, extensions = pinned(url, allow_private)
    request = client.build_request(method, target, content=content,
                                   headers={**(headers or {}), **host_header}, extensions=extensions)
    response = client.send(request, stream=True)
    try:
        yield response
    finally:
        response.close()


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
        if isinstance(source, UrlSource):
            name, fetch = display_url(source.url), lambda: fetch_url(source.url, settings)
        else:
            name, fetch = source.s3_uri, lambda: fetch_s3(client, source.s3_uri, settings)
        try:
            return Entry(display_name(name), data=fetch())
        except InvalidInput as exc:
            return Entry(display_name(name), error=exc)

    with ThreadPoolExecutor(max_workers=FETCH_PARALLEL, thread_name_prefix="fetch") as pool:
        for start in range(0, len(items), FETCH_PARALLEL):
            yield from pool.map(one, items[start:start + FETCH_PARALLEL])
