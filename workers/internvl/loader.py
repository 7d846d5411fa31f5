"""Load a converted (native) InternVL 1.5 checkpoint for inference.

Called once per worker process (inside the process that uses the GPU: CUDA and
fork do not mix). bf16 on GPU; float32 on CPU, where bf16 matmuls are slow and
the only CPU use is tests. SDPA, or FlashAttention 2 when it is installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from workers.internvl.special_tokens import special_token_problems
from workers.internvl.vision import ps_version

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
    """InternVLForConditionalGeneration in eval mode on `device` (no remote code).

    Raises CheckpointError for a folder that is not a converted checkpoint, tied
    embeddings, or a missing/unknown `ps_version` (vision.py).
    """
    from transformers import InternVLForConditionalGeneration

    if not (Path(path) / "config.json").exists():
        raise CheckpointError(f"{path} has no config.json (convert with `tessera model convert`)")
    kwargs = {"dtype": dtype, "attn_implementation": attention_implementation(device)}
    if device.type == "cuda" and importlib.util.find_spec("accelerate") is not None:
        kwargs["device_map"] = str(device)  # weights straight to the GPU, not via host memory
    model = InternVLForConditionalGeneration.from_pretrained(str(path), **kwargs)
    if model.config.tie_word_embeddings or model.config.text_config.tie_word_embeddings:
        raise CheckpointError("InternVL 1.5 has untied embeddings; this checkpoint ties them")
    try:
        ps_version(model.config)
    except ValueError as exc:
        raise CheckpointError(str(exc)) from exc
    return model.to(device).eval()


def load_tokenizer(path: Path, config=None):
    """The converted tokenizer; refuses one whose special tokens disagree with the checkpoint's
    config.json (`image_token_id`, bos/eos/pad) or generation_config.json (stop at
    `<|im_end|>`). `config`: the loaded model's, else read from `path`."""
    from transformers import AutoTokenizer, GenerationConfig, InternVLConfig

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    config = config or InternVLConfig.from_pretrained(str(path))
    eos = None  # no generation_config.json: the engine stops at <|im_end|> regardless
    if (Path(path) / "generation_config.json").exists():
        eos = GenerationConfig.from_pretrained(str(path)).eos_token_id
    problems = special_token_problems(tokenizer, config, eos)
    if problems:
        raise CheckpointError("tokenizer and checkpoint disagree: " + "; ".join(problems))
    return tokenizer
