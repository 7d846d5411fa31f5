"""Original InternVL 1.5 tensor names -> transformers' InternVL names, one tensor at a time.

Names on the right are the on-disk form that `save_pretrained` of transformers
5.x writes for `InternVLForConditionalGeneration` (the hub's `-hf` layout), which
every 5.x release loads. Two tensors change shape: InternViT's packed `qkv`
(rows q | k | v) and InternLM2's packed `wqkv` (rows grouped per KV head).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch

from workers.internvl.checkpoint_config import ConversionError

Renamed = list[tuple[str, torch.Tensor]]

VISION = "vision_model.encoder.layers."
LLM = "language_model.model.layers."

_PATCH = "vision_tower.embeddings.patch_embeddings.projection."
_SIMPLE: dict[str, str] = {
    "vision_model.embeddings.class_embedding": "vision_tower.embeddings.cls_token",
    "vision_model.embeddings.position_embedding": "vision_tower.embeddings.position_embeddings",
    "vision_model.embeddings.patch_embedding.weight": _PATCH + "weight",
    "vision_model.embeddings.patch_embedding.bias": _PATCH + "bias",
    "mlp1.0.weight": "multi_modal_projector.layer_norm.weight",
    "mlp1.0.bias": "multi_modal_projector.layer_norm.bias",
    "mlp1.1.weight": "multi_modal_projector.linear_1.weight",
    "mlp1.1.bias": "multi_modal_projector.linear_1.bias",
    "mlp1.3.weight": "multi_modal_projector.linear_2.weight",
    "mlp1.3.bias": "multi_modal_projector.linear_2.bias",
    "language_model.model.tok_embeddings.weight": "language_model.model.embed_tokens.weight",
    "language_model.model.norm.weight": "language_model.model.norm.weight",
    "language_model.output.weight": "language_model.lm_head.weight",
}

_VISION_LAYER: dict[str, str] = {
    "attn.proj.weight": "attention.projection_layer.weight",
    "attn.proj.bias": "attention.projection_layer.bias",
    "attn.q_norm.weight": "attention.q_norm.weight",
    "attn.k_norm.weight": "attention.k_norm.weight",
    "mlp.fc1.weight": "mlp.fc1.weight",
    "mlp.fc1.bias": "mlp.fc1.bias",
    "mlp.fc2.weight": "mlp.fc2.weight",
    "mlp.fc2.bias": "mlp.fc2.bias",
    "norm1.weight": "layernorm_before.weight",
    "norm1.bias": "layernorm_before.bias",
    "norm2.weight": "layernorm_after.weight",
    "norm2.bias": "layernorm_after.bias",
    "ls1": "lambda_1",
    "ls2": "lambda_2",
}

_LLM_LAYER: dict[str, str] = {
    "attention.wo.weight": "self_attn.o_proj.weight",
    "attention.wo.bias": "self_attn.o_proj.bias",
    "feed_forward.w1.weight": "mlp.gate_proj.weight",
    "feed_forward.w3.weight": "mlp.up_proj.weight",
    "feed_forward.w2.weight": "mlp.down_proj.weight",
    "attention_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
}

_LAYER = re.compile(
    r"^(?P<prefix>vision_model\.encoder\.layers\.|language_model\.model\.layers\.)(?P<i>\d+)\.(?P<rest>.+)$"
)


def split_vision_qkv(qkv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """InternViT `attn.qkv`: rows are all of q, then k, then v."""
    q, k, v = qkv.chunk(3, dim=0)
    return q.contiguous(), k.contiguous(), v.contiguous()


def split_wqkv(
    wqkv: torch.Tensor, num_heads: int, num_kv_heads: int, head_dim: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """InternLM2 `attention.wqkv` -> Llama q/k/v (weight or bias).

    Rows come in one group per KV head: that head's `num_heads/num_kv_heads`
    query heads, then its key head, then its value head. Query head g of KV
    group h becomes Llama query head h*groups+g, which Llama pairs with KV head
    h: the same head mapping grouped-query attention uses.
    """
    groups = num_heads // num_kv_heads
    rest = wqkv.shape[1:]
    if wqkv.shape[0] != num_kv_heads * (groups + 2) * head_dim:
        raise ConversionError(
            f"wqkv has {wqkv.shape[0]} rows, expected {num_kv_heads * (groups + 2) * head_dim}"
        )
    grouped = wqkv.reshape(num_kv_heads, groups + 2, head_dim, *rest)
    q = grouped[:, :groups].reshape(num_heads * head_dim, *rest)
    k = grouped[:, groups].reshape(num_kv_heads * head_dim, *rest)
    v = grouped[:, groups + 1].reshape(num_kv_heads * head_dim, *rest)
    return q.contiguous(), k.contiguous(), v.contiguous()


def rename(
    name: str, tensor: torch.Tensor, split_llm_qkv: Callable[[torch.Tensor], tuple]
) -> Renamed:
    """Native (name, tensor) pairs for one original tensor; raises on an unknown name."""
    if name in _SIMPLE:
        return [(_SIMPLE[name], tensor)]
    match = _LAYER.match(name)
    if match is None:
        raise ConversionError(f"unknown tensor {name!r}")
    if match["prefix"] == VISION:
        return _vision_layer(int(match["i"]), match["rest"], tensor)
    return _llm_layer(int(match["i"]), match["rest"], tensor, split_llm_qkv)


def _vision_layer(i: int, rest: str, tensor: torch.Tensor) -> Renamed:
    prefix = f"vision_tower.encoder.layer.{i}."
    if rest in ("attn.qkv.weight", "attn.qkv.bias"):
        kind = rest.rsplit(".", 1)[1]
        parts = split_vision_qkv(tensor)
        return [(f"{prefix}attention.{p}_proj.{kind}", t) for p, t in zip("qkv", parts)]
    if rest not in _VISION_LAYER:
        raise ConversionError(f"unknown vision tensor {VISION}{i}.{rest}")
    return [(prefix + _VISION_LAYER[rest], tensor)]


def _llm_layer(i: int, rest: str, tensor: torch.Tensor, split_llm_qkv: Callable) -> Renamed:
    prefix = f"language_model.model.layers.{i}."
    if rest in ("attention.wqkv.weight", "attention.wqkv.bias"):
        kind = rest.rsplit(".", 1)[1]
        parts = split_llm_qkv(tensor)
        return [(f"{prefix}self_attn.{p}_proj.{kind}", t) for p, t in zip("qkv", parts)]
    if rest not in _LLM_LAYER:
        raise ConversionError(f"unknown language-model tensor {LLM}{i}.{rest}")
    return [(prefix + _LLM_LAYER[rest], tensor)]


def runtime_name(disk_name: str) -> str:
    """On-disk name -> the name in `model.state_dict()` (used to verify coverage)."""
    if disk_name == "language_model.lm_head.weight":
        return "lm_head.weight"
    if disk_name.startswith("language_model.model."):
        return "model.language_model." + disk_name[len("language_model.model.") :]
    return "model." + disk_name
