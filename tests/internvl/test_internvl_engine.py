"""The engine end to end on the tiny converted checkpoint: real model, real tokenizer, CPU."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from workers.engines.base import PageInput
from workers.internvl.batching import Request
from workers.internvl.pages import prepare
from workers.internvl.prompt import OCR_PROMPT, Prompts, build_prompt
from workers.internvl.tiling import normalise, tile_uint8

pytestmark = pytest.mark.internvl


def _image(width: int, height: int, seed: int) -> Image.Image:
    return Image.fromarray(
        np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    )


def _page(width: int, height: int, seed: int, **kwargs) -> PageInput:
    return PageInput(image=_image(width, height, seed), **kwargs)


def _truncated_png() -> Image.Image:
    buffer = io.BytesIO()
    _image(300, 300, 9).save(buffer, format="PNG")
    return Image.open(io.BytesIO(buffer.getvalue()[:500]))  # lazy: fails when pixels are read


def _requests(engine, sizes: list[tuple[int, int, int]], seed: int = 20) -> list[Request]:
    """OCR requests for random images of (width, height, max_tiles), keyed 0, 1, ..."""
    requests = []
    for key, (w, h, max_tiles) in enumerate(sizes):
        plan, tiles = tile_uint8(_image(w, h, seed + key), max_tiles)
        ids = engine.tokenizer(build_prompt(OCR_PROMPT, plan.tiles, "sys")).input_ids
        requests.append(Request((key,), (key,), tiles, ids))
    return requests


def _greedy_text(engine, page: PageInput) -> str:
    """The reference for a page's transcription: transformers' own greedy `generate` on the
    engine's model, with the engine's prompt and tiles, cut and cleaned as the engine does.
    transformers' own image path always applies pixel shuffle v2, so the image tokens' embeddings
    are filled with the checkpoint's features (v1 as released: workers/internvl/vision.py, checked
    against the original forward in test_internvl_checkpoint.py) and generate runs on embeddings."""
    from workers.internvl.text import clean_transcription
    from workers.internvl.vision import image_features

    plan, pixels = tile_uint8(page.image, page.max_tiles)
    ids = torch.tensor([engine._prompt_ids(engine.options.prompts.ocr, plan.tiles)])
    model = engine.runner.model
    with torch.inference_mode():
        features = image_features(model, torch.from_numpy(normalise(pixels)).to(model.dtype))
        embeds = model.get_input_embeddings()(ids)
        embeds[ids == model.config.image_token_id] = features.reshape(-1, embeds.shape[-1])
        out = model.generate(inputs_embeds=embeds, attention_mask=torch.ones_like(ids), do_sample=False,
                             num_beams=1, max_new_tokens=engine.options.max_new_tokens)
    tokens = out[0].tolist()  # from embeddings, generate returns the new tokens only
    end = engine.runner.special.im_end
    tokens = tokens[: tokens.index(end)] if end in tokens else tokens
    return clean_transcription(engine.tokenizer.decode(tokens, skip_special_tokens=True))


def test_loaded_from_settings_for_the_cpu(tiny_engine):
    assert tiny_engine.name == "internvl"
    assert tiny_engine.runner.model.dtype == torch.float32
    assert tiny_engine.runner.device.type == "cpu"
    assert tiny_engine.options.max_new_tokens == 6 and tiny_engine.options.vision_chunk_tiles == 5


def test_decode_slots_default_to_the_pages_per_call():
    from tessera.config import Settings
    from workers.internvl.engine import EngineOptions

    base = {"engine": "internvl", "model_path": "/m", "engine_batch_size": 96}
    assert EngineOptions.from_settings(Settings(**base)).max_batch_rows == 96
    slots = EngineOptions.from_settings(Settings(**base, internvl_decode_slots=48))
    assert slots.max_batch_rows == 48


def test_results_in_order_with_tiles_and_timings(tiny_engine):
    pages = [
        _page(800, 1300, 0, max_tiles=12),
        _page(448, 448, 1),
        _page(1000, 300, 2, max_tiles=2),
    ]
    results = tiny_engine.process(pages)
    # 800x1300 -> 2x3 + thumbnail; 448x448 -> 1x1; 1000x300 at max 2 -> 2x1 + thumbnail
    assert [r.tiles for r in results] == [
        {"grid": [2, 3], "count": 7},
        {"grid": [1, 1], "count": 1},
        {"grid": [2, 1], "count": 3},
    ]
    for page, result in zip(pages, results):
        assert result.engine == "internvl" and result.charts == []
        assert {"tiling", "vision", "generate"} <= set(result.timings)
        assert all(seconds >= 0 for seconds in result.timings.values())
        # random weights never say <|im_end|> in 6 tokens: the cut is reported, not hidden
        assert result.warnings == ["ocr: answer cut at max_new_tokens (6)"]
        assert result.text == _greedy_text(tiny_engine, page)


def test_one_batch_gives_the_same_answers_as_one_page_at_a_time(tiny_engine):
    pages = [_page(800, 1300, 3), _page(448, 448, 4), _page(1500, 500, 5, max_tiles=4)]
    streams_before = tiny_engine.stats.streams
    together = [r.text for r in tiny_engine.process(pages)]
    assert tiny_engine.stats.streams == streams_before + 1  # one decode stream for all three
    alone = [tiny_engine.process([page])[0].text for page in pages]
    assert together == alone


def test_vision_chunks_do_not_change_features(tiny_engine):
    runner = tiny_engine.runner
    _, tiles = tile_uint8(_image(900, 900, 6), 4)
    group = [Request(("a",), ("a",), tiles, []), Request(("b",), ("b",), tiles[:1], [])]
    chunk = runner.options.vision_chunk_tiles
    try:
        runner.options.vision_chunk_tiles = 1
        one = runner.encode_images(group)
        runner.options.vision_chunk_tiles = 64
        all_at_once = runner.encode_images(group)
    finally:
        runner.options.vision_chunk_tiles = chunk
    assert one[("a",)].shape == (len(tiles) * 256, 64)
    for key in one:
        assert torch.allclose(one[key], all_at_once[key], atol=1e-5)


def test_scattered_features_match_transformers_own_image_path(tiny_engine_v2):
    """Our prompt embeddings (features in the image slots) == transformers' forward with
    pixel_values, on a ps_version v2 checkpoint (transformers knows no other)."""
    runner, model = tiny_engine_v2.runner, tiny_engine_v2.runner.model
    requests = _requests(tiny_engine_v2, [(900, 600, 6), (448, 448, 1)], seed=10)
    with torch.inference_mode():
        features = runner.encode_images(requests)
        for request in requests:
            embeds = runner.embed(request, features[request.image_key])
            ours = model(inputs_embeds=embeds[None], logits_to_keep=1).logits[0, -1]
            theirs = model(
                input_ids=torch.tensor([request.prompt_ids]),
                pixel_values=torch.from_numpy(normalise(request.pixels)),
                logits_to_keep=1,
            ).logits[0, -1]
            assert torch.allclose(ours, theirs, atol=1e-4)
    image_slots = torch.tensor(requests[0].prompt_ids) == runner.special.img_context
    assert int(image_slots.sum()) == 7 * 256


def test_out_of_device_memory_shrinks_the_stream_then_fails_only_the_page_that_cannot_fit(
    tiny_engine,
):
    """The device "runs out of memory" decoding more than one slot, and prefilling the big page."""
    runner = tiny_engine.runner
    requests = _requests(tiny_engine, [(448, 448, 1), (900, 600, 6), (448, 448, 1), (448, 900, 2)])
    big = len(requests[1].prompt_ids)
    expected = {key: g.text for key, g in runner.run(requests).items()}  # no pressure

    def pressure(_module, args, kwargs):
        embeds = kwargs.get("inputs_embeds")
        if embeds is not None and embeds.shape[1] >= big:
            raise torch.cuda.OutOfMemoryError("prefill of the big page")
        if kwargs.get("input_ids") is not None and kwargs["input_ids"].shape[0] > 1:
            raise torch.cuda.OutOfMemoryError("decode with more than one slot")

    handle = runner.model.register_forward_pre_hook(pressure, with_kwargs=True)
    streams_before = runner.stats.streams
    try:
        answers = runner.run(requests)
    finally:
        handle.remove()
    assert answers[(1,)].error.startswith("out of device memory for 7 tiles")
    assert {k: a.text for k, a in answers.items() if k != (1,)} == {
        k: t for k, t in expected.items() if k != (1,)
    }
    assert runner.stats.streams - streams_before >= 3  # 4 slots, 2, then 1


def test_requests_an_answer_calls_for_are_answered_in_the_stream_or_after_it(tiny_engine):
    runner = tiny_engine.runner
    small, big, extra_small = _requests(tiny_engine, [(448, 448, 1), (900, 600, 6), (448, 448, 1)])
    extra_small = Request(("extra",), ("extra",), extra_small.pixels, extra_small.prompt_ids)
    big = Request(("big",), ("big",), big.pixels, big.prompt_ids)
    calls = []

    def follow_up(key, answer):
        calls.append(key)
        return [extra_small, big] if key == small.key else []

    streams = runner.stats.streams
    answers = dict(runner.iter_run([small], follow_up))
    assert set(answers) == {small.key, ("extra",), ("big",)} and len(calls) == 3
    assert runner.stats.streams - streams == 2  # the longer prompt ran in a stream after
    alone = runner.run([Request(("x",), ("x",), big.pixels, big.prompt_ids)])
    assert answers[("big",)].text == alone[("x",)].text


def test_unreadable_page_fails_alone(tiny_engine):
    results = tiny_engine.process(
        [_page(448, 448, 7), PageInput(image=_truncated_png()), _page(448, 448, 8)]
    )
    broken = results[1]
    assert broken.text == "" and broken.tiles is None
    assert broken.warnings[0].startswith("could not read the page image: OSError")
    assert [results[0].text, results[2].text] == [_greedy_text(tiny_engine, _page(448, 448, 7)),
                                                  _greedy_text(tiny_engine, _page(448, 448, 8))]


def test_bad_options_are_warnings(tiny_engine):
    result = tiny_engine.process([_page(800, 1300, 0, max_tiles=0, tasks=("ocr", "translate"))])[0]
    assert result.tiles == {"grid": [1, 1], "count": 1}
    assert "unknown task(s) ignored: translate" in result.warnings
    assert "max_tiles 0 outside 1..40; used 1" in result.warnings


def test_charts_task_runs_grounding_and_never_raises(tiny_engine):
    before = tiny_engine.stats.requests
    page = _page(800, 600, 11, tasks=("ocr", "charts"), max_tiles=2)
    result = tiny_engine.process([page])[0]
    assert tiny_engine.stats.requests - before == 3  # transcription + grounding of 2 phrases
    assert result.text == _greedy_text(tiny_engine, page)  # the grounding prompts change no token
    assert all(isinstance(w, str) for w in result.warnings)
    assert "chart grounding (graph): answer cut at max_new_tokens (6)" in result.warnings


def test_grounding_answers_have_their_own_shorter_limit(tiny_engine):
    options, before = tiny_engine.options, tiny_engine.stats.generated_tokens
    try:
        options.grounding_max_new_tokens = 3
        result = tiny_engine.process([_page(800, 600, 11, tasks=("ocr", "charts"))])[0]
    finally:
        options.grounding_max_new_tokens = 256
    assert tiny_engine.stats.generated_tokens - before == 6 + 2 * 3  # decoding stopped at 3
    assert "chart grounding (chart): answer cut at max_new_tokens (3)" in result.warnings
    assert "ocr: answer cut at max_new_tokens (6)" in result.warnings


def test_pages_come_out_as_soon_as_they_are_complete(tiny_engine):
    """Unreadable first (no work), then the page whose only answer is short, then the long one."""
    options = tiny_engine.options
    pages = [_page(448, 448, 1), _page(448, 448, 2, tasks=("charts",)), PageInput(_truncated_png())]
    try:
        options.grounding_max_new_tokens = 2  # its answer ends 4 tokens before the transcription
        order = [index for index, _ in tiny_engine.process_iter(pages)]
    finally:
        options.grounding_max_new_tokens = 256
    assert order == [2, 1, 0]


def test_a_pages_chart_prompt_reuses_its_transcription_prompts_image_tokens(tiny_engine):
    page = _page(900, 600, 14, max_tiles=6)  # 3x2 + thumbnail = 7 tiles
    stats = tiny_engine.stats
    alone = tiny_engine.process([page])[0].text
    shared_before, computed_before = stats.shared_prefix_tokens, stats.prefilled_tokens
    both = tiny_engine.process([PageInput(page.image, tasks=("ocr", "charts"), max_tiles=6)])[0]
    shared = stats.shared_prefix_tokens - shared_before
    assert shared > 7 * 256  # the system message and every image token, at least
    prompts = Prompts()
    ocr_prompt = len(tiny_engine._prompt_ids(prompts.ocr, 7))
    grounding_prompts = sum(
        len(tiny_engine._prompt_ids(prompts.grounding_question(phrase), 7))
        for phrase in prompts.grounding_phrases
    )
    assert stats.prefilled_tokens - computed_before == ocr_prompt + grounding_prompts - shared
    assert both.text == alone  # copying the prefix changes no token


def test_a_charts_table_joins_the_running_stream_once_its_box_is_found(tiny_engine, monkeypatch):
    """Random weights point at no chart: the grounding answer's box is given here."""
    box = [10.0, 10.0, 210.0, 160.0]  # a one-tile crop
    monkeypatch.setattr(tiny_engine, "_chart_boxes", lambda job, answers: [box])
    pages = [_page(900, 600, 15, tasks=("ocr", "charts"), max_tiles=6), _page(448, 448, 16)]
    streams, requests = tiny_engine.stats.streams, tiny_engine.stats.requests
    results = tiny_engine.process(pages)
    assert tiny_engine.stats.streams - streams == 1  # no second pass for the tables
    assert tiny_engine.stats.requests - requests == 5  # ocr + 2 groundings + table, ocr
    [chart] = results[0].charts
    assert (
        chart.bbox == box and "chart table: no table in the model's answer" in results[0].warnings
    )
    assert results[1].charts == [] and results[1].text == _greedy_text(tiny_engine, pages[1])


def test_charts_only_page_has_no_transcription(tiny_engine):
    result = tiny_engine.process([_page(448, 448, 12, tasks=("charts",))])[0]
    assert result.text == "" and result.tiles == {"grid": [1, 1], "count": 1}


def test_chart_boxes_are_cropped_and_read_into_tables(tiny_engine):
    job = prepare(0, _page(1000, 800, 13, tasks=("charts",), max_tiles=6))
    box = [100.0, 80.0, 700.5, 480.0]
    tiny_engine.read_tables([job], {0: [box]})
    assert len(job.charts) == 1 and job.charts[0].bbox == box
    # random weights answer no table: the chart keeps its box, the page gets a warning
    assert (
        job.charts[0].columns == []
        and "chart table: no table in the model's answer" in job.warnings
    )
    assert job.timings["charts"] > 0


def test_every_result_says_the_resolution_it_was_read_at(tiny_engine) -> None:  # noqa: ANN001
    letter, tall = tiny_engine.process([_page(448, 448, 3, max_tiles=1), _page(300, 3000, 4, max_tiles=2)])
    assert letter.recognition == {"width": 448, "height": 448, "scale": 1.0, "tiles": 1}
    assert not any("resolution" in warning for warning in letter.warnings)
    assert tall.recognition["scale"] < 0.5 and tall.recognition["height"] == 2 * 448
    assert any(warning.startswith("read at ") for warning in tall.warnings)
