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


def test_prerendered_samples_are_the_pages_and_truth_the_device_check_reads(tmp_path):
    """The device image has no poppler: `--prerender` gives the same pages, as images, each
    with its truth, for `CHECK=1 bash bench/on_device.sh`."""
    import numpy as np

    from tessera.model_check import sample_pages

    _run("model_check_random.py", "--prerender", str(tmp_path / "samples"))
    original = sample_pages(ROOT / "samples", ("ocr",), 12)
    rendered = sample_pages(tmp_path / "samples", ("ocr",), 12)
    assert len(rendered) == len(original) == 8
    for before, after in zip(original, rendered):
        assert np.array_equal(np.asarray(before.image.convert("RGB")), np.asarray(after.image.convert("RGB")))
        name, number = before.ref.rsplit("#", 1)
        pdf = name.endswith(".pdf")
        folder = f"{Path(name).stem}.p{number}" if pdf else Path(name).stem
        copied = tmp_path / "samples" / "truth" / folder / ("1.txt" if pdf else f"{number}.txt")
        assert copied.read_text() == (ROOT / "samples" / "truth" / Path(name).stem / f"{number}.txt").read_text()
