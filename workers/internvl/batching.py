"""How a list of generation requests is packed into device batches.

Static batching pays for every row up to the longest prompt (padding) and the
longest answer, so requests are sorted by prompt length and packed in runs of
similar length. Bounds: a number of rows (the operator's batch size) and,
optionally, padded prompt tokens (what prefill memory grows with).
Prompts are left-padded so every row's answer starts at the same column.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Request:
    """One prompt for the model, with the tiles its `<IMG_CONTEXT>` slots stand for."""

    key: tuple  # (page index, kind, chart index): where the answer goes
    image_key: tuple  # requests with the same image share one vision pass
    pixels: np.ndarray  # (tiles, 448, 448, 3) uint8 RGB, normalised on the device
    prompt_ids: list[int]


@dataclass
class Generation:
    """The answer to one request (or why there is none)."""

    text: str = ""
    new_tokens: int = 0
    truncated: bool = False  # stopped at max_new_tokens, not at <|im_end|>
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def plan_groups(
    lengths: Sequence[int], max_rows: int, max_tokens: int | None = None
) -> list[list[int]]:
    """Indices grouped longest-first; each group <= max_rows rows, <= max_tokens padded tokens."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    groups: list[list[int]] = []
    for i in order:
        group = groups[-1] if groups else None
        # the group's first (longest) prompt sets its padded width
        fits = (
            group is not None
            and len(group) < max_rows
            and (max_tokens is None or lengths[group[0]] * (len(group) + 1) <= max_tokens)
        )
        if fits:
            group.append(i)
        else:
            groups.append([i])
    return groups


def left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, attention mask), both (len(rows), longest) int64, padding on the left."""
    width = max(len(row) for row in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for r, row in enumerate(rows):
        ids[r, width - len(row) :] = row
        mask[r, width - len(row) :] = 1
    return ids, mask


def split_on_failure(
    items: list[T],
    run: Callable[[list[T]], list[R]],
    is_capacity_error: Callable[[BaseException], bool],
    on_single_failure: Callable[[T, BaseException], R],
) -> list[R]:
    """Run a batch; when it does not fit, run each half; one item that does not fit fails alone.

    Keeps one oversized page from failing the pages it was batched with.
    """
    try:
        return run(items)
    except Exception as exc:
        if not is_capacity_error(exc):
            raise
        if len(items) == 1:
            return [on_single_failure(items[0], exc)]
    half = len(items) // 2
    return split_on_failure(
        items[:half], run, is_capacity_error, on_single_failure
    ) + split_on_failure(items[half:], run, is_capacity_error, on_single_failure)
