"""The rebuilt tokenizer encodes like the SentencePiece model it came from."""

from __future__ import annotations

import pytest

from workers.internvl.tokenizer import build_tokenizer, read_added_tokens, read_sentencepiece

pytestmark = pytest.mark.internvl

SAMPLES = [
    "the page title is the chart",
    "Hello world  with  double spaces",
    "书生浦语 图表 2024",
    "emoji 😀 falls back to bytes\nand newlines\ttabs",
    " leading space and trailing ",
    "Sales | Year\n--- | ---\n10 | 2019",
]


@pytest.fixture(scope="module")
def pair(tiny_original):
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(tiny_original / "tokenizer.model"))
    files = build_tokenizer(
        read_sentencepiece(tiny_original / "tokenizer.model"), read_added_tokens(tiny_original)
    )
    return sp, files.tokenizer


@pytest.mark.parametrize("text", SAMPLES)
def test_same_ids_as_sentencepiece(pair, text):
    sp, tok = pair
    assert tok.encode(text, add_special_tokens=False).ids == sp.encode(text)


def test_added_tokens_split_segments_like_the_slow_tokenizer(pair):
    sp, tok = pair
    # each text segment between added tokens is encoded on its own (dummy prefix included)
    ids = tok.encode("<|im_start|>user\nthe page<|im_end|>", add_special_tokens=False).ids
    assert ids == [92543, *sp.encode("user\nthe page"), 92542]


def test_bos_is_added_and_decoding_round_trips(pair):
    _, tok = pair
    encoding = tok.encode("the chart title")
    assert encoding.ids[0] == 1
    assert tok.decode(encoding.ids, skip_special_tokens=True) == "the chart title"
