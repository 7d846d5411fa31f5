"""The guard every request to a client-given URL goes through: URL sources (api/sources.py)
and webhooks (workers/webhooks.py).

It resolves the host itself, refuses the request unless every address is public (loopback,
private, link-local, multicast, reserved, CGNAT and the IPv4 inside IPv6 forms are refused;
`TESSERA_ALLOW_PRIVATE_URLS=true` lifts this for tests), then connects to the address it
checked (TLS still verifies the host name), so a DNS answer that changes between check and
connect cannot reach an internal address. Redirects are never followed automatically: the
caller re-checks each hop.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tessera.errors import SourceNotAllowed, SourceUnavailable

NAT64 = ipaddress.ip_network("64:ff9b::/96")
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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
