"""Load a converted (native) InternVL 1.5 checkpoint for inference.

Called once per worker process (inside the process that uses the GPU: CUDA and
fork do not mix). bf16 on GPU; float32 on CPU, where bf16 matmuls are slow and
the only CPU use is tests. SDPA, or FlashAttention 2 when it is installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from workers.internvl.prompt import BOS_ID, EOS_ID, PAD_ID, SPECIAL_TOKEN_IDS
from workers.internvl.tokenizer import special_token_problems

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


class CheckpointError(RuntimeError):
    """The model directory is not a converted InternVL 1.5 checkpoint."""


def resolve_device(spec: str) -> torch.device:
    """'auto' -> the first GPU when there is one, else the CPU."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(spec)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    return _DTYPES[name] if device.type == "cuda" else torch.float32


def attention_implementation(device: torch.device) -> str:
    if device.type == "cuda" and importlib.util.find_spec("flash_attn") is not None:
        return "flash_attention_2"
    return "sdpa"


def load_model(path: Path, device: torch.device, dtype: torch.dtype):
    """InternVLForConditionalGeneration in eval mode on `device` (no remote code)."""
    from transformers import InternVLForConditionalGeneration

    if not (Path(path) / "config.json").exists():
        raise CheckpointError(f"{path} has no config.json (convert with `tessera model convert`)")
    kwargs = {"dtype": dtype, "attn_implementation": attention_implementation(device)}
    if device.type == "cuda" and importlib.util.find_spec("accelerate") is not None:
        kwargs["device_map"] = str(device)  # weights straight to the GPU, not via host memory
    model = InternVLForConditionalGeneration.from_pretrained(str(path), **kwargs)
    if model.config.tie_word_embeddings or model.config.text_config.tie_word_embeddings:
        raise CheckpointError("InternVL 1.5 has untied embeddings; this checkpoint ties them")
    return model.to(device).eval()


def load_tokenizer(path: Path):
    """The converted tokenizer; refuses one whose special-token ids differ from the model's."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    problems = special_token_problems(
        tokenizer, {**SPECIAL_TOKEN_IDS, "<s>": BOS_ID, "</s>": EOS_ID}
    )
    if tokenizer.pad_token_id != PAD_ID:
        problems.append(f"pad id {tokenizer.pad_token_id}, expected {PAD_ID}")
    if problems:
        raise CheckpointError("tokenizer does not match InternVL 1.5: " + "; ".join(problems))
    return tokenizer
