"""Conversion of the original layout to transformers' native InternVL, checked against an
independent float64 forward pass (tests/internvl/reference_internvl.py): features (pixel
shuffle v1 and v2) and logits."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from tests.internvl.reference_internvl import Reference
from workers.internvl.batching import Request
from workers.internvl.checkpoint import convert_checkpoint
from workers.internvl.checkpoint_config import ConversionError, native_config
from workers.internvl.checkpoint_weights import split_wqkv
from workers.internvl.prompt import build_prompt
from workers.internvl.tiling import normalise, tile_image, tile_uint8
from workers.internvl.vision import image_features

pytestmark = pytest.mark.internvl

IMG_CONTEXT_ID = 92546
SPECIAL_IDS = {
    "<|im_end|>": 92542,
    "<|im_start|>": 92543,
    "<img>": 92544,
    "</img>": 92545,
    "<IMG_CONTEXT>": 92546,
    "<quad>": 92547,
    "</quad>": 92548,
    "<ref>": 92549,
    "</ref>": 92550,
    "<box>": 92551,
    "</box>": 92552,
}


@pytest.fixture(scope="module")
def model(tiny_native):
    from transformers import InternVLForConditionalGeneration

    loaded, info = InternVLForConditionalGeneration.from_pretrained(
        str(tiny_native), dtype=torch.float32, output_loading_info=True
    )
    assert info["missing_keys"] == set() and info["unexpected_keys"] == set()
    assert info["mismatched_keys"] == set()
    return loaded.eval()


@pytest.fixture(scope="module")
def reference(tiny_original):
    return Reference(tiny_original)


@pytest.fixture(scope="module")
def tokenizer(tiny_native):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tiny_native))


def _image(width: int, height: int, seed: int) -> Image.Image:
    return Image.fromarray(
        np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    )


def _compare(model, reference, ids, pixels=None, last: int = 64) -> float:
    """Max |logit difference| over the last positions (they depend on every earlier one).

    Ours: the engine's image features (vision.py, the checkpoint's ps_version) in the
    image slots of the token embeddings, through the converted model."""
    last = min(last, len(ids))
    ids_t = torch.tensor(ids)
    with torch.no_grad():
        embeds = model.get_input_embeddings()(ids_t)
        if pixels is not None:
            features = image_features(model, torch.from_numpy(pixels))
            embeds[ids_t == IMG_CONTEXT_ID] = features.reshape(-1, embeds.shape[-1])
        ours = model(inputs_embeds=embeds[None], logits_to_keep=last).logits[0].double()
        theirs = reference.logits(
            ids,
            None if pixels is None else reference.image_features(torch.from_numpy(pixels)),
            IMG_CONTEXT_ID,
            last,
        )
    assert theirs.abs().max() > 1.0  # a real signal, not a vanishing one
    return (ours - theirs).abs().max().item()


def test_text_logits_match_reference(model, reference, tokenizer):
    ids = tokenizer("<|im_start|>user\nthe page title is the chart<|im_end|>").input_ids
    assert _compare(model, reference, ids) < 1e-4


def test_image_logits_match_reference(model, reference, tokenizer):
    plan, pixels = tile_image(_image(500, 300, 0), 2)  # 2x1 + thumbnail
    ids = tokenizer(build_prompt("the chart", plan.tiles, "you are")).input_ids
    assert _compare(model, reference, ids, pixels) < 1e-4


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_engine_features_match_the_original_pixel_shuffle(
    version, tiny_engine, tiny_engine_v2, tiny_original, tiny_original_v2
):
    """The engine's features for a converted v1 (as released) and v2 checkpoint are the
    original forward's: same tokens in the same order."""
    engine, src = (tiny_engine, tiny_original)
    if version == "v2":
        engine, src = (tiny_engine_v2, tiny_original_v2)
    reference = Reference(src)
    assert reference.ps_version == engine.runner.model.config.ps_version == version
    _, tiles = tile_uint8(_image(900, 500, 3), 2)  # 2x1 + thumbnail
    pixels = torch.from_numpy(normalise(tiles))
    features = engine.runner.encode_images([Request(("a",), ("a",), tiles, [])])[("a",)]
    with torch.no_grad():
        theirs = reference.image_features(pixels)
        other = Reference(src, transpose_grid=True).image_features(pixels)
    assert theirs.abs().max() > 0.5
    assert (features.double() - theirs).abs().max() < 1e-5
    assert (features.double() - other).abs().max() > 0.1  # the versions differ: this can fail


def test_transformers_own_forward_is_v2_whatever_the_checkpoint_says(model, reference, tokenizer):
    """Why the engine does its own pixel shuffle: transformers' image path on the converted
    v1 checkpoint does not give the original's logits (README, loading it elsewhere)."""
    plan, pixels = tile_image(_image(500, 300, 0), 2)
    ids = tokenizer(build_prompt("the chart", plan.tiles, "you are")).input_ids
    with torch.no_grad():
        theirs = model(
            input_ids=torch.tensor([ids]), pixel_values=torch.from_numpy(pixels), logits_to_keep=8
        ).logits[0].double()
        features = reference.image_features(torch.from_numpy(pixels))
        ours = reference.logits(ids, features, IMG_CONTEXT_ID, 8)
    assert model.config.ps_version == "v1" and (ours - theirs).abs().max() > 1e-2


def test_long_prompt_uses_dynamic_ntk_from_the_checkpoint(model, reference, tokenizer):
    # 9 tiles -> 2304 image tokens: past max_position_embeddings (2048), so the rope base
    # scales with the checkpoint's factor (3.0); a wrong factor or rope type would not match.
    plan, pixels = tile_image(_image(1800, 900, 1), 8)  # 4x2 + thumbnail
    ids = tokenizer(build_prompt("q", plan.tiles, "s")).input_ids
    assert plan.tiles == 9 and len(ids) > 2048
    assert model.config.text_config.rope_parameters == {
        "rope_type": "dynamic",
        "factor": 3.0,
        "rope_theta": 1e6,
    }
    assert _compare(model, reference, ids, pixels) < 1e-4


def test_the_comparison_would_catch_a_wrong_split(model, reference, tokenizer):
    ids = tokenizer("the page title is the chart").input_ids
    attn = model.model.language_model.layers[0].self_attn
    k, v = attn.k_proj.weight.data.clone(), attn.v_proj.weight.data.clone()
    try:
        attn.k_proj.weight.data, attn.v_proj.weight.data = v, k
        assert _compare(model, reference, ids) > 1e-2
    finally:
        attn.k_proj.weight.data, attn.v_proj.weight.data = k, v


def test_native_config(model):
    vision, text = model.config.vision_config, model.config.text_config
    assert vision.use_qk_norm and vision.norm_type == "rms_norm" and vision.use_mean_pooling
    assert type(text).__name__ == "LlamaConfig"
    assert (text.num_attention_heads, text.num_key_value_heads, text.head_dim) == (4, 2, 16)
    assert not model.config.tie_word_embeddings and not text.tie_word_embeddings
    assert model.config.image_token_id == IMG_CONTEXT_ID and model.config.image_seq_length == 256
    assert not torch.equal(model.lm_head.weight, model.get_input_embeddings().weight)


def test_special_token_ids(tokenizer):
    assert {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_IDS} == SPECIAL_IDS
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (1, 2, 2)


def test_generation_config_stops_at_im_end(tiny_native):
    generation = json.loads((tiny_native / "generation_config.json").read_text())
    assert generation["eos_token_id"] == [92542] and generation["do_sample"] is False


def test_output_layout(tiny_native):
    index = json.loads((tiny_native / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1  # 8 MiB shards
    assert "language_model.model.layers.1.self_attn.k_proj.weight" in index["weight_map"]
    assert not (tiny_native.parent / "native.partial").exists()
    assert not any(p.suffix == ".py" for p in tiny_native.iterdir())  # no remote code


def test_wqkv_split_follows_grouped_layout():
    # 4 query heads, 2 KV heads, head_dim 1: rows are [q0 q1 k0 v0 | q2 q3 k1 v1]
    rows = torch.tensor([[0.0], [1.0], [10.0], [20.0], [2.0], [3.0], [11.0], [21.0]])
    q, k, v = split_wqkv(rows, num_heads=4, num_kv_heads=2, head_dim=1)
    assert q.flatten().tolist() == [0, 1, 2, 3]
    assert k.flatten().tolist() == [10, 11]
    assert v.flatten().tolist() == [20, 21]


def test_refuses_existing_destination(tiny_original, tiny_native):
    with pytest.raises(ConversionError):
        convert_checkpoint(tiny_original, tiny_native)


def test_unknown_tensor_is_refused(tiny_original, tmp_path):
    from safetensors.torch import save_file

    src = tmp_path / "src"
    shutil.copytree(tiny_original, src)
    save_file(
        {"language_model.model.layers.0.attention.rotary.weight": torch.zeros(2)},
        str(src / "extra.safetensors"),
    )
    index = json.loads((src / "model.safetensors.index.json").read_text())
    index["weight_map"]["language_model.model.layers.0.attention.rotary.weight"] = (
        "extra.safetensors"
    )
    (src / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ConversionError, match="unknown"):
        convert_checkpoint(src, tmp_path / "dst")
    assert not (tmp_path / "dst").exists()


def test_ps_version_is_carried_into_the_converted_config(tiny_native, tiny_native_v2):
    assert json.loads((tiny_native / "config.json").read_text())["ps_version"] == "v1"
    assert json.loads((tiny_native_v2 / "config.json").read_text())["ps_version"] == "v2"


def test_config_warnings_and_refusals():
    from tests.utils.tiny_internvl import original_config

    config = original_config("v1")
    native, warnings = native_config(config, IMG_CONTEXT_ID)
    assert native.ps_version == "v1" and any("ps_version v1" in w for w in warnings)
    del config["ps_version"]  # the V1-5 config class default
    assert native_config(config, IMG_CONTEXT_ID)[0].ps_version == "v1"
    assert native_config(original_config("v2"), IMG_CONTEXT_ID)[1] == []
    config["ps_version"] = "v3"
    with pytest.raises(ConversionError, match="ps_version"):
        native_config(config, IMG_CONTEXT_ID)
    config = original_config()
    config["llm_config"]["tie_word_embeddings"] = True
    with pytest.raises(ConversionError):
        native_config(config, IMG_CONTEXT_ID)


def test_full_size_architecture_has_25_5b_parameters():
    from transformers import InternVLForConditionalGeneration

    from workers.internvl.architecture import full_size_original_config

    config, _ = native_config(full_size_original_config(), IMG_CONTEXT_ID)
    with torch.device("meta"):
        full = InternVLForConditionalGeneration(config)
    total = sum(p.numel() for p in full.parameters())
    assert 25.4e9 < total < 25.6e9  # "ViT-MLP-LLM, 25.5B parameters"
    assert full.model.multi_modal_projector.linear_1.weight.shape == (6144, 12800)
