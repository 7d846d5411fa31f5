"""The internlm2-chat template, character for character, and its token ids."""

from __future__ import annotations

import pytest

from workers.internvl.prompt import build_prompt, image_placeholder

pytestmark = pytest.mark.internvl


def test_template_exactly():
    prompt = build_prompt("Read it.", 1, "SYS", tokens_per_tile=2)
    assert prompt == (
        "<|im_start|>system\nSYS<|im_end|>"
        "<|im_start|>user\n<img><IMG_CONTEXT><IMG_CONTEXT></img>\nRead it.<|im_end|>"
        "<|im_start|>assistant\n"
    )


def test_placeholder_counts_256_per_tile_including_thumbnail():
    # 800x1300 -> 6 tiles + thumbnail = 7 -> 1792 context tokens
    placeholder = image_placeholder(7)
    assert placeholder.count("<IMG_CONTEXT>") == 1792
    assert placeholder.startswith("<img><IMG_CONTEXT>") and placeholder.endswith(
        "<IMG_CONTEXT></img>"
    )


def test_empty_system_message_keeps_the_system_turn():
    assert build_prompt("q", 1, "").startswith(
        "<|im_start|>system\n<|im_end|><|im_start|>user\n<img>"
    )


def test_prompt_token_ids(tiny_engine):
    tokenizer = tiny_engine.tokenizer
    ids = tokenizer(build_prompt("the page", 3, "you are")).input_ids
    assert ids[:2] == [1, 92543]  # bos, <|im_start|>
    assert ids.count(92546) == 3 * 256
    start, end = ids.index(92544), ids.index(92545)
    assert end - start - 1 == 768 and set(ids[start + 1 : end]) == {92546}
    assert ids.count(92542) == 2  # <|im_end|> after system and user turns
    assert ids[-1] != 92542  # the assistant turn is left open


def test_every_prompt_and_the_system_message_are_settings(monkeypatch):
    from tessera.config import Settings
    from workers.internvl.prompt import GROUNDING_PROMPT, OCR_PROMPT, SYSTEM_MESSAGE, Prompts

    assert Prompts.from_settings(Settings()) == Prompts()
    assert (Prompts().system, Prompts().ocr) == (SYSTEM_MESSAGE, OCR_PROMPT)
    assert Prompts().grounding == GROUNDING_PROMPT
    assert Prompts().grounding_phrases == ("chart", "graph")
    env = {
        "TESSERA_INTERNVL_SYSTEM_MESSAGE": "",
        "TESSERA_INTERNVL_OCR_PROMPT": "Read it.",
        "TESSERA_INTERNVL_GROUNDING_PROMPT": "Where is the {phrase}?",
        "TESSERA_INTERNVL_GROUNDING_PHRASES": "bar chart, pie chart,",
        "TESSERA_INTERNVL_TABLE_PROMPT": "Table, please.",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    prompts = Prompts.from_settings(Settings())
    phrases = ("bar chart", "pie chart")
    assert prompts == Prompts("", "Read it.", "Where is the {phrase}?", phrases, "Table, please.")
    assert prompts.grounding_question("pie chart") == "Where is the pie chart?"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TESSERA_INTERNVL_GROUNDING_PROMPT", "Where is the chart?"),
        ("TESSERA_INTERNVL_GROUNDING_PHRASES", " , "),
    ],
)
def test_a_grounding_prompt_without_a_phrase_is_refused(monkeypatch, name, value):
    from pydantic import ValidationError

    from tessera.config import Settings

    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=name):
        Settings()
