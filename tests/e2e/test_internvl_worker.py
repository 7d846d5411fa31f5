"""The product path on the CPU: image -> tiles -> InternVL (tiny random weights, converted from the
original checkpoint layout) -> parsed PageResult, through a real `tessera serve` and its worker."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tessera.config import Settings
from tests.utils.tessera_procs import Server, create_api_key, tessera_env
from tests.utils.tiny_internvl import build_tiny_original_checkpoint
from workers.engines.base import PageInput
from workers.internvl.checkpoint import convert_checkpoint
from workers.internvl.engine import InternVLEngine
from workers.internvl.tiling import plan_tiles

pytestmark = [pytest.mark.slow, pytest.mark.internvl]


@pytest.fixture(scope="module")
def converted_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("model")
    original = build_tiny_original_checkpoint(root / "original")
    convert_checkpoint(original, root / "native")
    return root / "native"


def test_a_page_goes_through_the_internvl_engine_in_a_real_worker(converted_model: Path, tmp_path: Path) -> None:
    env = tessera_env({"TESSERA_HOME": str(tmp_path / "home"), "TESSERA_ENGINE": "internvl",
                       "TESSERA_MODEL_PATH": str(converted_model), "TESSERA_INTERNVL_DEVICE": "cpu",
                       "TESSERA_INTERNVL_MAX_NEW_TOKENS": "6",
                       # a noise page has no text to judge its orientation by: its warning would be
                       # the split stage's, not the engine's this test compares
                       "TESSERA_DETECT_ORIENTATION": "false"})
    key = create_api_key(env, "vision")
    page = Image.fromarray(np.random.default_rng(5).integers(0, 256, (1300, 800, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    page.save(buffer, "PNG")
    server = Server(env, tmp_path / "serve.log").start()
    try:
        client = server.client(key)
        response = client.submit(buffer.getvalue(), "page.png", options={"tasks": ["ocr", "charts"],
                                                                           "max_tiles": 6})
        assert response.status_code == 202, response.text
        job = client.wait(response.json()["id"], timeout=240)
        result = client.http.get(f"/v1/jobs/{job['id']}/pages/1").json()
    finally:
        server.stop()
    assert job["status"] == "succeeded", server.tail()
    plan = plan_tiles(800, 1300, max_tiles=6)
    assert result["engine"] == "internvl"
    assert result["tiles"]["grid"] == list(plan.grid) and result["tiles"]["count"] == plan.tiles == 7
    assert result["timings"] and all(value >= 0 for value in result["timings"].values())
    # The same engine in this process, on the same page, says exactly what the worker said.
    engine = InternVLEngine.from_settings(Settings(engine="internvl", model_path=converted_model,
                                                   internvl_device="cpu", internvl_max_new_tokens=6))
    [expected] = engine.process([PageInput(image=page, tasks=("ocr", "charts"), max_tiles=6)])
    assert result["text"] == expected.text and result["text"]
    assert result["charts"] == [chart.to_json() for chart in expected.charts]
    assert result["warnings"] == expected.warnings
