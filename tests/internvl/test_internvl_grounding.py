"""Grounding: the trained question, answers decoded with their markup, every answer form read
and turned into page pixels, and a trained-style answer found by the engine end to end."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from tests.utils.scripted_answers import scripted_answers
from workers.engines.base import PageInput
from workers.internvl.engine import EngineOptions, InternVLEngine
from workers.internvl.grounding import iou, merge_boxes, parse_grounding
from workers.internvl.pages import prepare
from workers.internvl.prompt import Prompts, build_prompt

pytestmark = pytest.mark.internvl

# eval/refcoco/evaluate_grounding.py at the V1-5 release, verbatim
TRAINED = "Please provide the bounding box coordinate of the region this sentence describes: "


def _page(width: int, height: int, **kwargs) -> PageInput:
    rng = np.random.default_rng(width * height)
    pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return PageInput(image=Image.fromarray(pixels), **kwargs)


def test_one_request_per_phrase_in_the_trained_form(tiny_engine):
    job = prepare(0, _page(800, 600, tasks=("charts",), max_tiles=2))
    requests = tiny_engine._first_requests(job)
    system, tiles = Prompts().system, job.plan.tiles
    questions = [f"{TRAINED}<ref>{phrase}</ref>" for phrase in ("chart", "graph")]
    expected = [tiny_engine.tokenizer(build_prompt(q, tiles, system)).input_ids for q in questions]
    assert [r.prompt_ids for r in requests] == expected
    assert all(r.keep_special_tokens for r in requests)


# page 2000 x 1000: x in thousandths of 2000 px, y of 1000 px
FORMS = {
    "one box": (
        "<ref>chart</ref><box>[[100, 200, 500, 600]]</box>",
        [[200.0, 200.0, 1000.0, 600.0]],
    ),
    "one box, two quads": (
        "<ref>chart</ref><box>[[0, 0, 500, 500], [500, 500, 1000, 1000]]</box>",
        [[0.0, 0.0, 1000.0, 500.0], [1000.0, 500.0, 2000.0, 1000.0]],
    ),
    "two pairs": (
        "<ref>chart</ref><box>[[100, 100, 300, 300]]</box>"
        "<ref>chart</ref><box>[[600.5, 50, 900, 450.5]]</box>",
        [[200.0, 100.0, 600.0, 300.0], [1201.0, 50.0, 1800.0, 450.5]],
    ),
    "bare list": ("[[100, 200, 500, 600]]", [[200.0, 200.0, 1000.0, 600.0]]),
    "bare lists in a sentence": (
        "The chart is at [[0, 0, 250, 250]] and [[750, 750, 1000, 1000]].",
        [[0.0, 0.0, 500.0, 250.0], [1500.0, 750.0, 2000.0, 1000.0]],
    ),
}


@pytest.mark.parametrize("form", FORMS)
def test_answer_forms_survive_the_engines_decoding_and_come_out_in_page_pixels(tiny_engine, form):
    """Encoded with the converted tokenizer, decoded as the engine decodes a grounding answer."""
    text, expected = FORMS[form]
    ids = tiny_engine.tokenizer(text, add_special_tokens=False).input_ids
    if "<box>" in text:
        assert tiny_engine.tokenizer.convert_tokens_to_ids("<box>") in ids  # one special token
    [request] = tiny_engine._first_requests(prepare(0, _page(448, 448, tasks=("charts",))))[:1]
    decoded = tiny_engine.runner.decode(ids, request.keep_special_tokens)
    assert parse_grounding(decoded, 2000, 1000) == (expected, [])


def test_without_special_tokens_the_markup_is_gone(tiny_engine):
    """Why grounding answers keep their special tokens: decoded like a transcription, the
    markup disappears (the fault this engine had)."""
    ids = tiny_engine.tokenizer("<ref>chart</ref><box>[[100, 200, 500, 600]]</box>").input_ids
    assert "<box>" not in tiny_engine.runner.decode(ids)


def test_reversed_out_of_range_and_duplicate_boxes():
    text = (
        "<box>[[600, 700, 100, 50]]</box><box>[[100, 50, 600, 700]]</box>"
        "<box>[[-20, 0, 1200, 400]]</box>"
    )
    boxes, warnings = parse_grounding(text, 1000, 2000)
    assert boxes == [[100.0, 100.0, 600.0, 1400.0], [0.0, 0.0, 1000.0, 800.0]]
    assert warnings == []


def test_a_quad_whose_box_was_not_closed_still_counts():
    """An answer cut after its last quad: the repository's evaluation reads the quad too."""
    boxes, warnings = parse_grounding("<ref>chart</ref><box>[[100, 200, 300, 400]", 1000, 1000)
    assert boxes == [[100.0, 200.0, 300.0, 400.0]] and warnings == []


@pytest.mark.parametrize("text", ["none", "", "There is no chart on this page.", "None."])
def test_an_answer_without_markup_is_no_box_and_no_warning(text):
    assert parse_grounding(text, 100, 100) == ([], [])


@pytest.mark.parametrize(
    "text",
    [
        "<ref>chart</ref><box>[[1, 2, 3]]</box>",  # three numbers
        "<ref>chart</ref><box>garbage</box>",
        "<ref>chart</ref>",  # ref, no box
        "<box>[[100, 100, 104, 900]]</box>",  # sliver
        "<box>[[a, b, c, d]]</box>",
        "[[12, 30]]",
    ],
)
def test_malformed_grounding_warns(text):
    boxes, warnings = parse_grounding(text, 1000, 1000)
    assert boxes == [] and len(warnings) == 1 and warnings[0].startswith("chart grounding")


def test_boxes_two_phrases_found_are_merged():
    chart, graph, other = [100, 100, 500, 400], [110, 105, 505, 410], [600, 100, 900, 400]
    assert iou(chart, graph) > 0.9 and iou(chart, other) == 0
    assert merge_boxes([chart, other, graph]) == [chart, other]
    assert merge_boxes([chart, [100, 100, 300, 400]]) == [chart, [100, 100, 300, 400]]  # 0.5


def test_a_trained_style_answer_becomes_a_chart_with_its_table(tiny_engine):
    """The model answers as InternVL 1.5 does (steered logits, tests/utils/scripted_answers.py):
    the engine decodes the markup, finds the box in page pixels, merges the two phrases' boxes,
    crops the chart and reads the table it is then told."""
    tokenizer = tiny_engine.tokenizer
    # "chart" and "table" are one token each: same prompt length, same scripted answer
    prompts = Prompts(grounding_phrases=("chart", "table"))
    engine = InternVLEngine(
        tiny_engine.runner.model, tokenizer, EngineOptions(max_new_tokens=64, prompts=prompts)
    )
    page = _page(1000, 800, tasks=("charts",), max_tiles=2)
    job = prepare(0, page)
    grounding = engine._first_requests(job)
    box = [100.0, 160.0, 500.0, 480.0]  # [[100, 200, 500, 600]] of 1000 x 800
    [table] = engine._table_requests(prepare(0, page), [box])
    end = engine.runner.special.im_end

    def answer(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False).input_ids + [end]

    found = answer("<ref>chart</ref><box>[[100, 200, 500, 600]]</box>")
    script = {len(r.prompt_ids): found for r in grounding}
    script[len(table.prompt_ids)] = answer("Title: Sales\n| Year | Sales |\n|--|--|\n| 2019 | 10 |")
    with scripted_answers(engine.runner.model, script):
        result = engine.process([page])[0]
    # the only warning: a 1000x800 page on a 1x1 grid is read at 45% of its resolution
    assert len(grounding) == 2 and result.recognition["scale"] < 0.5
    assert [warning for warning in result.warnings if not warning.startswith("read at ")] == []
    [chart] = result.charts
    assert chart.bbox == box
    assert (chart.title, chart.columns) == ("Sales", ["Year", "Sales"])
    assert chart.rows == [["2019", "10"]]
