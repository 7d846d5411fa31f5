"""Original InternVL-Chat-V1-5 config.json -> transformers' native `InternVLConfig`.

InternLM2 is a Llama with grouped-query attention under other names, so the
language model becomes a `LlamaConfig`; InternViT-6B maps onto
`InternVLVisionConfig` with RMSNorm, QK-normalisation and layer scale. Values
come from the checkpoint's own config (rope scaling included), never assumed.

`ps_version` (pixel shuffle v1 or v2) has no field in transformers' config: it is
kept as an extra key of config.json, which Tessera's engine honours (vision.py)
and transformers' own InternVL forward ignores (it always applies v2).
"""

from __future__ import annotations

from typing import Any

from transformers import InternVLConfig, InternVLVisionConfig, LlamaConfig


class ConversionError(ValueError):
    """The source is not an InternVL 1.5-style checkpoint we can convert faithfully."""


def rope_parameters(llm: dict[str, Any]) -> dict[str, Any]:
    """InternLM2 `rope_theta` + `rope_scaling` -> Llama `rope_parameters` (transformers 5.x)."""
    theta = float(llm.get("rope_theta", 10000.0))
    scaling = llm.get("rope_scaling")
    if not scaling:
        return {"rope_type": "default", "rope_theta": theta}
    kind = scaling.get("type") or scaling.get("rope_type")
    if kind not in ("dynamic", "linear"):
        raise ConversionError(f"unsupported rope_scaling type {kind!r}")
    return {"rope_type": kind, "factor": float(scaling["factor"]), "rope_theta": theta}


def text_config(llm: dict[str, Any]) -> LlamaConfig:
    """InternLM2 config -> LlamaConfig (same maths: RMSNorm, SwiGLU, rotate-half rope, GQA)."""
    heads = llm["num_attention_heads"]
    return LlamaConfig(
        vocab_size=llm["vocab_size"],
        hidden_size=llm["hidden_size"],
        intermediate_size=llm["intermediate_size"],
        num_hidden_layers=llm["num_hidden_layers"],
        num_attention_heads=heads,
        num_key_value_heads=llm.get("num_key_value_heads", heads),
        head_dim=llm["hidden_size"] // heads,
        hidden_act=llm.get("hidden_act", "silu"),
        max_position_embeddings=llm["max_position_embeddings"],
        rms_norm_eps=llm.get("rms_norm_eps", 1e-6),
        rope_parameters=rope_parameters(llm),
        attention_bias=bool(llm.get("bias", False)),
        mlp_bias=False,
        tie_word_embeddings=False,
        bos_token_id=llm.get("bos_token_id", 1),
        eos_token_id=llm.get("eos_token_id", 2),
        pad_token_id=llm.get("pad_token_id", 2),
    )


def vision_config(vision: dict[str, Any], image_size: int) -> InternVLVisionConfig:
    """InternViT -> InternVLVisionConfig. No final norm: `use_mean_pooling=True` keeps it off."""
    return InternVLVisionConfig(
        hidden_size=vision["hidden_size"],
        num_hidden_layers=vision["num_hidden_layers"],
        num_attention_heads=vision["num_attention_heads"],
        intermediate_size=vision["intermediate_size"],
        hidden_act=vision.get("hidden_act", "gelu"),
        layer_norm_eps=vision.get("layer_norm_eps", 1e-6),
        norm_type=vision.get("norm_type", "rms_norm"),
        use_qk_norm=bool(vision.get("qk_normalization", False)),
        attention_bias=bool(vision.get("qkv_bias", False)),
        image_size=image_size,
        patch_size=vision["patch_size"],
        num_channels=vision.get("num_channels", 3),
        use_mean_pooling=True,
        use_absolute_position_embeddings=True,
        layer_scale_init_value=float(vision.get("initializer_factor", 0.1)),
    )


def native_config(
    original: dict[str, Any], image_token_id: int
) -> tuple[InternVLConfig, list[str]]:
    """The native config plus warnings a person should read before trusting the result."""
    _check_supported(original)
    vision, llm = original["vision_config"], original["llm_config"]
    image_size = int(original.get("force_image_size") or vision["image_size"])
    ratio = float(original.get("downsample_ratio", 0.5))
    config = InternVLConfig(
        vision_config=vision_config(vision, image_size),
        text_config=text_config(llm),
        image_token_id=image_token_id,
        image_seq_length=int((image_size // vision["patch_size"]) ** 2 * ratio**2),
        downsample_ratio=ratio,
        projector_hidden_act="gelu",
        vision_feature_layer=int(original.get("select_layer", -1)),
        vision_feature_select_strategy="default",
        tie_word_embeddings=False,
        ps_version=_ps_version(original),
    )
    return config, _warnings(original)


def _check_supported(original: dict[str, Any]) -> None:
    if "vision_config" not in original or "llm_config" not in original:
        raise ConversionError(
            "config.json has no vision_config/llm_config: not an InternVL-Chat checkpoint"
        )
    arch = original["llm_config"].get("architectures") or ["InternLM2ForCausalLM"]
    if arch[0] != "InternLM2ForCausalLM":
        raise ConversionError(f"language model {arch[0]} is not InternLM2")
    if original["llm_config"].get("tie_word_embeddings"):
        raise ConversionError("InternVL 1.5 has untied embeddings; this checkpoint ties them")


def _ps_version(original: dict[str, Any]) -> str:
    """The original's pixel shuffle version; absent means v1, the V1-5 config class default."""
    version = original.get("ps_version", "v1")
    if version not in ("v1", "v2"):
        raise ConversionError(f"unknown ps_version {version!r} (expected 'v1' or 'v2')")
    return version


def _warnings(original: dict[str, Any]) -> list[str]:
    """Settings transformers' InternVL cannot express; converted anyway, said out loud."""
    notes = []
    if _ps_version(original) == "v1":
        notes.append(
            "ps_version v1 kept in config.json: Tessera's engine applies it; transformers' "
            "InternVLForConditionalGeneration alone applies v2 and would see each tile's "
            "grid of visual tokens transposed (README)"
        )
    if original.get("select_layer", -1) != -1:
        notes.append(f"select_layer {original['select_layer']} kept as vision_feature_layer")
    return notes
