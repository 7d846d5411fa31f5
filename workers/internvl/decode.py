"""Greedy decoding with continuous batching: a fixed number of slots, refilled as answers end.

Static batching (transformers' `generate` over a padded batch) runs every row
until the longest answer ends: a blank page's 20 tokens hold a slot as long as
a dense page's 1,000, and a chart-grounding answer of a few boxes waits for the
transcription it was batched with. Here a stream of prompts flows through
`slots` rows: when a row's answer ends, the next prompt is prefilled into that
row and joins the following steps, so the decode batch stays full.

Also, unlike `generate`: the cache is written in place (kv_cache.py), prompts
are prefilled one at a time (no padding, bounded activations), and the host
looks at the tokens every `check_every` steps rather than every step (each look
is a device sync). Each prompt's tokens are exactly what greedy `generate` gives
for that prompt alone (tests/internvl/test_internvl_decode.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from workers.internvl.kv_cache import KVBuffers, StepPlan

# embed(indices) -> one (prompt length, hidden) tensor per index, called when they are admitted
EmbedFn = Callable[[list[int]], list[torch.Tensor]]
# prompt index -> (index of an earlier prompt, number of leading tokens the two have in common)
SharedPrefixes = Mapping[int, tuple[int, int]]


@dataclass
class DecodeOptions:
    max_new_tokens: int
    min_new_tokens: int = 0  # the end token is suppressed before this many (benchmarks)
    eos_id: int = 2
    pad_id: int = 2
    check_every: int = 4  # decode steps between looks at the tokens (ended answers, refills)


@dataclass
class PrefillCounts:
    """Prompt tokens computed, and prompt tokens copied from a slot that had them."""

    computed: int = 0
    shared: int = 0


class SlotStream:
    """Decode state of `slots` rows; host-side bookkeeping mirrors the device tensors."""

    def __init__(
        self,
        model,
        options: DecodeOptions,
        slots: int,
        max_prompt: int,
        limits: Sequence[int],
        counts: PrefillCounts,
    ):
        self.model, self.options, self.limits, self.counts = model, options, limits, counts
        embeddings = model.get_input_embeddings().weight
        device, dtype = embeddings.device, embeddings.dtype
        # room for any prompt up to max_prompt, an answer up to max_new_tokens, and the
        # check_every - 1 steps a row may decode past its end before the host looks
        self.capacity = max_prompt + options.max_new_tokens + options.check_every
        self.buffers = KVBuffers(model.config.text_config, slots, self.capacity, dtype, device)
        self.plan = StepPlan(
            slots=torch.arange(slots, device=device),
            write_at=torch.zeros(slots, dtype=torch.long, device=device),
            view_len=1,
        )
        self.cache = self.buffers.decode_cache(self.plan)
        self.mask = torch.zeros((slots, self.capacity), dtype=torch.long, device=device)
        self.current = torch.full((slots,), options.pad_id, dtype=torch.long, device=device)
        self.produced = torch.zeros(slots, dtype=torch.long, device=device)  # tokens so far
        self.min_new = torch.zeros(slots, dtype=torch.long, device=device)
        # columns written per slot == position of its current token: on the device (the step
        # reads it) and mirrored on the host (for the view length, without a sync)
        self.lengths = [0] * slots
        self.positions = self.plan.write_at
        self.owner: list[int | None] = [None] * slots
        self.answers: dict[int, list[int]] = {}
        self.history: list[torch.Tensor] = []

    def free_slots(self) -> list[int]:
        return [s for s, owner in enumerate(self.owner) if owner is None]

    def active(self) -> bool:
        return any(owner is not None for owner in self.owner)

    def admit(
        self, slot: int, request: int, embeds: torch.Tensor, shared: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """Prefill `embeds` (length, hidden) into `slot`; returns its first token (on the device).

        `shared` (earlier request, n): when that request still holds a slot, its first n
        columns are copied instead of computed (causal attention: a prefix's keys and
        values do not depend on what follows it).
        """
        length = embeds.shape[0]
        if length + self.limits[request] + self.options.check_every > self.capacity:
            raise ValueError(f"prompt of {length} tokens is longer than the stream was sized for")
        self.min_new[slot] = min(self.options.min_new_tokens, self.limits[request])
        self.produced[slot] = 0
        start = 0
        if shared is not None and shared[0] in self.owner and 0 < shared[1] < length:
            start = shared[1]
            self.buffers.copy_prefix(self.owner.index(shared[0]), slot, start)
            self.counts.shared += start
        self.counts.computed += length - start
        logits = self.model(
            inputs_embeds=embeds[None, start:],
            position_ids=torch.arange(start, length, device=embeds.device)[None],
            past_key_values=self.buffers.prefill_cache(slot, start),
            use_cache=True,
            logits_to_keep=1,
        ).logits[0, -1]
        first = self._pick(
            logits[None], self.produced[slot : slot + 1], self.min_new[slot : slot + 1]
        )[0]
        self.current[slot] = first
        self.produced[slot] = 1
        self.mask[slot].zero_()
        self.mask[slot, :length] = 1
        self.lengths[slot] = length
        self.positions[slot] = length
        self.owner[slot] = request
        return first

    def step(self) -> None:
        """One token for every slot (free slots decode padding into their own row, unseen)."""
        self.plan.view_len = max(self.lengths) + 1
        self.mask[self.plan.slots, self.positions] = 1
        logits = self.model(
            input_ids=self.current[:, None],
            attention_mask=self.mask[:, : self.plan.view_len],
            position_ids=self.positions[:, None],
            past_key_values=self.cache,
            use_cache=True,
        ).logits[:, -1]
        self.current = self._pick(logits, self.produced, self.min_new)
        self.produced += 1
        self.positions += 1  # in place: the cache layers hold this tensor as plan.write_at
        self.lengths = [n + 1 for n in self.lengths]
        self.history.append(self.current)

    def _pick(
        self, logits: torch.Tensor, produced: torch.Tensor, min_new: torch.Tensor
    ) -> torch.Tensor:
        """Greedy; the end token is barred while fewer than min_new tokens were produced."""
        if self.options.min_new_tokens > 0:
            eos = self.options.eos_id
            barred = produced < min_new
            logits[:, eos] = torch.where(barred, torch.finfo(logits.dtype).min, logits[:, eos])
        return logits.argmax(-1)

    def start_answer(self, slot: int, first: int) -> int | None:
        """Record an admitted prompt's first token; the request index if that already ended it."""
        request = self.owner[slot]
        self.answers[request] = [first]
        return request if self._ended(request) else None

    def collect(self) -> list[int]:
        """Move the tokens decoded since the last look to the answers; free the slots that ended."""
        steps = torch.stack(self.history).tolist() if self.history else []  # one device sync
        self.history.clear()
        ended = []
        for slot, request in enumerate(self.owner):
            if request is None:
                continue
            answer = self.answers[request]
            for row in steps:
                answer.append(row[slot])
                if self._ended(request):
                    ended.append(request)
                    break
        return ended

    def release(self, request: int) -> None:
        slot = self.owner.index(request)
        self.owner[slot] = None
        self._rewind(slot)

    def release_idle(self) -> None:
        """Free slots decoded padding since the last look: send them back to column 0."""
        for slot in self.free_slots():
            self._rewind(slot)

    def _rewind(self, slot: int) -> None:
        self.lengths[slot] = 0
        self.positions[slot] = 0
        self.mask[slot].zero_()

    def _ended(self, request: int) -> bool:
        answer = self.answers[request]
        return answer[-1] == self.options.eos_id or len(answer) >= self.limits[request]


@dataclass
class PromptQueue:
    """A stream's prompts by index: their lengths, answer limits and shared prefixes
    (`shared[i]`: an earlier prompt that starts like prompt i, and for how many tokens). More
    may be added while the stream runs (a chart's table once its page's grounding is in)."""

    lengths: list[int]
    limits: list[int]
    shared: dict[int, tuple[int, int]] = field(default_factory=dict)
    waiting: deque = field(default_factory=deque)

    @classmethod
    def of(
        cls,
        lengths: Sequence[int],
        limits: Sequence[int],
        shared: SharedPrefixes | None = None,
    ) -> PromptQueue:
        return cls(list(lengths), list(limits), dict(shared or {}), deque(range(len(lengths))))

    def add(self, length: int, limit: int) -> int:
        """Queue one more prompt; returns its index."""
        self.lengths.append(length)
        self.limits.append(limit)
        self.waiting.append(len(self.lengths) - 1)
        return len(self.lengths) - 1


@torch.inference_mode()
def decode_stream(
    model,
    prompts: PromptQueue,
    embed: EmbedFn,
    options: DecodeOptions,
    slots: int,
    counts: PrefillCounts | None = None,
    max_prompt: int | None = None,
) -> Iterator[tuple[int, list[int]]]:
    """Yield (prompt index, tokens) as each answer ends; prompts are admitted in queue order.

    Tokens end with `eos_id` unless the answer was cut at the prompt's limit. A
    prompt that shares a prefix with an earlier one (the OCR and chart prompts of
    one page share the system message and all the page's image tokens) copies it
    when that one still holds a slot. Between yields the caller may add prompts
    of at most `max_prompt` tokens (default: the longest at the start). `counts`,
    when given, adds up the prompt tokens.
    """
    if not prompts.lengths:
        return
    counts = counts if counts is not None else PrefillCounts()
    max_prompt = max_prompt or max(prompts.lengths)
    slots = min(slots, len(prompts.lengths))
    stream = SlotStream(model, options, slots, max_prompt, prompts.limits, counts)
    while True:
        for request in _admit(stream, prompts, embed):  # answers of one token
            yield request, stream.answers.pop(request)
        if not stream.active():
            if prompts.waiting:  # added while the last answers were handed over
                continue
            return
        for _ in range(options.check_every):
            stream.step()
        for request in stream.collect():
            stream.release(request)
            yield request, stream.answers.pop(request)
        stream.release_idle()


def _admit(stream: SlotStream, prompts: PromptQueue, embed: EmbedFn) -> list[int]:
    """Fill the free slots from the queue; the requests whose first token already ended them."""
    ended: list[int] = []
    waiting = prompts.waiting
    while waiting and (free := stream.free_slots()):
        batch = [waiting.popleft() for _ in range(min(len(free), len(waiting)))]
        firsts = [
            stream.admit(slot, request, embeds, prompts.shared.get(request))
            for slot, request, embeds in zip(free, batch, embed(batch))
        ]
        for slot, first in zip(free, torch.stack(firsts).tolist()):  # one device sync
            request = stream.start_answer(slot, first)
            if request is not None:
                ended.append(request)
                stream.release(request)  # frees the slot for the next pass of this loop
    return ended
