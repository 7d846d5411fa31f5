"""Batched generation on the device: chunked vision, feature scatter, greedy decode.

transformers' own path runs the vision tower on every tile of the batch at once
(64 pages x 13 tiles = 832 tiles, about 20 GiB of activations: out of memory).
Here tiles go through the vision tower in bounded chunks, each distinct image
once, and the projected features are written into the `<IMG_CONTEXT>` slots of
the token embeddings; the decoder (decode.py: row-chunked prefill, in-place KV
cache) then only sees `inputs_embeds`. `decoder="generate"` runs transformers'
`generate` on the same embeddings instead: the reference in tests, the
baseline in bench/internvl_gpu.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from workers.internvl.batching import Generation, Request, left_pad, plan_groups, split_on_failure
from workers.internvl.decode import DecodeOptions, greedy_decode
from workers.internvl.prompt import IM_END_ID, IMG_CONTEXT_ID, PAD_ID
from workers.internvl.tiling import normalise_tensor


@dataclass
class RunOptions:
    max_new_tokens: int = 1024
    min_new_tokens: int = 0  # > 0 only to force a fixed output length (benchmarks)
    max_batch_rows: int = 4
    max_batch_tokens: int | None = None
    vision_chunk_tiles: int = 128
    prefill_rows: int = 8
    decoder: Literal["cached", "generate"] = "cached"


@dataclass
class RunStats:
    """Running totals the worker can export as metrics (and the bench prints)."""

    groups: int = 0
    requests: int = 0
    tiles: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    vision_seconds: float = 0.0
    generate_seconds: float = 0.0


class GenerationRunner:
    def __init__(self, model, tokenizer, options: RunOptions):
        self.model = model
        self.tokenizer = tokenizer
        self.options = options
        self.stats = RunStats()

    @property
    def device(self) -> torch.device:
        return self.model.get_input_embeddings().weight.device

    def run(self, requests: list[Request]) -> dict[tuple, Generation]:
        """Answers by request key; a request that cannot fit alone gets an error, no exception."""
        lengths = [len(r.prompt_ids) for r in requests]
        results: dict[tuple, Generation] = {}
        for indices in plan_groups(
            lengths, self.options.max_batch_rows, self.options.max_batch_tokens
        ):
            group = [requests[i] for i in indices]
            answers = split_on_failure(group, self._run_group, _is_out_of_memory, _failed)
            results.update({r.key: a for r, a in zip(group, answers)})
        return results

    @torch.inference_mode()
    def _run_group(self, group: list[Request]) -> list[Generation]:
        start = self._now()
        features = self.encode_images(group)
        vision_s = self._now() - start
        embeds, mask = self.embed(group, features)
        start = self._now()
        new = self.generate(embeds, mask)
        generate_s = self._now() - start
        answers = [
            self._answer(r, row, vision_s, generate_s, group) for r, row in zip(group, new.tolist())
        ]
        self._count(group, answers, vision_s, generate_s)
        return answers

    def encode_images(self, group: list[Request]) -> dict[tuple, torch.Tensor]:
        """Projected features per distinct image: (tiles * 256, hidden), vision run in chunks."""
        images = {r.image_key: r.pixels for r in group}
        tiles = [tile for pixels in images.values() for tile in pixels]
        chunk = self.options.vision_chunk_tiles
        parts = [
            self._features(np.stack(tiles[s : s + chunk])) for s in range(0, len(tiles), chunk)
        ]
        flat = torch.cat(parts)  # (all tiles, 256, hidden)
        split = flat.split([len(p) for p in images.values()])
        return {key: f.reshape(-1, f.shape[-1]) for key, f in zip(images, split)}

    def _features(self, pixels: np.ndarray) -> torch.Tensor:
        model = self.model
        values = normalise_tensor(torch.from_numpy(pixels).to(self.device), model.dtype)
        out = model.model.get_image_features(
            pixel_values=values,
            vision_feature_layer=model.config.vision_feature_layer,
            vision_feature_select_strategy=model.config.vision_feature_select_strategy,
        )
        return getattr(out, "pooler_output", out)  # transformers 5.x returns an output object

    def embed(self, group: list[Request], features: dict[tuple, torch.Tensor]):
        """Token embeddings (left-padded) with image features in the `<IMG_CONTEXT>` slots."""
        ids, mask = left_pad([r.prompt_ids for r in group], PAD_ID)
        ids_t = torch.from_numpy(ids).to(self.device)
        embeds = self.model.get_input_embeddings()(ids_t)
        slots = ids_t == IMG_CONTEXT_ID
        image = torch.cat([features[r.image_key] for r in group]).to(embeds.dtype)
        if int(slots.sum()) != image.shape[0]:
            raise RuntimeError(
                f"{int(slots.sum())} image slots but {image.shape[0]} image features"
            )
        embeds[slots] = image
        return embeds, torch.from_numpy(mask).to(self.device)

    def generate(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Greedy decode; returns only the new tokens, (rows, steps)."""
        o = self.options
        if o.decoder == "cached":
            return greedy_decode(
                self.model,
                embeds,
                mask,
                DecodeOptions(
                    max_new_tokens=o.max_new_tokens,
                    min_new_tokens=o.min_new_tokens,
                    eos_id=IM_END_ID,
                    pad_id=PAD_ID,
                    prefill_rows=o.prefill_rows,
                ),
            )
        return self.model.generate(
            inputs_embeds=embeds,
            attention_mask=mask,
            max_new_tokens=self.options.max_new_tokens,
            min_new_tokens=self.options.min_new_tokens,
            do_sample=False,
            num_beams=1,
            eos_token_id=IM_END_ID,
            pad_token_id=PAD_ID,
        )

    def _answer(
        self,
        request: Request,
        row: list[int],
        vision_s: float,
        generate_s: float,
        group: list[Request],
    ) -> Generation:
        """Decode up to <|im_end|> and charge this request its share of the group's time."""
        content, new_tokens, truncated = split_answer(row, self.options.max_new_tokens)
        share_tiles = len(request.pixels) / sum(len(r.pixels) for r in group)
        return Generation(
            text=self.tokenizer.decode(content, skip_special_tokens=True),
            new_tokens=new_tokens,
            truncated=truncated,
            timings={"vision": vision_s * share_tiles, "generate": generate_s / len(group)},
        )

    def _count(
        self, group: list[Request], answers: list[Generation], vision_s: float, generate_s: float
    ) -> None:
        s = self.stats
        s.generated_tokens += sum(a.new_tokens for a in answers)
        s.groups += 1
        s.requests += len(group)
        s.tiles += sum(len(r.pixels) for r in group)
        s.prompt_tokens += sum(len(r.prompt_ids) for r in group)
        s.vision_seconds += vision_s
        s.generate_seconds += generate_s

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()


def split_answer(row: list[int], max_new_tokens: int) -> tuple[list[int], int, bool]:
    """(tokens before <|im_end|>, tokens generated incl. <|im_end|>, stopped by the length limit).

    Rows of a batch are padded after their own end, so everything after the
    first <|im_end|> is ignored.
    """
    if IM_END_ID in row:
        end = row.index(IM_END_ID)
        return row[:end], end + 1, False
    return row, len(row), len(row) >= max_new_tokens


def _is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        torch.cuda.empty_cache()
        return True
    return False


def _failed(request: Request, exc: BaseException) -> Generation:
    return Generation(
        error=f"out of device memory for {len(request.pixels)} tiles: {str(exc)[:120]}"
    )
