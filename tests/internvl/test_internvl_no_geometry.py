"""An InternVL page result says it has no geometry: no lines, `positioned` false, so the archive
formats carry its text unplaced (workers/outputs/) and nothing invents boxes for it."""

from __future__ import annotations

import pytest
from PIL import Image

from workers.engines.base import PageInput

pytestmark = pytest.mark.internvl


def test_internvl_results_are_not_positioned(tiny_engine) -> None:  # noqa: ANN001
    [result] = tiny_engine.process([PageInput(image=Image.new("RGB", (600, 400), "white"), max_tiles=1)])
    stored = result.to_json()
    assert stored["engine"] == "internvl" and stored["lines"] == []
    assert stored["positioned"] is False
