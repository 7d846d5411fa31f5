"""Both blob stores behave the same, against a folder and a real S3 HTTP server (moto)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from storage.blobs import BlobKeys, BlobNotFound, LocalBlobStore, S3BlobStore, read_ahead
from tests.utils.tessera_procs import s3_client


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path):  # noqa: ANN201
    if request.param == "local":
        return LocalBlobStore(tmp_path / "blobs")
    env = request.getfixturevalue("stack_env")
    return S3BlobStore(s3_client(env), env["TESSERA_S3_BUCKET"])


def test_put_get_and_delete_a_job_prefix(store, tmp_path: Path) -> None:  # noqa: ANN001
    prefix = BlobKeys.job_prefix(f"t-{tmp_path.name}", "job1")
    store.put(f"{prefix}/input", b"\x00\x01data")
    store.put(f"{prefix}/pages/00001.png", b"png")
    store.put(f"{prefix}x/input", b"a neighbour with the same leading characters")
    assert store.get(f"{prefix}/input") == b"\x00\x01data"
    assert store.delete_prefix(prefix) == 2
    with pytest.raises(BlobNotFound):
        store.get(f"{prefix}/input")
    assert store.get(f"{prefix}x/input").startswith(b"a neighbour")
    store.ping()


def test_keys_lists_a_folder_and_delete_removes_one_blob(store, tmp_path: Path) -> None:  # noqa: ANN001
    results = BlobKeys.page_results(f"t-{tmp_path.name}", "job1")
    for attempt in (1, 2):
        store.put(BlobKeys.page_result(f"t-{tmp_path.name}", "job1", 4, attempt), b"{}")
    store.put(f"{results}x/a.json", b"a neighbour folder")
    assert store.keys(results) == [f"{results}/00004.a1.json", f"{results}/00004.a2.json"]
    store.delete(f"{results}/00004.a1.json")
    store.delete(f"{results}/00004.a1.json")  # already gone: not an error
    assert store.keys(results) == [f"{results}/00004.a2.json"]
    assert store.keys(f"{results}/none") == []


@pytest.mark.parametrize("key", ["../escape", "/abs", "a//b", "a/./b", "a/../b", ""])
def test_keys_cannot_escape_the_store(store, key: str) -> None:  # noqa: ANN001
    with pytest.raises(ValueError):
        store.put(key, b"x")


def test_keys_are_spelled_from_ids_only() -> None:
    assert BlobKeys.page_image("t", "j", 7) == "t/j/pages/00007.png"
    assert BlobKeys.page_result("t", "j", 12, 3) == "t/j/results/00012.a3.json"
    assert BlobKeys.result("t", "j", "md") == "t/j/result.md"


def test_read_ahead_keeps_the_order_and_a_bounded_number_of_reads_in_flight(store, tmp_path: Path) -> None:  # noqa: ANN001
    prefix = BlobKeys.job_prefix(f"t-{tmp_path.name}", "job1")
    keys = [f"{prefix}/pages/{n:05d}.png" for n in range(1, 21)]
    for n, key in enumerate(keys, 1):
        store.put(key, f"page {n}".encode())
    lock, in_flight, most = threading.Lock(), [0], [0]

    def slow_get(key: str) -> bytes:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        time.sleep(0.01)  # a round trip: lets the reads overlap
        try:
            return store.get(key)
        finally:
            with lock:
                in_flight[0] -= 1

    assert list(read_ahead(slow_get, keys, ahead=4)) == [f"page {n}".encode() for n in range(1, 21)]
    assert 1 < most[0] <= 4
    assert list(read_ahead(store.get, keys[:1])) == [b"page 1"] and list(read_ahead(store.get, [])) == []


def test_read_ahead_raises_a_failed_read_when_its_turn_comes(store, tmp_path: Path) -> None:  # noqa: ANN001
    prefix = BlobKeys.job_prefix(f"t-{tmp_path.name}", "job1")
    store.put(f"{prefix}/a", b"a")
    reads = read_ahead(store.get, [f"{prefix}/a", f"{prefix}/missing", f"{prefix}/a"])
    assert next(reads) == b"a"
    with pytest.raises(BlobNotFound):
        next(reads)
