"""The in-place-cache greedy decoder gives exactly `model.generate`'s greedy tokens (tiny model, CPU)."""

from __future__ import annotations

import pytest
import torch

from workers.internvl.batching import left_pad
from workers.internvl.decode import DecodeOptions, greedy_decode
from workers.internvl.kv_cache import KVBuffers

pytestmark = pytest.mark.internvl

PAD = 2


@pytest.fixture(scope="module")
def model(tiny_native):
    from workers.internvl.loader import load_model

    return load_model(tiny_native, torch.device("cpu"), torch.float32)


def _batch(model, lengths: list[int], seed: int = 0):
    """Left-padded embeddings of random prompts of the given lengths."""
    g = torch.Generator().manual_seed(seed)
    rows = [torch.randint(3, 90000, (n,), generator=g).tolist() for n in lengths]
    ids, mask = left_pad(rows, PAD)
    ids, mask = torch.from_numpy(ids), torch.from_numpy(mask)
    return model.get_input_embeddings()(ids).detach(), mask


def _generate(model, embeds, mask, max_new: int, eos: int, min_new: int = 0) -> torch.Tensor:
    return model.generate(
        inputs_embeds=embeds,
        attention_mask=mask,
        max_new_tokens=max_new,
        min_new_tokens=min_new,
        do_sample=False,
        num_beams=1,
        eos_token_id=eos,
        pad_token_id=PAD,
    )


@pytest.fixture()
def ends_often(model):
    """Make the model say token 7 (as its end token) whenever its hidden state leans one way.

    A hook on the output head, so both decoders see the same model: rows end at
    different, content-decided steps, which exercises padding after the end
    and stopping once every row has ended.
    """
    eos = 7

    def boost(_module, inputs, output):
        lean = (inputs[0][..., :1] > 0.3).to(output.dtype)
        return output + 1000.0 * lean * torch.nn.functional.one_hot(
            torch.tensor(eos), output.shape[-1]
        ).to(output.dtype)

    handle = model.lm_head.register_forward_hook(boost)
    yield eos
    handle.remove()


@pytest.mark.parametrize("prefill_rows", [1, 2, 8])
def test_same_tokens_as_generate_over_a_left_padded_batch(model, prefill_rows):
    embeds, mask = _batch(model, [7, 12, 3, 12, 9])
    reference = _generate(model, embeds, mask, max_new=16, eos=92542)
    options = DecodeOptions(max_new_tokens=16, eos_id=92542, pad_id=PAD, prefill_rows=prefill_rows)
    assert torch.equal(greedy_decode(model, embeds, mask, options), reference)


@pytest.mark.parametrize("check_every", [1, 3, 64])
def test_rows_that_end_are_padded_and_the_batch_stops_when_all_have(model, ends_often, check_every):
    embeds, mask = _batch(model, [5, 11, 8, 2, 11, 6], seed=1)
    reference = _generate(model, embeds, mask, max_new=40, eos=ends_often)
    ended_at = [row.tolist().index(ends_often) for row in reference]
    assert len(set(ended_at)) > 1, "the hook should end rows at different steps"
    assert reference.shape[1] == max(ended_at) + 1 < 40  # generate stopped early too
    options = DecodeOptions(
        max_new_tokens=40, eos_id=ends_often, pad_id=PAD, prefill_rows=4, check_every=check_every
    )
    assert torch.equal(greedy_decode(model, embeds, mask, options), reference)


def test_min_new_tokens_holds_the_end_back(model, ends_often):
    embeds, mask = _batch(model, [4, 9], seed=2)
    reference = _generate(model, embeds, mask, max_new=12, eos=ends_often, min_new=12)
    options = DecodeOptions(max_new_tokens=12, min_new_tokens=12, eos_id=ends_often, pad_id=PAD)
    tokens = greedy_decode(model, embeds, mask, options)
    assert torch.equal(tokens, reference)
    assert tokens.shape == (2, 12) and ends_often not in tokens[:, :11]


def test_cache_is_written_in_place_and_sized_by_prompt_plus_answer(model):
    text = model.config.text_config
    buffers = KVBuffers(text, rows=3, length=20, dtype=torch.float32, device="cpu")
    assert len(buffers.layers) == text.num_hidden_layers
    keys, _ = buffers.layers[0]
    address = keys.data_ptr()
    cache = buffers.cache(slice(1, 3))
    new = torch.randn(2, keys.shape[1], 5, keys.shape[-1])
    seen_keys, _ = cache.update(new, new + 1, 0)
    assert cache.get_seq_length() == 5 and seen_keys.shape[-2] == 5
    assert torch.equal(keys[1:3, :, :5], new) and keys.data_ptr() == address
    assert KVBuffers.bytes_needed(text, 3, 20, torch.float32) == 2 * keys.numel() * 4 * len(
        buffers.layers
    )
