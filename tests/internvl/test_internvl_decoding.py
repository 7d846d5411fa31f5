"""Decoding: the page text is exactly what the model wrote (SentencePiece's own decode), a
documented difference from the original chat(), whose tokenizer also removes the space before
punctuation; TESSERA_INTERNVL_CHAT_CLEANUP=true gives chat()'s text instead."""

from __future__ import annotations

import pytest

from tessera.config import Settings
from workers.internvl.engine import EngineOptions, InternVLEngine

pytestmark = pytest.mark.internvl

# French puts a space before ! and ?; a transcription keeps it
TEXTS = [
    "Bonjour ! Ça va ?",
    "Total : 10 , 20 and 30 .",
    "the chart ' s title is n't here",
    "书生浦语 图表 2024 .",
]


# transformers' clean_up_tokenization, in its order
CLEAN_UP = [(f" {p}", p) for p in (".", "?", "!", ",")] + [(" ' ", "'")] + [
    (f" {s}", s) for s in ("n't", "'m", "'s", "'ve", "'re")
]


def chat_decode(sp, ids: list[int]) -> str:
    """The V1-5 chat() answer: the slow InternLM2 tokenizer's decode (SentencePiece, then
    clean_up_tokenization, which its convert_tokens_to_string calls), stripped."""
    text = sp.decode(ids)
    for before, after in CLEAN_UP:
        text = text.replace(before, after)
    return text.strip()


@pytest.fixture(scope="module")
def sp(tiny_original):
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=str(tiny_original / "tokenizer.model"))


@pytest.mark.parametrize("text", TEXTS)
def test_the_text_is_what_the_model_wrote(tiny_engine, sp, text):
    ids = tiny_engine.tokenizer(text, add_special_tokens=False).input_ids
    assert tiny_engine.runner.decode(ids) == sp.decode(ids) == text
    assert chat_decode(sp, ids) != text  # the choice matters for each of these


@pytest.mark.parametrize("text", TEXTS)
def test_chat_cleanup_gives_the_original_chat_text(tiny_engine, sp, text):
    settings = Settings(engine="internvl", model_path="/m", internvl_chat_cleanup=True)
    options = EngineOptions.from_settings(settings)
    engine = InternVLEngine(tiny_engine.runner.model, tiny_engine.tokenizer, options)
    ids = tiny_engine.tokenizer(text, add_special_tokens=False).input_ids
    assert engine.runner.decode(ids) == chat_decode(sp, ids)
