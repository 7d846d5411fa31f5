"""InternVL 1.5's published dimensions (INTERNVL.md), as an original-layout config.json.

Used to build the full-size architecture with random weights (GPU benchmark)
through the same config conversion a real checkpoint goes through. Rope scaling
is not a published dimension: a real conversion reads it from the checkpoint;
here it is a stand-in that does not change the compute cost.
"""

from __future__ import annotations

from typing import Any

import torch

VISION_6B = {
    "hidden_size": 3200,
    "num_hidden_layers": 45,
    "num_attention_heads": 25,
    "intermediate_size": 12800,
    "hidden_act": "gelu",
    "norm_type": "rms_norm",
    "layer_norm_eps": 1e-6,
    "qk_normalization": True,
    "qkv_bias": False,
    "patch_size": 14,
    "image_size": 448,
    "num_channels": 3,
    "initializer_factor": 0.1,
}
INTERNLM2_20B = {
    "architectures": ["InternLM2ForCausalLM"],
    "hidden_size": 6144,
    "num_hidden_layers": 48,
    "num_attention_heads": 48,
    "num_key_value_heads": 8,
    "intermediate_size": 16384,
    "vocab_size": 92553,
    "rms_norm_eps": 1e-5,
    "rope_theta": 1000000.0,
    "max_position_embeddings": 32768,
    "hidden_act": "silu",
    "bias": False,
    "tie_word_embeddings": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 2,
    "rope_scaling": {"type": "dynamic", "factor": 2.0},  # stand-in, see module docstring
}


def full_size_original_config() -> dict[str, Any]:
    """config.json of InternVL-Chat-V1-5's shape (25.5B parameters)."""
    return {
        "architectures": ["InternVLChatModel"],
        "downsample_ratio": 0.5,
        "force_image_size": 448,
        "ps_version": "v1",  # the V1-5 release's (INTERNVL.md)
        "select_layer": -1,
        "template": "internlm2-chat",
        "vision_config": dict(VISION_6B),
        "llm_config": dict(INTERNLM2_20B),
    }


def random_model(
    original: dict[str, Any], image_token_id: int, device: torch.device, dtype: torch.dtype
):
    """InternVLForConditionalGeneration of this original-layout config, random weights, on `device`.

    `image_token_id`: the `<IMG_CONTEXT>` id of the tokenizer it will be used with.
    Built directly on the device: at full size the weights (51 GB in bf16) never
    pass through host memory.
    """
    from transformers import InternVLForConditionalGeneration

    from workers.internvl.checkpoint_config import native_config
    from workers.internvl.loader import attention_implementation

    config, _ = native_config(original, image_token_id)
    torch.manual_seed(0)
    with torch.device(device):
        model = InternVLForConditionalGeneration._from_config(
            config, dtype=dtype, attn_implementation=attention_implementation(device)
        )
    return model.eval()
