"""Greedy decoding over a left-padded batch of prompt embeddings, with an in-place KV cache.

Why not `model.generate`: its default cache copies every layer's keys and
values at every step (see kv_cache.py), it computes the prefill of the whole
batch at once (activations grow with rows x prompt length, which caps the
batch long before the cache does), and it checks for the end of every row at
every step (a device sync per token). Here the prefill runs in row chunks into
one preallocated cache, the decode writes in place, and the end of the batch is
checked every few steps. The tokens are the same as `generate`'s greedy ones
(tests/internvl/test_internvl_decode.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from workers.internvl.kv_cache import KVBuffers


@dataclass
class DecodeOptions:
    max_new_tokens: int
    min_new_tokens: int = 0  # the end token is suppressed before this many (benchmarks)
    eos_id: int = 2
    pad_id: int = 2
    prefill_rows: int = 8  # rows per prefill forward: bounds prefill activations
    check_every: int = 8  # steps between checks for "every row has ended" (each is a sync)


@torch.inference_mode()
def greedy_decode(
    model, embeds: torch.Tensor, mask: torch.Tensor, options: DecodeOptions
) -> torch.Tensor:
    """New tokens, (rows, steps): each row's answer, its end token, then `pad_id`.

    `embeds` (rows, width, hidden) and `mask` (rows, width) are left-padded.
    """
    rows, width = mask.shape
    if options.max_new_tokens < 1:
        return torch.empty((rows, 0), dtype=torch.long, device=mask.device)
    buffers = KVBuffers(
        model.config.text_config, rows, width + options.max_new_tokens, embeds.dtype, embeds.device
    )
    full_mask = torch.ones(
        (rows, width + options.max_new_tokens), dtype=mask.dtype, device=mask.device
    )
    full_mask[:, :width] = mask
    positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
    logits = _prefill(model, embeds, mask, positions, buffers, options.prefill_rows)
    cache = buffers.cache(filled=width)
    next_position = positions[:, -1:] + 1
    finished = torch.zeros(rows, dtype=torch.bool, device=mask.device)
    out = []
    for step in range(options.max_new_tokens):
        if step < options.min_new_tokens:
            logits[:, options.eos_id] = torch.finfo(logits.dtype).min
        token = logits.argmax(-1)
        token = torch.where(finished, options.pad_id, token)
        out.append(token)
        finished |= token == options.eos_id
        if step + 1 == options.max_new_tokens or (
            (step + 1) % options.check_every == 0 and bool(finished.all())
        ):
            break
        logits = model(
            input_ids=token[:, None],
            attention_mask=full_mask[:, : width + step + 1],
            position_ids=next_position + step,
            past_key_values=cache,
            use_cache=True,
        ).logits[:, -1]
    return _trim(torch.stack(out, dim=1), options.eos_id)


def _prefill(model, embeds, mask, positions, buffers: KVBuffers, chunk: int) -> torch.Tensor:
    """Each row chunk fills its rows of the cache; returns the last position's logits, (rows, vocab)."""
    logits = []
    for start in range(0, mask.shape[0], chunk):
        rows = slice(start, start + chunk)
        out = model(
            inputs_embeds=embeds[rows],
            attention_mask=mask[rows],
            position_ids=positions[rows],
            past_key_values=buffers.cache(rows),
            use_cache=True,
            logits_to_keep=1,
        )
        logits.append(out.logits[:, -1].float())
    return torch.cat(logits)


def _trim(tokens: torch.Tensor, eos_id: int) -> torch.Tensor:
    """Drop the trailing columns after every row has ended (the last check can be late)."""
    ended = (tokens == eos_id).cumsum(-1) > 0
    running = (~ended).any(0).nonzero()
    last = int(running[-1]) + 2 if len(running) else 1  # keep the column where the last row ends
    return tokens[:, : min(last, tokens.shape[1])]
