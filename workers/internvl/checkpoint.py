"""Convert an original OpenGVLab InternVL-Chat-V1-5 checkpoint to transformers' native format.

The original checkpoint needs `trust_remote_code` classes that break on current
transformers; InternVL 1.5 is not covered by transformers' own converter. We read
the safetensors files directly (no remote code is imported), rename and split
tensors, check that they cover the native model exactly, and write config,
generation config, sharded safetensors and a no-remote-code tokenizer. The
result loads with `InternVLForConditionalGeneration.from_pretrained(dst)`.

Work is streamed shard by shard (a 25.5B model does not fit twice in memory)
into `DST.partial`, renamed to DST only when everything checked out.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from workers.internvl.checkpoint_config import ConversionError, native_config
from workers.internvl.checkpoint_weights import rename, runtime_name, split_wqkv
from workers.internvl.special_tokens import IM_END, IMG_CONTEXT
from workers.internvl.tokenizer import (
    build_tokenizer,
    read_added_tokens,
    read_sentencepiece,
    save_tokenizer,
)

DEFAULT_SHARD_BYTES = 5 * 2**30


@dataclass
class ConversionReport:
    dst: Path
    tensors: int = 0
    shards: int = 0
    parameters: int = 0
    dtype: str = ""
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {**self.__dict__, "dst": str(self.dst)}


class SourceTensors:
    """Lazy access to the original safetensors files, by tensor name."""

    def __init__(self, src: Path):
        self.files = _weight_files(src)
        self._handles = {path: safe_open(str(path), "pt") for path in set(self.files.values())}

    def names(self) -> list[str]:
        return sorted(self.files)

    def meta(self, name: str) -> torch.Tensor:
        """A meta tensor with the stored shape and dtype (no data read)."""
        piece = self._handles[self.files[name]].get_slice(name)
        return torch.empty(piece.get_shape(), dtype=_DTYPES[piece.get_dtype()], device="meta")

    def load(self, name: str) -> torch.Tensor:
        return self._handles[self.files[name]].get_tensor(name)


_DTYPES = {"BF16": torch.bfloat16, "F16": torch.float16, "F32": torch.float32, "F64": torch.float64}


def _weight_files(src: Path) -> dict[str, Path]:
    index = src / "model.safetensors.index.json"
    if index.exists():
        weight_map = json.loads(index.read_text())["weight_map"]
        return {name: src / file for name, file in weight_map.items()}
    files = sorted(src.glob("*.safetensors"))
    if not files:
        raise ConversionError(
            f"no safetensors weights in {src} (.bin checkpoints are not supported)"
        )
    names: dict[str, Path] = {}
    for path in files:
        with safe_open(str(path), "pt") as handle:
            names.update(dict.fromkeys(handle.keys(), path))
    return names


def convert_checkpoint(
    src: Path, dst: Path, max_shard_bytes: int = DEFAULT_SHARD_BYTES
) -> ConversionReport:
    """Convert SRC (original layout) into DST (native layout); refuses to overwrite DST."""
    src, dst = Path(src), Path(dst)
    if dst.exists():
        raise ConversionError(f"{dst} already exists")
    original = json.loads((src / "config.json").read_text())
    tok = build_tokenizer(read_sentencepiece(src / "tokenizer.model"), read_added_tokens(src))
    config, warnings = native_config(original, _token_id(tok, IMG_CONTEXT))
    source = SourceTensors(src)
    splitter = _llm_splitter(config)
    plan = plan_shards(source, max_shard_bytes)
    dtype = check_coverage(config, source, splitter)
    config.dtype = dtype
    partial = dst.with_name(dst.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    tensors = write_shards(source, splitter, plan, partial)
    config.save_pretrained(partial)
    _save_generation_config(partial, config.text_config, _token_id(tok, IM_END))
    save_tokenizer(tok, partial)
    _readable(partial)
    verify_tokenizer(partial)
    partial.rename(dst)
    params = sum(source.meta(n).numel() for n in source.names())
    return ConversionReport(
        dst, tensors, len(plan), params, str(dtype).removeprefix("torch."), warnings
    )


def _token_id(tok, name: str) -> int:
    """The id the source tokenizer gives a special token (the model was trained with it)."""
    token_id = tok.tokenizer.token_to_id(name)
    if token_id is None:
        raise ConversionError(f"the tokenizer has no {name} token: not an InternVL checkpoint")
    return token_id


def _readable(out: Path) -> None:
    """safetensors writes 0600; a GPU worker may run as another user."""
    for path in out.iterdir():
        path.chmod(0o644)


def _llm_splitter(config):
    text = config.text_config
    return lambda t: split_wqkv(
        t, text.num_attention_heads, text.num_key_value_heads, text.head_dim
    )


def plan_shards(source: SourceTensors, max_bytes: int) -> list[list[str]]:
    """Original tensor names grouped into shards of at most `max_bytes` (one tensor may exceed)."""
    shards: list[list[str]] = [[]]
    size = 0
    for name in source.names():
        meta = source.meta(name)
        nbytes = meta.numel() * meta.element_size()
        if shards[-1] and size + nbytes > max_bytes:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += nbytes
    return shards


def check_coverage(config, source: SourceTensors, splitter) -> torch.dtype:
    """Renamed tensors must match the native model's parameters one to one, shapes included.

    Done on meta tensors before any data is written, so a wrong checkpoint fails in seconds.
    Returns the dominant floating dtype of the source (written into config.json).
    """
    from transformers import InternVLForConditionalGeneration

    with torch.device("meta"):
        model = InternVLForConditionalGeneration(config)
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    produced: dict[str, tuple[int, ...]] = {}
    dtypes: Counter[torch.dtype] = Counter()
    for name in source.names():
        meta = source.meta(name)
        dtypes[meta.dtype] += meta.numel()
        for new, tensor in rename(name, meta, splitter):
            produced[runtime_name(new)] = tuple(tensor.shape)
    _compare(expected, produced)
    return dtypes.most_common(1)[0][0]


def _compare(expected: dict, produced: dict) -> None:
    missing = sorted(set(expected) - set(produced))
    extra = sorted(set(produced) - set(expected))
    shapes = sorted(n for n in set(expected) & set(produced) if expected[n] != produced[n])
    if missing or extra or shapes:
        detail = {
            "missing": missing[:5],
            "unexpected": extra[:5],
            "shape": [(n, produced[n], expected[n]) for n in shapes[:5]],
        }
        raise ConversionError(f"converted tensors do not match the native model: {detail}")


def write_shards(source: SourceTensors, splitter, plan: list[list[str]], out: Path) -> int:
    """Write each planned shard and the index; returns the number of tensors written."""
    total = len(plan)
    weight_map: dict[str, str] = {}
    total_size = 0
    for number, names in enumerate(plan, start=1):
        file = (
            "model.safetensors" if total == 1 else f"model-{number:05d}-of-{total:05d}.safetensors"
        )
        tensors = {
            new: t.contiguous()
            for name in names
            for new, t in rename(name, source.load(name), splitter)
        }
        save_file(tensors, str(out / file), metadata={"format": "pt"})
        weight_map.update({name: file for name in tensors})
        total_size += sum(t.numel() * t.element_size() for t in tensors.values())
    if total > 1:
        index = {
            "metadata": {"total_size": total_size},
            "weight_map": dict(sorted(weight_map.items())),
        }
        (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return len(weight_map)


def _save_generation_config(out: Path, text_config, im_end_id: int) -> None:
    """Greedy, stopping at <|im_end|> as the model card does."""
    from transformers import GenerationConfig

    GenerationConfig(
        bos_token_id=text_config.bos_token_id,
        eos_token_id=[im_end_id],
        pad_token_id=text_config.pad_token_id,
        do_sample=False,
        num_beams=1,
        max_new_tokens=1024,
    ).save_pretrained(out)


def verify_tokenizer(path: Path) -> None:
    """Load the written tokenizer the way the engine will; its ids must agree with the
    written config and generation config."""
    from workers.internvl.loader import CheckpointError, load_tokenizer

    try:
        load_tokenizer(path)
    except CheckpointError as exc:
        raise ConversionError(str(exc)) from exc
