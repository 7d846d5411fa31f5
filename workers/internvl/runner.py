"""Generation on the device: chunked vision, feature scatter, continuous-batching greedy decode.

transformers' own path runs the vision tower on every tile of the batch at once
(64 pages x 13 tiles = 832 tiles, about 20 GiB of activations: out of memory).
Here a request's tiles go through the vision tower when the request is
admitted to a decode slot, in chunks of at most `vision_chunk_tiles`, each
distinct image once (the OCR and the chart-grounding prompts of a page share
it); the projected features are written into the `<IMG_CONTEXT>` slots of the
prompt's token embeddings, and the decoder (decode.py) only sees embeddings.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from workers.internvl.batching import Generation, Request, plan_streams, shrink_on_failure
from workers.internvl.decode import DecodeOptions, PrefillCounts, PromptQueue, decode_stream
from workers.internvl.special_tokens import SpecialTokens
from workers.internvl.tiling import normalise_tensor
from workers.internvl.vision import image_features

# follow_up(request key, its answer) -> the requests that answer calls for
FollowUp = Callable[[tuple, Generation], list[Request]]


@dataclass
class RunOptions:
    max_new_tokens: int = 1024
    min_new_tokens: int = 0  # > 0 only to force a fixed output length (benchmarks)
    max_batch_rows: int = 4  # decode slots
    max_batch_tokens: int | None = None  # KV cache positions per stream (slots x room)
    vision_chunk_tiles: int = 128
    check_every: int = 4
    # decode like the original chat(): no space before . , ? ! 's n't ... (text.py, README)
    chat_cleanup: bool = False


@dataclass
class RunStats:
    """Running totals: logged after each worker batch (`infer.batch_done`), printed by the bench."""

    streams: int = 0
    requests: int = 0
    tiles: int = 0
    prompt_tokens: int = 0
    prefilled_tokens: int = 0  # prompt tokens computed
    shared_prefix_tokens: int = 0  # prompt tokens copied from a prompt of the same image
    generated_tokens: int = 0
    vision_seconds: float = 0.0
    generate_seconds: float = 0.0  # prefill + decode, vision excluded


class GenerationRunner:
    def __init__(self, model, tokenizer, options: RunOptions):
        self.model = model
        self.tokenizer = tokenizer
        self.options = options
        self.special = SpecialTokens.from_tokenizer(tokenizer)
        self.stats = RunStats()

    @property
    def device(self) -> torch.device:
        return self.model.get_input_embeddings().weight.device

    def run(self, requests: list[Request]) -> dict[tuple, Generation]:
        """Answers by request key; a request that cannot fit alone gets an error, no exception."""
        return dict(self.iter_run(requests))

    def iter_run(
        self,
        requests: list[Request],
        follow_up: FollowUp | None = None,
        follow_up_prompt: int = 0,
    ) -> Iterator[tuple[tuple, Generation]]:
        """(request key, answer) as each answer ends, every request exactly once.

        `follow_up(key, answer)` returns the requests an answer calls for (a page's
        chart tables, once its grounding answer is in); streams leave room for their
        prompts (up to `follow_up_prompt` tokens) and they join the running stream, or
        a stream of their own afterwards when they are longer.
        """
        o = self.options
        lengths = [len(r.prompt_ids) for r in requests]
        answer_room = o.max_new_tokens + o.check_every
        later: list[Request] = []
        for indices, slots in plan_streams(
            lengths, o.max_batch_rows, o.max_batch_tokens, answer_room, follow_up_prompt
        ):
            stream = _images_together([requests[i] for i in indices])
            for request, answer in shrink_on_failure(
                stream,
                slots,
                lambda items, n: self._stream(items, n, follow_up, later, follow_up_prompt),
                _is_out_of_memory,
                _failed,
            ):
                yield request.key, answer
        if later:
            yield from self.iter_run(later, follow_up, follow_up_prompt)

    @torch.inference_mode()
    def _stream(
        self,
        stream: list[Request],
        slots: int,
        follow_up: FollowUp | None,
        later: list[Request],
        follow_up_prompt: int,
    ) -> Iterator[tuple[Request, Generation]]:
        """Decode `stream` through `slots` slots; requests that answers call for are appended
        to `stream` (so a retry after running out of memory still has them) or to `later`."""
        features = _StreamFeatures(self, stream)
        options = DecodeOptions(
            max_new_tokens=self.options.max_new_tokens,
            min_new_tokens=self.options.min_new_tokens,
            eos_id=self.special.im_end,
            pad_id=self.special.pad,
            check_every=self.options.check_every,
        )
        lengths = [len(r.prompt_ids) for r in stream]
        max_prompt = max(*lengths, follow_up_prompt)
        queue = PromptQueue.of(lengths, [self._limit(r) for r in stream], shared_prefixes(stream))
        counts = PrefillCounts()
        start = self._now()
        try:
            for i, tokens in decode_stream(
                self.model, queue, features.embed, options, slots, counts, max_prompt
            ):
                answer = self._answer(stream[i], tokens, features, slots)
                for extra in follow_up(stream[i].key, answer) if follow_up else ():
                    if len(extra.prompt_ids) <= max_prompt:
                        stream.append(extra)
                        features.add(extra)
                        queue.add(len(extra.prompt_ids), self._limit(extra))
                    else:
                        later.append(extra)
                yield stream[i], answer
        finally:  # also when out of memory: the stream's time is spent either way
            s = self.stats
            s.streams += 1
            s.prefilled_tokens += counts.computed
            s.shared_prefix_tokens += counts.shared
            s.tiles += features.tiles
            s.vision_seconds += features.seconds
            s.generate_seconds += self._now() - start - features.seconds

    def _answer(
        self, request: Request, tokens: list[int], features: _StreamFeatures, slots: int
    ) -> Generation:
        """The answer, charged its image's vision time and its share of the decode batch's
        time (its time in a slot / slots)."""
        content, new_tokens, truncated = split_answer(
            tokens, self._limit(request), self.special.im_end
        )
        in_slot = time.perf_counter() - features.admitted_at[id(request)]
        s = self.stats
        s.requests += 1
        s.prompt_tokens += len(request.prompt_ids)
        s.generated_tokens += len(tokens)
        return Generation(
            text=self.decode(content, request.keep_special_tokens),
            tokens=content,
            new_tokens=new_tokens,
            truncated=truncated,
            timings={"vision": features.share(request), "generate": in_slot / slots},
        )

    def decode(self, tokens: list[int], keep_special_tokens: bool = False) -> str:
        """An answer's text. Special tokens are dropped, as the original `chat()` drops them,
        unless kept (grounding answers: `<ref>`, `<box>` are special tokens). With
        `chat_cleanup`, the space before punctuation goes too, as the original InternLM2
        tokenizer's decode does (its `convert_tokens_to_string` calls this very function)."""
        text = self.tokenizer.decode(tokens, skip_special_tokens=not keep_special_tokens)
        return self.tokenizer.clean_up_tokenization(text) if self.options.chat_cleanup else text

    def _limit(self, request: Request) -> int:
        return min(
            request.max_new_tokens or self.options.max_new_tokens, self.options.max_new_tokens
        )

    def encode_images(self, requests: list[Request]) -> dict[tuple, torch.Tensor]:
        """Projected features per distinct image: (tiles * 256, hidden), vision run in chunks."""
        images = {r.image_key: r.pixels for r in requests}
        tiles = [tile for pixels in images.values() for tile in pixels]
        chunk = self.options.vision_chunk_tiles
        parts = [
            self._features(np.stack(tiles[s : s + chunk])) for s in range(0, len(tiles), chunk)
        ]
        flat = torch.cat(parts)  # (all tiles, 256, hidden)
        split = flat.split([len(p) for p in images.values()])
        return {key: f.reshape(-1, f.shape[-1]) for key, f in zip(images, split)}

    def _features(self, pixels: np.ndarray) -> torch.Tensor:
        values = normalise_tensor(torch.from_numpy(pixels).to(self.device), self.model.dtype)
        return image_features(self.model, values)

    def embed(self, request: Request, features: torch.Tensor) -> torch.Tensor:
        """The prompt's token embeddings (length, hidden), image features in the `<IMG_CONTEXT>` slots."""
        ids = torch.tensor(request.prompt_ids, dtype=torch.long, device=self.device)
        embeds = self.model.get_input_embeddings()(ids)
        slots = ids == self.special.img_context
        if int(slots.sum()) != features.shape[0]:
            raise RuntimeError(
                f"{int(slots.sum())} image slots but {features.shape[0]} image features"
            )
        embeds[slots] = features.to(embeds.dtype)
        return embeds

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()


class _StreamFeatures:
    """A stream's image features: encoded when the first prompt using them is admitted, dropped
    after the last, so a long stream never holds every page's features at once."""

    def __init__(self, runner: GenerationRunner, stream: list[Request]):
        self.runner, self.stream = runner, stream
        self.sharers = Counter(r.image_key for r in stream)
        self.users = Counter(self.sharers)  # prompts not yet admitted, per image
        self.ready: dict[tuple, torch.Tensor] = {}
        self.seconds = 0.0
        self.tiles = 0
        self._share: dict[tuple, float] = {}
        self.admitted_at: dict[int, float] = {}  # by id(request)

    def add(self, request: Request) -> None:
        """A request appended to the stream while it runs."""
        self.sharers[request.image_key] += 1
        self.users[request.image_key] += 1

    def embed(self, indices: list[int]) -> list[torch.Tensor]:
        batch = [self.stream[i] for i in indices]
        new = list({r.image_key: r for r in batch if r.image_key not in self.ready}.values())
        if new:
            start = self.runner._now()
            self.ready.update(self.runner.encode_images(new))
            seconds = self.runner._now() - start
            self.seconds += seconds
            tiles = sum(len(r.pixels) for r in new)
            self.tiles += tiles
            for r in new:
                self._share[r.image_key] = seconds * len(r.pixels) / tiles
        embeds = [self.runner.embed(r, self.ready[r.image_key]) for r in batch]
        now = time.perf_counter()
        self.admitted_at.update((id(r), now) for r in batch)
        for r in batch:
            self.users[r.image_key] -= 1
            if not self.users[r.image_key]:
                del self.ready[r.image_key]
        return embeds

    def share(self, request: Request) -> float:
        """The vision seconds of the request's image, split between the prompts that share it."""
        return self._share.get(request.image_key, 0.0) / self.sharers[request.image_key]


def _images_together(stream: list[Request]) -> list[Request]:
    """The stream with the prompts of each image next to each other (first image first), so
    a page's second prompt is admitted while its first still holds a slot."""
    by_image: dict[tuple, list[Request]] = {}
    for request in stream:
        by_image.setdefault(request.image_key, []).append(request)
    return [request for group in by_image.values() for request in group]


def shared_prefixes(stream: list[Request]) -> dict[int, tuple[int, int]]:
    """For each prompt after the first of its image: (index of that first prompt, leading
    tokens the two have in common), the last prompt token always left to compute."""
    first: dict[tuple, int] = {}
    shared = {}
    for i, request in enumerate(stream):
        if request.image_key not in first:
            first[request.image_key] = i
            continue
        donor = stream[first[request.image_key]].prompt_ids
        n = 0
        limit = min(len(donor), len(request.prompt_ids) - 1)
        while n < limit and donor[n] == request.prompt_ids[n]:
            n += 1
        if n:
            shared[i] = (first[request.image_key], n)
    return shared


def split_answer(row: list[int], max_new_tokens: int, end_id: int) -> tuple[list[int], int, bool]:
    """(tokens before `end_id` (<|im_end|>), tokens generated incl. it, stopped by the length
    limit)."""
    if end_id in row:
        end = row.index(end_id)
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
