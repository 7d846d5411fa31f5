"""A request body over the limit gets a 413 `payload_too_large` the client can read, and the
connection is closed cleanly (api/body_limit.py), against a real `tessera serve` (uvicorn).

Clients that send the whole body before reading (Python's urllib, raw sockets) used to see a
connection reset instead of any answer when the server refused early; clients that wait for
`100 Continue` must get the answer without sending the body at all."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from tests.api.conftest import Api, embedded_api
from tests.api.helpers import pdf

pytestmark = pytest.mark.slow
UPLOAD_LIMIT, JSON_LIMIT = 8 * 2**20, 64 * 2**10
BIG = 20 * 2**20  # over both limits, under the drain bound (4 x the upload limit)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """`tessera serve --no-worker` on the embedded defaults with small body limits."""
    with embedded_api(tmp_path_factory.mktemp("body-limit"),
                      TESSERA_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT),
                      TESSERA_MAX_JSON_BODY_BYTES=str(JSON_LIMIT)) as api:
        yield api


@pytest.fixture(scope="module")
def key(small: Api) -> str:
    return small.new_client().http.headers["authorization"].split()[1]


def raw_exchange(api: Api, head: str, body_chunks: Iterator[bytes] | None) -> tuple[bytes, bytes]:
    """Send `head` then every body chunk (as a client that does not listen while sending), then
    read until the server closes. (everything received, how the connection ended: b"" for FIN)."""
    with socket.create_connection(("127.0.0.1", api.server.port), timeout=30) as sock:
        sock.sendall(head.encode("latin-1"))
        for chunk in body_chunks or ():
            sock.sendall(chunk)  # a reset while sending raises here
        received = b""
        while True:
            data = sock.recv(65536)  # a reset raises ConnectionResetError here
            if not data:
                return received, b""
            received += data


def zeros(total: int, chunk: int = 2**20) -> Iterator[bytes]:
    for start in range(0, total, chunk):
        yield b" " * min(chunk, total - start)


def status_and_body(response: bytes) -> tuple[int, dict, str]:
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    return int(lines[0].split()[1]), json.loads(body), "\n".join(lines[1:]).lower()


def test_a_20_mb_json_body_without_expect_gets_a_clean_413(small: Api, key: str) -> None:
    head = (f"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {BIG}\r\n\r\n")
    response, ending = raw_exchange(small, head, zeros(BIG))
    status, body, headers = status_and_body(response)
    assert (status, body["error"]["code"]) == (413, "payload_too_large") and ending == b""
    assert "connection: close" in headers


def test_urllib_sending_20_mb_reads_the_413(small: Api, key: str) -> None:
    for path, content_type in (("/v1/jobs", "application/json"), ("/v1/batches", "application/json"),
                               ("/v1/jobs", "multipart/form-data; boundary=x")):
        request = urllib.request.Request(
            small.server.url + path, data=b" " * BIG, method="POST",
            headers={"Authorization": f"Bearer {key}", "Content-Type": content_type})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=60)
        assert refused.value.code == 413, path
        assert json.loads(refused.value.read())["error"]["code"] == "payload_too_large"


def test_expect_100_continue_is_answered_before_any_body_is_sent(small: Api, key: str) -> None:
    head = (f"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {BIG}\r\nExpect: 100-continue\r\n\r\n")
    started = time.monotonic()
    response, ending = raw_exchange(small, head, None)
    status, body, _ = status_and_body(response)
    assert (status, body["error"]["code"], ending) == (413, "payload_too_large", b"")
    assert not response.startswith(b"HTTP/1.1 100") and time.monotonic() - started < 10


def test_a_chunked_body_is_cut_off_at_the_limit(small: Api, key: str) -> None:
    head = (f"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunks = [b"%x\r\n%s\r\n" % (len(c), c) for c in zeros(4 * JSON_LIMIT, 16 * 2**10)] + [b"0\r\n\r\n"]
    response, ending = raw_exchange(small, head, iter(chunks))
    status, body, _ = status_and_body(response)
    assert (status, body["error"]["code"], ending) == (413, "payload_too_large", b"")


def test_an_early_401_does_not_reset_a_client_still_sending(small: Api) -> None:
    request = urllib.request.Request(
        small.server.url + "/v1/jobs", data=b" " * (UPLOAD_LIMIT - 4096), method="POST",
        headers={"Authorization": "Bearer tsk_wrong", "Content-Type": "multipart/form-data; boundary=x"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=60)
    assert refused.value.code == 401


def test_bodies_within_the_limits_still_work(small: Api) -> None:
    client = small.new_client()
    accepted = client.submit(pdf(1, uuid.uuid4().hex[:6]), "ok.pdf")
    assert accepted.status_code == 202, accepted.text
    large = client.submit(b"%PDF" + b" " * (UPLOAD_LIMIT + 10), "large.pdf")
    assert large.status_code == 413 and large.json()["error"]["code"] == "payload_too_large"
    assert client.http.get(f"/v1/jobs/{accepted.json()['id']}").status_code == 200  # reconnects
