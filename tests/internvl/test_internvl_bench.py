"""The InternVL benches run end to end on the CPU (the GPU runs are the same scripts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.internvl

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str) -> str:
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


def test_gpu_bench_tiny(tmp_path):
    out = tmp_path / "bench.json"
    _run("internvl_gpu.py", "--tiny", "--json", str(out))
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


def test_decode_bench_checks_both_decoders_agree():
    lines = _run(
        "internvl_decode.py", "--rows", "4", "--prompt", "40", "--new-tokens", "8", "--repeats", "1"
    )
    records = [json.loads(line) for line in lines.splitlines()]
    assert [(r["what"], r.get("decoder")) for r in records] == [
        ("setup", None),
        ("forced", "tessera"),
        ("forced", "generate"),
        ("forced_ratio", None),
        ("varied", "tessera"),
        ("varied", "generate"),
        ("varied_ratio", None),
        ("paired", "tessera"),
        ("paired", "tessera_no_prefix_copy"),
        ("paired", "generate"),
        ("paired_ratio", None),
    ]
    # on the CPU in float32 every decoder gives every prompt the same tokens
    assert all(r["same_tokens"] is True for r in records if r["what"].endswith("_ratio"))
    assert records[1]["useful_tokens"] == 4 * 8 and records[4]["prompts"] == 8
