"""Both blob stores behave the same, against a folder and a real S3 HTTP server (moto)."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.blobs import BlobKeys, BlobNotFound, LocalBlobStore, S3BlobStore
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
