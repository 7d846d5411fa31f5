"""Tiny InternVL checkpoints shared by the InternVL tests: built and converted once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.utils.tiny_internvl import build_tiny_original_checkpoint


def _convert(src: Path, dst: Path) -> Path:
    from workers.internvl.checkpoint import convert_checkpoint

    convert_checkpoint(src, dst, max_shard_bytes=8 * 2**20)
    return dst


def _engine(native: Path):
    from tessera.config import Settings
    from workers.internvl.engine import InternVLEngine

    settings = Settings(
        engine="internvl",
        model_path=native,
        internvl_max_new_tokens=6,
        engine_batch_size=8,
        internvl_vision_chunk_tiles=5,
        internvl_device="cpu",
    )
    return InternVLEngine.from_settings(settings)


@pytest.fixture(scope="session")
def tiny_original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random checkpoint in the original OpenGVLab layout, ps_version v1 as released."""
    return build_tiny_original_checkpoint(tmp_path_factory.mktemp("internvl") / "original")


@pytest.fixture(scope="session")
def tiny_native(tiny_original: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same checkpoint converted to the native layout (8 MiB shards: exercises the index)."""
    return _convert(tiny_original, tmp_path_factory.mktemp("internvl") / "native")


@pytest.fixture(scope="session")
def tiny_engine(tiny_native: Path):
    """The engine on the tiny v1 checkpoint, on the CPU, answers cut at 6 tokens."""
    return _engine(tiny_native)


@pytest.fixture(scope="session")
def tiny_original_v2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another tiny checkpoint (other weights), ps_version v2 (the later training scripts')."""
    dst = tmp_path_factory.mktemp("internvl") / "original-v2"
    return build_tiny_original_checkpoint(dst, seed=1, ps_version="v2")


@pytest.fixture(scope="session")
def tiny_native_v2(tiny_original_v2: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _convert(tiny_original_v2, tmp_path_factory.mktemp("internvl") / "native-v2")


@pytest.fixture(scope="session")
def tiny_engine_v2(tiny_native_v2: Path):
    return _engine(tiny_native_v2)
