"""Tiny InternVL checkpoints shared by the InternVL tests: built and converted once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.utils.tiny_internvl import build_tiny_original_checkpoint


@pytest.fixture(scope="session")
def tiny_original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random checkpoint in the original OpenGVLab layout."""
    return build_tiny_original_checkpoint(tmp_path_factory.mktemp("internvl") / "original")


@pytest.fixture(scope="session")
def tiny_native(tiny_original: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same checkpoint converted to the native layout (8 MiB shards: exercises the index)."""
    from workers.internvl.checkpoint import convert_checkpoint

    dst = tmp_path_factory.mktemp("internvl") / "native"
    convert_checkpoint(tiny_original, dst, max_shard_bytes=8 * 2**20)
    return dst


@pytest.fixture(scope="session")
def tiny_settings(tiny_native: Path):
    from tessera.config import Settings

    return Settings(
        engine="internvl",
        model_path=tiny_native,
        internvl_max_new_tokens=6,
        engine_batch_size=8,
        internvl_vision_chunk_tiles=5,
        internvl_device="cpu",
    )


@pytest.fixture(scope="session")
def tiny_engine(tiny_settings):
    from workers.internvl.engine import InternVLEngine

    return InternVLEngine.from_settings(tiny_settings)
