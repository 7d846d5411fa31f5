"""The rest of an independent InternVL 1.5 reference, written from INTERNVL.md: tiling,
normalisation, the internlm2-chat prompt, tokenisation with the ORIGINAL SentencePiece
model, greedy answering and decoding as the original `chat()` returns it.

Nothing here imports Tessera's code; the original checkpoint folder is the only input
besides the image. `Mistakes` turns on one classic error at a time (a transposed
token grid, no newline after the image, the thumbnail first, CLIP's normalisation),
so a test can show that the golden comparison would catch each of them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tests.internvl.reference_internvl import Reference

TILE = 448
TOKENS_PER_TILE = 256
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))


@dataclass(frozen=True)
class Mistakes:
    transpose_grid: bool = False  # the other pixel shuffle version
    no_newline_after_image: bool = False  # "</img>{question}" instead of "</img>\n{question}"
    thumbnail_first: bool = False
    clip_normalisation: bool = False  # CLIP's mean/std instead of ImageNet's


@dataclass
class Answer:
    grid: tuple[int, int]
    tiles: int
    tokens: list[int]
    text: str
    gap: float  # smallest top-1 / top-2 logit gap over the answer


def grid_for(width: int, height: int, max_tiles: int) -> tuple[int, int]:
    """INTERNVL.md steps 1-2: the (cols, rows) closest in aspect, ties to a larger grid only
    when the image has more than half its pixels."""
    sides = range(1, max_tiles + 1)
    grids = sorted(
        {(c, r) for c in sides for r in sides if c * r <= max_tiles}, key=lambda g: g[0] * g[1]
    )
    best, best_diff = (1, 1), float("inf")
    for cols, rows in grids:
        diff = abs(width / height - cols / rows)
        if diff < best_diff:
            best, best_diff = (cols, rows), diff
        elif diff == best_diff and width * height > 0.5 * TILE * TILE * cols * rows:
            best = (cols, rows)
    return best


def tiles_of(image: Image.Image, max_tiles: int, mistakes: Mistakes) -> tuple[tuple, torch.Tensor]:
    """INTERNVL.md steps 3-5: the grid and the normalised tiles (n, 3, 448, 448), float32."""
    image = image.convert("RGB")
    cols, rows = grid_for(image.width, image.height, max_tiles)
    big = image.resize((TILE * cols, TILE * rows), Image.Resampling.BICUBIC)
    crops = [
        big.crop((c * TILE, r * TILE, (c + 1) * TILE, (r + 1) * TILE))
        for r in range(rows)
        for c in range(cols)
    ]
    if len(crops) > 1:
        thumbnail = image.resize((TILE, TILE), Image.Resampling.BICUBIC)
        crops = [thumbnail, *crops] if mistakes.thumbnail_first else [*crops, thumbnail]
    mean, std = CLIP if mistakes.clip_normalisation else IMAGENET
    pixels = torch.from_numpy(np.stack([np.asarray(c) for c in crops])).permute(0, 3, 1, 2)
    pixels = pixels.float() / 255.0  # torchvision's ToTensor, then Normalize, in float32
    pixels = (pixels - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    return (cols, rows), pixels


def prompt(question: str, system: str, tiles: int, mistakes: Mistakes) -> str:
    """The internlm2-chat template of INTERNVL.md, character for character."""
    image = "<img>" + "<IMG_CONTEXT>" * (TOKENS_PER_TILE * tiles) + "</img>"
    newline = "" if mistakes.no_newline_after_image else "\n"
    return (
        f"<|im_start|>system\n{system}<|im_end|>"
        f"<|im_start|>user\n{image}{newline}{question}<|im_end|>"
        "<|im_start|>assistant\n"
    )


class OriginalTokenizer:
    """The slow InternLM2 tokenizer's behaviour from the original files: text is split at
    added tokens, each piece encoded by SentencePiece alone, <s> first."""

    def __init__(self, src: Path):
        import sentencepiece as spm

        self.sp = spm.SentencePieceProcessor(model_file=str(src / "tokenizer.model"))
        decoder = json.loads((src / "tokenizer_config.json").read_text())["added_tokens_decoder"]
        self.added = {entry["content"]: int(i) for i, entry in decoder.items()}
        self.special_ids = {int(i) for i, entry in decoder.items() if entry.get("special")}
        names = sorted(self.added, key=len, reverse=True)
        self.split = re.compile("(" + "|".join(map(re.escape, names)) + ")")

    def encode(self, text: str) -> list[int]:
        ids = [self.sp.bos_id()]
        for piece in self.split.split(text):
            if piece in self.added:
                ids.append(self.added[piece])
            elif piece:
                ids += self.sp.encode(piece)
        return ids

    def decode(self, ids: list[int]) -> str:
        """As `chat()` returns an answer: special tokens skipped, SentencePiece's decode, no
        clean-up of spaces (Tessera's documented choice), stripped."""
        return self.sp.decode([i for i in ids if i not in self.special_ids]).strip()


def answer(
    src: Path,
    image: Image.Image,
    question: str,
    system: str,
    max_tiles: int,
    max_new_tokens: int,
    mistakes: Mistakes = Mistakes(),
    model: Reference | None = None,
) -> Answer:
    """What the original InternVL 1.5 answers, greedily, about one image."""
    model = model or Reference(src, transpose_grid=mistakes.transpose_grid)
    tokenizer = OriginalTokenizer(src)
    grid, pixels = tiles_of(image, max_tiles, mistakes)
    ids = tokenizer.encode(prompt(question, system, len(pixels), mistakes))
    context, stop = tokenizer.added["<IMG_CONTEXT>"], tokenizer.added["<|im_end|>"]
    with torch.no_grad():
        features = model.image_features(pixels)
        tokens, gap = model.greedy(ids, features, context, stop, max_new_tokens)
    return Answer(grid, len(pixels), tokens, tokenizer.decode(tokens), gap)
