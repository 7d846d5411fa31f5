"""The continuous-batching decoder gives every prompt exactly greedy `generate`'s tokens for it alone.

Tiny random model on the CPU, float32. A hook on the output head makes answers
end at content-decided steps (1 token to the length limit), so slots are
refilled at different times, prompts of different lengths share the decode
batch, and rows keep decoding past their end until the host looks.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch

from workers.internvl.decode import DecodeOptions, PrefillCounts, PromptQueue, decode_stream
from workers.internvl.kv_cache import KVBuffers, StepPlan

pytestmark = pytest.mark.internvl

PAD = 2
EOS = 7  # a plain vocabulary token, made the end token by the hook


@pytest.fixture(scope="module")
def model(tiny_native):
    from workers.internvl.loader import load_model

    return load_model(tiny_native, torch.device("cpu"), torch.float32)


@contextmanager
def _ending_hook(model):
    """The model says EOS whenever its last hidden state leans one way (same hook for both decoders)."""

    def boost(_module, inputs, output):
        lean = (inputs[0][..., :1] > 0.9).to(output.dtype)
        end = torch.nn.functional.one_hot(torch.tensor(EOS), output.shape[-1]).to(output.dtype)
        return output + 1000.0 * lean * end

    handle = model.lm_head.register_forward_hook(boost)
    try:
        yield
    finally:
        handle.remove()


@pytest.fixture()
def ends_at_varied_steps(model):
    with _ending_hook(model):
        yield


def _prompts(model, lengths: list[int], seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    embed = model.get_input_embeddings()
    return [embed(torch.randint(3, 90000, (n,), generator=g)).detach() for n in lengths]


def _alone(model, prompt: torch.Tensor, max_new: int, min_new: int = 0) -> list[int]:
    """transformers' greedy generate on one unpadded prompt, cut after its end token."""
    out = model.generate(
        inputs_embeds=prompt[None],
        attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
        max_new_tokens=max_new,
        min_new_tokens=min_new,
        do_sample=False,
        num_beams=1,
        eos_token_id=EOS,
        pad_token_id=PAD,
    )[0].tolist()
    return out[: out.index(EOS) + 1] if EOS in out else out


def _stream(
    model, prompts, slots: int, limits=None, **options
) -> tuple[dict[int, list[int]], list[int]]:
    """Answers by prompt index, and the order they came out in."""
    admitted: list[int] = []

    def embed(indices):
        admitted.extend(indices)
        return [prompts[i] for i in indices]

    options = DecodeOptions(eos_id=EOS, pad_id=PAD, **options)
    limits = limits or [options.max_new_tokens] * len(prompts)
    queue = PromptQueue.of([len(p) for p in prompts], limits)
    decoded = list(decode_stream(model, queue, embed, options, slots))
    assert sorted(admitted) == list(range(len(prompts))), "every prompt admitted exactly once"
    return dict(decoded), [i for i, _ in decoded]


LENGTHS = [7, 12, 3, 12, 9, 20, 5, 16]


MAX_NEW = 10


@pytest.fixture(scope="module")
def references(model):
    """Answers to LENGTHS' prompts, one generate each, computed once (with the hook on)."""
    with _ending_hook(model):
        return [_alone(model, p, max_new=MAX_NEW) for p in _prompts(model, LENGTHS)]


def test_the_hook_makes_answers_of_varied_length(references):
    lengths = [len(r) for r in references]
    assert min(lengths) == 1 and len(set(lengths)) >= 5
    assert any(len(r) == MAX_NEW and r[-1] != EOS for r in references)  # one is cut at the limit


@pytest.mark.parametrize("slots", [1, 3, 8])
@pytest.mark.parametrize("check_every", [1, 4])
def test_every_prompt_gets_generates_tokens(
    model, ends_at_varied_steps, references, slots, check_every
):
    prompts = _prompts(model, LENGTHS)
    answers, _ = _stream(model, prompts, slots, max_new_tokens=MAX_NEW, check_every=check_every)
    assert [answers[i] for i in range(len(prompts))] == references


def test_short_answers_leave_while_long_ones_go_on(model, ends_at_varied_steps, references):
    """The longest answer goes in first; with 2 slots, shorter ones pass through the other slot."""
    longest = max(range(len(LENGTHS)), key=lambda i: len(references[i]))
    rest = [i for i in range(len(LENGTHS)) if i != longest]
    prompts = _prompts(model, LENGTHS)
    answers, order = _stream(
        model, [prompts[longest]] + [prompts[i] for i in rest], 2, max_new_tokens=MAX_NEW
    )
    assert order[0] != 0 and order.index(0) > 1  # at least two came in after it and left before
    assert answers[0] == references[longest]
    assert [answers[k + 1] for k in range(len(rest))] == [references[i] for i in rest]


def test_min_new_tokens_holds_the_end_back(model, ends_at_varied_steps):
    prompts = _prompts(model, [4, 9, 6], seed=2)
    answers, _ = _stream(model, prompts, 2, max_new_tokens=12, min_new_tokens=12)
    for i, prompt in enumerate(prompts):
        assert answers[i] == _alone(model, prompt, max_new=12, min_new=12)
        assert len(answers[i]) == 12 and EOS not in answers[i]


def test_each_prompt_can_have_its_own_length_limit(model, ends_at_varied_steps):
    prompts = _prompts(model, [6, 6, 6, 6], seed=3)
    limits = [1, 5, 9, 3]
    answers, _ = _stream(model, prompts, 2, limits, max_new_tokens=9, min_new_tokens=9)
    assert [len(answers[i]) for i in range(4)] == limits  # forced to each prompt's own limit
    for i, prompt in enumerate(prompts):
        assert answers[i] == _alone(model, prompt, max_new=limits[i], min_new=limits[i])


def test_a_shared_prefix_is_copied_not_computed_and_changes_no_token(model, ends_at_varied_steps):
    """Prompts 1 and 3 start like prompt 0 (the OCR and chart prompts of one page do)."""
    base = _prompts(model, [30, 5, 7, 9], seed=4)
    prompts = [
        base[0],
        torch.cat([base[0][:24], base[1]]),
        base[2],
        torch.cat([base[0][:20], base[3]]),
    ]
    shared = {1: (0, 24), 3: (0, 20)}
    counts = PrefillCounts()
    queue = PromptQueue.of([len(p) for p in prompts], [MAX_NEW] * 4, shared)
    options = DecodeOptions(max_new_tokens=MAX_NEW, eos_id=EOS, pad_id=PAD)
    answers = dict(
        decode_stream(model, queue, lambda idx: [prompts[i] for i in idx], options, 4, counts)
    )
    assert counts.shared == 24 + 20
    assert counts.computed == sum(len(p) for p in prompts) - counts.shared
    assert [answers[i] for i in range(4)] == [_alone(model, p, MAX_NEW) for p in prompts]


def test_a_prefix_whose_owner_left_its_slot_is_computed(model):
    prompts = _prompts(model, [12, 12], seed=5)
    prompts[1] = torch.cat([prompts[0][:8], prompts[1][:4]])
    counts = PrefillCounts()
    options = DecodeOptions(max_new_tokens=3, eos_id=EOS, pad_id=PAD)
    lengths = [len(p) for p in prompts]

    def embed(idx):
        return [prompts[i] for i in idx]

    queue = PromptQueue.of(lengths, [3, 3], {1: (0, 8)})
    answers = dict(decode_stream(model, queue, embed, options, 1, counts))
    assert counts.shared == 0 and counts.computed == 24  # one slot: prompt 0 was gone
    assert answers[1] == _alone(model, prompts[1], 3)


def test_prompts_added_while_the_stream_runs_are_answered_too(model, ends_at_varied_steps):
    """Each answer of the first three prompts brings one more prompt (as a page's grounding
    answer brings its charts' tables); all six get generate's tokens."""
    prompts = _prompts(model, [9, 14, 6, 11, 7, 13], seed=6)
    queue = PromptQueue.of([len(p) for p in prompts[:3]], [MAX_NEW] * 3)
    options = DecodeOptions(max_new_tokens=MAX_NEW, eos_id=EOS, pad_id=PAD)
    queued = prompts[:3]  # by queue index
    answers, added = {}, {}
    for index, tokens in decode_stream(
        model, queue, lambda idx: [queued[i] for i in idx], options, 2, max_prompt=14
    ):
        answers[index] = tokens
        if index < 3:  # queue index of the prompt this answer brought
            queued.append(prompts[index + 3])
            added[index] = queue.add(len(prompts[index + 3]), MAX_NEW)
    assert sorted(answers) == list(range(6)) and sorted(added.values()) == [3, 4, 5]
    for i in range(3):
        assert answers[i] == _alone(model, prompts[i], MAX_NEW)
        assert answers[added[i]] == _alone(model, prompts[i + 3], MAX_NEW)


def test_no_prompts_no_work(model):
    queue = PromptQueue.of([], [])
    assert list(decode_stream(model, queue, lambda i: [], DecodeOptions(max_new_tokens=4), 4)) == []


def test_decode_step_writes_each_slot_at_its_own_column(model):
    text = model.config.text_config
    buffers = KVBuffers(text, slots=3, capacity=20, dtype=torch.float32, device="cpu")
    assert len(buffers.layers) == text.num_hidden_layers
    keys, _ = buffers.layers[0]
    address = keys.data_ptr()
    prompt = torch.randn(1, keys.shape[1], 5, keys.shape[-1])
    buffers.prefill_cache(1).update(prompt, prompt, 0)
    assert torch.equal(keys[1, :, :5], prompt[0]) and not keys[[0, 2]].any()
    plan = StepPlan(slots=torch.arange(3), write_at=torch.tensor([0, 5, 2]), view_len=6)
    step = torch.randn(3, keys.shape[1], 1, keys.shape[-1])
    seen, _ = buffers.decode_cache(plan).update(step, step, 0)
    assert seen.shape[-2] == 6 and keys.data_ptr() == address
    for slot, column in enumerate([0, 5, 2]):
        assert torch.equal(keys[slot, :, column], step[slot, :, 0])
    assert KVBuffers.bytes_needed(text, 3, 20, torch.float32) == 2 * keys.numel() * 4 * len(
        buffers.layers
    )
