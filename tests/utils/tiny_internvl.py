"""A tiny, random, deterministic InternVL checkpoint in the ORIGINAL OpenGVLab layout.

Same file layout, tensor names, packed `wqkv`/`qkv`, `mlp1` projector, config keys
and tokenizer ids as OpenGVLab/InternVL-Chat-V1-5, with tiny widths: it feeds the
converter and engine tests (and the GPU bench's tokenizer) without 50 GB of weights.
Geometry that the pipeline depends on stays real: 448-pixel tiles, patch 14,
pixel shuffle 0.5 (256 visual tokens per tile) and the full 92,553-token vocabulary,
and so does `ps_version`: v1 by default, as the V1-5 release has it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

VOCAB_SIZE = 92553
SP_PIECES = 92544  # InternLM2's SentencePiece model; InternVL adds 9 tokens after it
INTERNLM2_SPECIALS = [
    "<|plugin|>",
    "<|interpreter|>",
    "<|action_end|>",
    "<|action_start|>",
    "<|im_end|>",
    "<|im_start|>",
]  # ids 92538..92543
INTERNVL_ADDED = [
    "<img>",
    "</img>",
    "<IMG_CONTEXT>",
    "<quad>",
    "</quad>",
    "<ref>",
    "</ref>",
    "<box>",
    "</box>",
]  # ids 92544..92552
WORDS = [
    "the",
    "page",
    "chart",
    "table",
    "title",
    "year",
    "sales",
    "total",
    "is",
    "of",
    "and",
    "system",
    "user",
    "assistant",
    "you",
    "are",
    "an",
    "ai",
    "name",
    "internlm",
    "markdown",
]
CJK = "书生浦语的一是在不了有和人这中大为上个国我以要他图表年"

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, BYTE, UNUSED = 1, 2, 3, 4, 6, 5

VISION = {
    "hidden_size": 32,
    "num_attention_heads": 2,
    "num_hidden_layers": 2,
    "intermediate_size": 64,
}
LLM = {
    "hidden_size": 64,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_hidden_layers": 2,
    "intermediate_size": 96,
    "max_position_embeddings": 2048,
    "rope_theta": 1000000.0,
    "rope_scaling": {"type": "dynamic", "factor": 3.0},
}


def tiny_vocab(specials: list[str] = INTERNLM2_SPECIALS) -> list[tuple[str, float, int]]:
    """(piece, score, type) for ids 0..92543: bytes, a few hundred pieces, filler, and the
    InternLM2 specials last (in the given order: a checkpoint with other ids)."""
    pieces: list[tuple[str, int]] = [("<unk>", UNKNOWN), ("<s>", CONTROL), ("</s>", CONTROL)]
    pieces += [(f"<0x{b:02X}>", BYTE) for b in range(256)]
    normal = ["\u2581"] + [chr(c) for c in range(33, 127)] + list(CJK)
    for word in WORDS:
        normal += [word[:k] for k in range(2, len(word) + 1)]
        normal += ["\u2581" + word[:k] for k in range(1, len(word) + 1)]
    pieces += [(p, NORMAL) for p in dict.fromkeys(normal)]
    filler = SP_PIECES - len(specials) - len(pieces)
    pieces += [(f"[UNUSED_TOKEN_{i}]", UNUSED) for i in range(filler)]
    pieces += [(p, USER_DEFINED) for p in specials]
    return [(p, -float(i) if kind == NORMAL else 0.0, kind) for i, (p, kind) in enumerate(pieces)]


def write_sentencepiece(path: Path, pieces: list[tuple[str, float, int]]) -> None:
    """Serialise a SentencePiece BPE ModelProto (identity, dummy prefix, byte fallback)."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    proto = pb.ModelProto()
    proto.trainer_spec.model_type = pb.TrainerSpec.BPE
    proto.trainer_spec.vocab_size = len(pieces)
    proto.trainer_spec.byte_fallback = True
    proto.normalizer_spec.name = "identity"
    proto.normalizer_spec.add_dummy_prefix = True
    proto.normalizer_spec.remove_extra_whitespaces = False
    for piece, score, kind in pieces:
        proto.pieces.add(piece=piece, score=score, type=kind)
    path.write_bytes(proto.SerializeToString())


def original_config(ps_version: str = "v1") -> dict:
    """config.json as OpenGVLab ships it (InternVLChatModel, vision_config + llm_config)."""
    vision = {
        "architectures": ["InternVisionModel"],
        "model_type": "intern_vit_6b",
        "hidden_act": "gelu",
        "image_size": 448,
        "patch_size": 14,
        "num_channels": 3,
        "layer_norm_eps": 1e-6,
        "norm_type": "rms_norm",
        "qk_normalization": True,
        "qkv_bias": False,
        "initializer_factor": 0.1,
        "dropout": 0.0,
        "drop_path_rate": 0.0,
        **VISION,
    }
    llm = {
        "architectures": ["InternLM2ForCausalLM"],
        "model_type": "internlm2",
        "bias": False,
        "hidden_act": "silu",
        "vocab_size": VOCAB_SIZE,
        "rms_norm_eps": 1e-5,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 2,
        "tie_word_embeddings": False,
        **LLM,
    }
    return {
        "architectures": ["InternVLChatModel"],
        "model_type": "internvl_chat",
        "downsample_ratio": 0.5,
        "force_image_size": 448,
        "ps_version": ps_version,
        "select_layer": -1,
        "template": "internlm2-chat",
        "dynamic_image_size": True,
        "use_thumbnail": True,
        "max_dynamic_patch": 12,
        "min_dynamic_patch": 1,
        "torch_dtype": "bfloat16",
        "vision_config": vision,
        "llm_config": llm,
    }


class _Init:
    """Deterministic random tensors scaled so activations stay O(1) (differences show up)."""

    def __init__(self, seed: int):
        self.gen = torch.Generator().manual_seed(seed)

    def normal(self, *shape: int, std: float) -> torch.Tensor:
        return (torch.randn(*shape, generator=self.gen) * std).to(torch.bfloat16)

    def linear(self, out: int, inp: int) -> torch.Tensor:
        return self.normal(out, inp, std=inp**-0.5)

    def around(self, n: int, centre: float, spread: float) -> torch.Tensor:
        return (centre + spread * torch.randn(n, generator=self.gen)).to(torch.bfloat16)


def vision_tensors(init: _Init) -> dict[str, torch.Tensor]:
    c, f = VISION["hidden_size"], VISION["intermediate_size"]
    t = {
        "vision_model.embeddings.class_embedding": init.normal(1, 1, c, std=0.5),
        "vision_model.embeddings.position_embedding": init.normal(1, 1025, c, std=0.5),
        "vision_model.embeddings.patch_embedding.weight": init.normal(c, 3, 14, 14, std=0.05),
        "vision_model.embeddings.patch_embedding.bias": init.normal(c, std=0.1),
    }
    for i in range(VISION["num_hidden_layers"]):
        p = f"vision_model.encoder.layers.{i}."
        t |= {
            p + "attn.qkv.weight": init.linear(3 * c, c),
            p + "attn.proj.weight": init.linear(c, c),
            p + "attn.proj.bias": init.normal(c, std=0.1),
            p + "attn.q_norm.weight": init.around(c, 1, 0.2),
            p + "attn.k_norm.weight": init.around(c, 1, 0.2),
            p + "mlp.fc1.weight": init.linear(f, c),
            p + "mlp.fc1.bias": init.normal(f, std=0.1),
            p + "mlp.fc2.weight": init.linear(c, f),
            p + "mlp.fc2.bias": init.normal(c, std=0.1),
            p + "norm1.weight": init.around(c, 1, 0.2),
            p + "norm2.weight": init.around(c, 1, 0.2),
            p + "ls1": init.around(c, 0.5, 0.2),
            p + "ls2": init.around(c, 0.5, 0.2),
        }
    return t


def projector_tensors(init: _Init) -> dict[str, torch.Tensor]:
    wide, h = 4 * VISION["hidden_size"], LLM["hidden_size"]
    return {
        "mlp1.0.weight": init.around(wide, 1, 0.2),
        "mlp1.0.bias": init.normal(wide, std=0.1),
        "mlp1.1.weight": init.linear(h, wide),
        "mlp1.1.bias": init.normal(h, std=0.1),
        "mlp1.3.weight": init.linear(h, h),
        "mlp1.3.bias": init.normal(h, std=0.1),
    }


def llm_tensors(init: _Init, qkv_scale: float = 1.0) -> dict[str, torch.Tensor]:
    h, f = LLM["hidden_size"], LLM["intermediate_size"]
    head = h // LLM["num_attention_heads"]
    qkv_rows = (LLM["num_attention_heads"] + 2 * LLM["num_key_value_heads"]) * head
    t = {
        "language_model.model.tok_embeddings.weight": init.normal(VOCAB_SIZE, h, std=1.0),
        "language_model.model.norm.weight": init.around(h, 1, 0.2),
        "language_model.output.weight": init.linear(VOCAB_SIZE, h),
    }
    for i in range(LLM["num_hidden_layers"]):
        p = f"language_model.model.layers.{i}."
        t |= {
            p + "attention.wqkv.weight": init.normal(qkv_rows, h, std=qkv_scale * h**-0.5),
            p + "attention.wo.weight": init.linear(h, h),
            p + "feed_forward.w1.weight": init.linear(f, h),
            p + "feed_forward.w3.weight": init.linear(f, h),
            p + "feed_forward.w2.weight": init.linear(h, f),
            p + "attention_norm.weight": init.around(h, 1, 0.2),
            p + "ffn_norm.weight": init.around(h, 1, 0.2),
        }
    return t


def _added_entry(content: str) -> dict:
    flags = ("lstrip", "rstrip", "normalized", "single_word")
    return {"content": content, **dict.fromkeys(flags, False), "special": True}


def write_tokenizer_files(dst: Path, other_ids: bool = False) -> None:
    """tokenizer.model + the remote-code tokenizer's config, with InternVL's added tokens.

    other_ids: the special tokens in reverse order (<|im_end|> 92539, <IMG_CONTEXT> 92550,
    ...): an InternVL-family checkpoint whose ids are not InternVL 1.5's."""
    specials, added = INTERNLM2_SPECIALS, INTERNVL_ADDED
    if other_ids:
        specials, added = specials[::-1], added[::-1]
    write_sentencepiece(dst / "tokenizer.model", tiny_vocab(specials))
    entry = _added_entry
    decoder = {"0": entry("<unk>"), "1": entry("<s>"), "2": entry("</s>")}
    for i, content in enumerate(specials + added, start=92538):
        decoder[str(i)] = entry(content)
    config = {
        "added_tokens_decoder": decoder,
        "tokenizer_class": "InternLM2Tokenizer",
        "auto_map": {"AutoTokenizer": ["tokenization_internlm2.InternLM2Tokenizer", None]},
        "bos_token": "<s>",
        "eos_token": "</s>",
        "pad_token": "</s>",
        "unk_token": "<unk>",
        "additional_special_tokens": INTERNLM2_SPECIALS + INTERNVL_ADDED,
    }
    (dst / "tokenizer_config.json").write_text(json.dumps(config, indent=2))
    special = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "</s>", "unk_token": "<unk>"}
    (dst / "special_tokens_map.json").write_text(json.dumps(special))


def build_tiny_original_checkpoint(
    dst: Path,
    seed: int = 0,
    ps_version: str = "v1",
    other_ids: bool = False,
    sharp_attention: bool = False,
) -> Path:
    """Write the tiny checkpoint into DST (created) and return DST. Deterministic for a seed.

    other_ids: see write_tokenizer_files. sharp_attention: the language model's q/k/v
    weights at 3x the usual scale, so attention picks out a few positions instead of
    averaging hundreds of image tokens and the order of the visual tokens changes greedy
    answers (golden tests: a transposed grid or a misplaced thumbnail must show)."""
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    init = _Init(seed)
    shards = {
        "model-00001-of-00002.safetensors": vision_tensors(init) | projector_tensors(init),
        "model-00002-of-00002.safetensors": llm_tensors(init, 3.0 if sharp_attention else 1.0),
    }
    weight_map = {}
    for file, tensors in shards.items():
        save_file(tensors, str(dst / file), metadata={"format": "pt"})
        weight_map |= {name: file for name in tensors}
    index = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (dst / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    (dst / "config.json").write_text(json.dumps(original_config(ps_version), indent=2))
    write_tokenizer_files(dst, other_ids)
    return dst
