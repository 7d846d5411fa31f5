"""Make a random-weight InternVL give the answer a trained one would, through its own decoding.

A forward hook replaces the logits of every row whose position lies inside a
scripted answer with a one-hot on the scripted token. An answer to a prompt of
length L takes its token k from the logits at position L - 1 + k, in the prefill
(k = 0) and in the decode steps alike, so the engine's own decoding, detokenising
and parsing run exactly as they would on real weights. Every row at those
positions is steered, whatever its prompt: give scripted prompts lengths whose
answer ranges do not overlap, and keep other prompts away from them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def scripted_answers(model, answers: dict[int, list[int]]) -> Iterator[None]:
    """Within the block, a prompt of length L answers `answers[L]` (ids, end token included)."""
    by_position: dict[int, int] = {}
    for length, tokens in answers.items():
        for k, token in enumerate(tokens):
            position = length - 1 + k
            if by_position.setdefault(position, token) != token:
                raise ValueError(f"scripted answers overlap at position {position}")

    def steer(_module, _args, kwargs, output):
        logits = output.logits[:, -1]
        for row, position in enumerate(kwargs["position_ids"][:, -1].tolist()):
            if position in by_position:
                logits[row] = torch.finfo(logits.dtype).min
                logits[row, by_position[position]] = 0.0
        return output

    handle = model.register_forward_hook(steer, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()
