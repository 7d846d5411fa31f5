"""The guard on client-given URLs (tessera/netguard.py, api/sources.py), against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import gzip
import ipaddress
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import api.sources as sources
from api.sources import fetch_url
from tessera import netguard
from tessera.netguard import is_public
from tessera.config import Settings
from tessera.errors import PayloadTooLarge, SourceNotAllowed, SourceNotFound, SourceUnavailable
from tests.data.hostile import corpus
from tests.security.http_helpers import LocalHttp, Reply

PDF = corpus.text_pdf()
MiB = 2**20


@pytest.fixture
def web() -> Iterator[LocalHttp]:
    with LocalHttp() as server:
        yield server


def settings(tmp_path: Path, **values: object) -> Settings:
    return Settings(home=tmp_path, **{"allow_private_urls": True, "url_fetch_timeout_s": 5.0, **values})


@pytest.mark.parametrize(("address", "public"), [
    ("8.8.8.8", True), ("2606:4700:4700::1111", True),
    ("127.0.0.1", False), ("127.8.9.10", False), ("10.1.2.3", False), ("172.16.0.1", False),
    ("192.168.1.1", False), ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False),
    ("224.0.0.251", False), ("239.255.255.250", False), ("240.0.0.1", False), ("255.255.255.255", False),
    ("::1", False), ("::", False), ("fe80::1", False), ("fc00::1", False), ("ff02::1", False),
    ("::ffff:127.0.0.1", False), ("::ffff:169.254.169.254", False), ("64:ff9b::a9fe:a9fe", False),
    ("2002:7f00:1::", False), ("2001:db8::1", False),
])
def test_which_addresses_are_public(address: str, public: bool) -> None:
    assert is_public(ipaddress.ip_address(address)) is public


def test_fetches_when_private_addresses_are_allowed(web: LocalHttp, tmp_path: Path) -> None:
    url = web.serve("/doc.pdf", Reply(200, PDF))
    assert fetch_url(url, settings(tmp_path)) == PDF


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "127.1", "2130706433", "0x7f.0.0.1"])
def test_private_addresses_are_refused_by_default(web: LocalHttp, tmp_path: Path, host: str) -> None:
    web.serve("/doc.pdf", Reply(200, PDF))
    with pytest.raises(SourceNotAllowed):
        fetch_url(f"http://{host}:{web.port}/doc.pdf", settings(tmp_path, allow_private_urls=False))
    assert web.requests == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://127.0.0.1:70/", "ftp://example.com/a.pdf",
                                 "http:///nohost", "not a url", "javascript:alert(1)"])
def test_only_http_and_https_urls(url: str, tmp_path: Path) -> None:
    with pytest.raises(SourceNotAllowed):
        fetch_url(url, settings(tmp_path))


def test_redirects_are_followed_and_rechecked(web: LocalHttp, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    web.serve("/doc.pdf", Reply(200, PDF))
    web.serve("/hop", Reply(302, headers={"Location": "/doc.pdf"}))
    assert fetch_url(web.url + "/hop", settings(tmp_path)) == PDF
    web.serve("/to-file", Reply(302, headers={"Location": "file:///etc/passwd"}))
    with pytest.raises(SourceNotAllowed):
        fetch_url(web.url + "/to-file", settings(tmp_path))
    # Treat 127.0.0.1 as public and 127.0.0.2 as private: the first hop passes, the redirect does not.
    monkeypatch.setattr(netguard, "is_public", lambda ip: str(ip) == "127.0.0.1")
    web.serve("/to-private", Reply(307, headers={"Location": f"http://127.0.0.2:{web.port}/doc.pdf"}))
    with pytest.raises(SourceNotAllowed):
        fetch_url(web.url + "/to-private", settings(tmp_path, allow_private_urls=False))
    assert web.received("/to-private") and len(web.received("/doc.pdf")) == 1


def test_too_many_redirects(web: LocalHttp, tmp_path: Path) -> None:
    web.serve("/loop", Reply(302, headers={"Location": "/loop"}))
    with pytest.raises(SourceUnavailable):
        fetch_url(web.url + "/loop", settings(tmp_path, url_max_redirects=3))
    assert len(web.received("/loop")) == 4


def test_connects_to_the_address_it_checked(web: LocalHttp, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the guard resolves the name: `rebind.invalid` exists for the guard alone, so the fetch
    works only if the connection goes to the address the guard checked (no second lookup that a
    rebinding DNS server could answer differently)."""
    real = socket.getaddrinfo

    class Resolver:
        SOCK_STREAM, gaierror = socket.SOCK_STREAM, socket.gaierror

        @staticmethod
        def getaddrinfo(host: str, *args: object, **kwargs: object) -> list:
            return real("127.0.0.1" if host == "rebind.invalid" else host, *args, **kwargs)

    monkeypatch.setattr(netguard, "socket", Resolver)
    web.serve("/doc.pdf", Reply(200, PDF))
    assert fetch_url(f"http://rebind.invalid:{web.port}/doc.pdf", settings(tmp_path)) == PDF
    assert web.received("/doc.pdf")[0].headers["host"] == f"rebind.invalid:{web.port}"


def test_size_is_bounded(web: LocalHttp, tmp_path: Path) -> None:
    small = settings(tmp_path, max_upload_bytes=1 * MiB)
    web.serve("/declared", Reply(200, b"\x00" * (2 * MiB)))
    web.serve("/chunked", Reply(200, (b"\x00" * (256 * 1024) for _ in range(16))))
    web.serve("/gzip", Reply(200, gzip.compress(b"\x00" * (8 * MiB)), {"Content-Encoding": "gzip"}))
    for path in ("/declared", "/chunked", "/gzip"):
        with pytest.raises(PayloadTooLarge):
            fetch_url(web.url + path, small)


def test_time_is_bounded(web: LocalHttp, tmp_path: Path) -> None:
    web.serve("/slow", Reply(200, (b"%PDF-" for _ in range(100)), delay_s=0.3))
    started = time.monotonic()
    with pytest.raises(SourceUnavailable):
        fetch_url(web.url + "/slow", settings(tmp_path, url_fetch_timeout_s=1.0))
    assert time.monotonic() - started < 5


def test_error_statuses(web: LocalHttp, tmp_path: Path) -> None:
    web.serve("/gone", Reply(410))
    web.serve("/broken", Reply(500))
    with pytest.raises(SourceNotFound):
        fetch_url(web.url + "/missing", settings(tmp_path))
    with pytest.raises(SourceNotFound):
        fetch_url(web.url + "/gone", settings(tmp_path))
    with pytest.raises(SourceUnavailable):
        fetch_url(web.url + "/broken", settings(tmp_path))
    with pytest.raises(SourceUnavailable):
        fetch_url("http://127.0.0.1:1/closed.pdf", settings(tmp_path))


def test_s3_sources_only_from_listed_buckets(tmp_path: Path) -> None:
    allowed = settings(tmp_path, s3_source_buckets="inbox, scans", s3_bucket="tessera-blobs")
    assert sources.parse_s3_uri("s3://inbox/a/b.pdf", allowed) == ("inbox", "a/b.pdf")
    for uri in ("s3://other/a.pdf", "s3://tessera-blobs/tenant/job/input", "https://inbox/a.pdf"):
        with pytest.raises(SourceNotAllowed):
            sources.parse_s3_uri(uri, allowed)
    with pytest.raises(ValueError, match="must not list TESSERA_S3_BUCKET"):
        Settings(home=tmp_path, s3_bucket="b", s3_source_buckets="b")


def test_display_url_hides_credentials_and_query() -> None:
    assert sources.display_url("https://user:pw@example.com/a/b.pdf?X-Amz-Signature=abc#f") == \
        "https://example.com/a/b.pdf"
