"""How a list of generation requests is planned into decode streams (decode.py).

A stream runs its requests through a fixed number of slots (the operator's
batch size), refilling each slot as its answer ends. Its KV cache holds, per
slot, the stream's longest prompt plus the longest answer, so with a memory cap
(`max_tokens`, cache positions per stream) requests are streamed in length
classes, each within twice its shortest, and a class of short prompts gets
more slots under the same cap. Without a cap, one stream holds everything.
When a stream does not fit the device after all, it goes on with half the slots.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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
    max_new_tokens: int | None = None  # this prompt's answer limit (default: the run's)
    keep_special_tokens: bool = False  # decode with <ref>, <box> ... kept (grounding answers)


@dataclass
class Generation:
    """The answer to one request (or why there is none)."""

    text: str = ""
    tokens: list[int] = field(default_factory=list)  # the answer's ids, <|im_end|> excluded
    new_tokens: int = 0
    truncated: bool = False  # stopped at max_new_tokens, not at <|im_end|>
    timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def plan_streams(
    lengths: Sequence[int],
    max_rows: int,
    max_tokens: int | None = None,
    answer_room: int = 0,
    prompt_room: int = 0,
) -> list[tuple[list[int], int]]:
    """(indices longest first, slots) per stream.

    A slot's cache room is its stream's longest prompt (at least `prompt_room`, for
    prompts that join while it runs) + `answer_room`; slots x room stays within
    `max_tokens` (at least one slot: an oversized prompt still runs, alone).
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    streams: list[list[int]] = []
    for i in order:
        if streams and (max_tokens is None or 2 * lengths[i] >= lengths[streams[-1][0]]):
            streams[-1].append(i)
        else:
            streams.append([i])
    return [
        (s, _slots(max(lengths[s[0]], prompt_room) + answer_room, len(s), max_rows, max_tokens))
        for s in streams
    ]


def _slots(room: int, requests: int, max_rows: int, max_tokens: int | None) -> int:
    cap = max_rows if max_tokens is None else min(max_rows, max_tokens // room)
    return max(1, min(cap, requests))


def shrink_on_failure(
    items: list[T],
    slots: int,
    run: Callable[[list[T], int], Iterator[tuple[T, R]]],
    is_capacity_error: Callable[[BaseException], bool],
    fail: Callable[[T, BaseException], R],
) -> Iterator[tuple[T, R]]:
    """(item, result) from run(items, slots) as they come; after a capacity error, the
    unfinished items again with half the slots.

    With one slot, the first unfinished item is the one that does not fit: it
    fails alone and the rest go on, so one oversized page never fails the
    pages it was batched with.
    """
    pending = list(items)
    while pending:
        finished: set[int] = set()
        try:
            for item, result in run(pending, slots):
                finished.add(id(item))
                yield item, result
            return
        except Exception as exc:
            if not is_capacity_error(exc):
                raise
            pending = [item for item in pending if id(item) not in finished]
            if slots == 1 and pending:
                yield pending[0], fail(pending[0], exc)
                pending = pending[1:]
            slots = max(1, slots // 2)
