"""The whole path, golden. Tiny random checkpoints in the ORIGINAL format (ps_version v1 as
released, and v2), converted, run through `tessera run` with the internvl engine, must give
exactly the greedy tokens (and text, and tile grids) of the independent reference
(tests/internvl/reference_pipeline.py: its own tiling, prompt, SentencePiece tokenisation,
vision with pixel shuffle v1/v2, projector and InternLM2, in float64). The reference with one
classic mistake (a transposed token grid, no newline after the image, the thumbnail first,
CLIP's normalisation) must not match, so the comparison is shown to be able to fail.

The tokens come from the engine's `internvl.answer` debug log events; the v1 run sets every
prompt through TESSERA_INTERNVL_* variables, the v2 run uses the documented defaults.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.internvl import reference_pipeline as ref
from tests.utils.tessera_procs import tessera_cmd, tessera_env
from tests.utils.tiny_internvl import build_tiny_original_checkpoint
from workers.internvl.checkpoint import convert_checkpoint

pytestmark = pytest.mark.internvl

MAX_TILES = 4
MAX_NEW_TOKENS = 12
# width x height -> grid at max 4 tiles: 1x1 (no thumbnail), 2x1 + thumbnail, and 2x2 +
# thumbnail (the exact-tie rule: 1x1 and 2x2 have the same aspect, the page is big enough)
SIZES = {"small": (300, 300), "wide": (900, 450), "square": (800, 800)}
DEFAULTS = {  # README's defaults, written out: the v2 run checks them
    "system": "You are an AI assistant whose name is InternLM (书生·浦语).",
    "ocr": "Transcribe this page as Markdown, in reading order. Keep headings, lists and "
    "paragraphs; write tables as Markdown tables. Output only the transcription.",
}
GIVEN = {"system": "You read documents.", "ocr": "What does this page say?"}


@dataclass
class Page:
    grid: list[int]
    tiles: int
    text: str
    tokens: list[int]


@dataclass
class Run:
    src: Path  # the original checkpoint
    documents: Path
    prompts: dict[str, str]
    pages: dict[str, Page]  # what `tessera run` gave, by document stem


def _document(width: int, height: int, seed: int) -> Image.Image:
    """A page with upright lines of text and coloured blocks (what a document looks like)."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for y in range(20, height - 20, 40):
        draw.text((20, y), f"Line {y} of the report, total {rng.integers(99)}", fill="black")
        x = int(rng.integers(width // 2, width - 60))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        draw.rectangle((x, y, x + 40, y + 25), fill=colour)
    return image


@pytest.fixture(scope="module")
def documents(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("golden-docs")
    for seed, (stem, (width, height)) in enumerate(SIZES.items()):
        _document(width, height, seed).save(folder / f"{stem}.png")
    return folder


def _start_tessera_run(
    native: Path, documents: Path, out: Path, prompts: dict[str, str]
) -> subprocess.Popen:
    env = {
        "TESSERA_ENGINE": "internvl",
        "TESSERA_MODEL_PATH": str(native),
        "TESSERA_INTERNVL_DEVICE": "cpu",
        "TESSERA_INTERNVL_MAX_NEW_TOKENS": str(MAX_NEW_TOKENS),
        "TESSERA_LOG_LEVEL": "DEBUG",
        "TESSERA_LOG_JSON": "1",
    }
    if prompts is GIVEN:
        env |= {
            "TESSERA_INTERNVL_SYSTEM_MESSAGE": GIVEN["system"],
            "TESSERA_INTERNVL_OCR_PROMPT": GIVEN["ocr"],
        }
    options = json.dumps({"max_tiles": MAX_TILES})
    return subprocess.Popen(
        tessera_cmd("run", str(documents), "--out", str(out), "--options", options),
        env=tessera_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _pages(proc: subprocess.Popen, out: Path) -> dict[str, Page]:
    """What a finished `tessera run` wrote (text, tiles) and logged (each answer's tokens)."""
    stdout, stderr = proc.communicate(timeout=240)
    assert proc.returncode == 0, stdout[-2000:] + stderr[-4000:]
    tokens = {}
    for line in stderr.splitlines():
        if line.startswith("{") and '"internvl.answer"' in line:
            event = json.loads(line)
            tokens[event["page"]] = event["tokens"]
    pages = {}
    for stem in SIZES:
        result = json.loads((out / f"{stem}.png.json").read_text())
        [page] = result["pages"]
        pages[stem] = Page(
            page["tiles"]["grid"],
            page["tiles"]["count"],
            page["text"],
            next(ids for key, ids in tokens.items() if key.startswith(result["job_id"])),
        )
    return pages


@pytest.fixture(scope="module")
def runs(tmp_path_factory, documents) -> dict[str, Run]:
    """One `tessera run` per pixel shuffle version (side by side), each on its own weights."""
    started = {}
    for seed, (version, prompts) in enumerate((("v1", GIVEN), ("v2", DEFAULTS)), start=3):
        root = tmp_path_factory.mktemp(f"golden-{version}")
        src = build_tiny_original_checkpoint(
            root / "original", seed=seed, ps_version=version, sharp_attention=True
        )
        convert_checkpoint(src, root / "native")
        proc = _start_tessera_run(root / "native", documents, root / "out", prompts)
        started[version] = (src, prompts, proc, root / "out")
    try:
        return {
            version: Run(src, documents, prompts, _pages(proc, out))
            for version, (src, prompts, proc, out) in started.items()
        }
    finally:
        for _, _, proc, _ in started.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _reference(run: Run, stem: str, mistakes: ref.Mistakes = ref.Mistakes()) -> ref.Answer:
    prompts = run.prompts
    return ref.answer(
        run.src,
        Image.open(run.documents / f"{stem}.png"),
        prompts["ocr"],
        prompts["system"],
        MAX_TILES,
        MAX_NEW_TOKENS,
        mistakes,
    )


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_tessera_run_gives_the_reference_greedy_tokens(runs, version):
    run = runs[version]
    for stem, page in run.pages.items():
        answer = _reference(run, stem)
        assert (page.grid, page.tiles) == (list(answer.grid), answer.tiles), stem
        assert answer.gap > 1e-3, f"{stem}: a near tie, the comparison would be luck"
        assert len(page.tokens) == MAX_NEW_TOKENS
        assert page.tokens == answer.tokens, stem
        assert page.text == answer.text, stem
    assert [p.tiles for p in run.pages.values()] == [1, 3, 5]


MISTAKES = {
    "transposed grid": ref.Mistakes(transpose_grid=True),
    "no newline after the image": ref.Mistakes(no_newline_after_image=True),
    "thumbnail first": ref.Mistakes(thumbnail_first=True),
    "CLIP normalisation": ref.Mistakes(clip_normalisation=True),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_classic_mistake_breaks_the_golden_comparison(runs, mistake):
    """The reference with the mistake answers the wide page (2x1 + thumbnail: every mistake
    shows there) with other greedy tokens than `tessera run` gave: the golden test, which
    compares every page, would fail."""
    run = runs["v1"]
    wrong = _reference(run, "wide", MISTAKES[mistake])
    assert wrong.tiles == 3 and wrong.tokens != run.pages["wide"].tokens
