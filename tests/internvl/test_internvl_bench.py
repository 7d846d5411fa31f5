"""bench/internvl_gpu.py --tiny runs end to end on the CPU (the GPU run is the same script)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.internvl

ROOT = Path(__file__).resolve().parents[2]


def test_bench_tiny(tmp_path):
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "internvl_gpu.py"), "--tiny", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    records = json.loads(out.read_text())
    kinds = [(r["what"], r.get("tiles")) for r in records]
    assert kinds == [
        ("build", None),
        ("engine", 13),
        ("plain_generate_batch1", 13),
        ("ratio", 13),
        ("engine", 41),
        ("plain_generate_batch1", 41),
        ("ratio", 41),
    ]
    for record in records:
        if record["what"] in ("engine", "plain_generate_batch1"):
            # output length is forced: every page produced exactly new_tokens tokens
            assert record["generated_tokens"] == record["pages"] * record["new_tokens"]
            assert record.get("failed", []) == []
