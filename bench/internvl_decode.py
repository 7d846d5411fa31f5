"""Decoder comparison on the same prompt embeddings: Tessera's in-place-cache loop vs `generate`.

    python bench/internvl_decode.py                      # CPU: a small InternLM2-shaped model
    python bench/internvl_decode.py --size full --rows 48 --prompt 3400   # GPU: InternLM2-20B

Only the language model matters to the decoder, so the model here is InternVL
with a one-layer vision tower; the prompt is random embeddings of the length a
13-tile page has (about 3,400 tokens). Both decoders run greedy with the end
token suppressed for exactly --new-tokens tokens, in the same process, and the
script checks they produced the same tokens. Prints one JSON line per decoder
and one with the ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from workers.internvl.architecture import full_size_original_config, random_model
from workers.internvl.decode import DecodeOptions, greedy_decode
from workers.internvl.kv_cache import KVBuffers
from workers.internvl.prompt import IM_END_ID, PAD_ID

SMALL_LLM = {  # InternLM2's shape (GQA 4:1, SwiGLU), scaled down to time on a CPU
    "hidden_size": 512,
    "num_hidden_layers": 8,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "intermediate_size": 1536,
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--size", choices=["small", "full"], default="small")
    p.add_argument("--rows", type=int, default=8, help="pages decoded together")
    p.add_argument("--prompt", type=int, default=1500, help="prompt tokens per row")
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--prefill-rows", type=int, default=8)
    p.add_argument("--repeats", type=int, default=2, help="alternating runs of each decoder")
    return p.parse_args()


def build_model(size: str, device: torch.device, dtype: torch.dtype):
    original = full_size_original_config()
    original["vision_config"]["num_hidden_layers"] = 1  # unused here; keeps memory for the cache
    if size == "small":
        original["llm_config"].update(SMALL_LLM)
        original["vision_config"].update(
            hidden_size=64, num_attention_heads=2, intermediate_size=128
        )
    return random_model(original, device, dtype)


def run_cached(model, embeds, mask, args) -> torch.Tensor:
    options = DecodeOptions(
        max_new_tokens=args.new_tokens,
        min_new_tokens=args.new_tokens,
        eos_id=IM_END_ID,
        pad_id=PAD_ID,
        prefill_rows=args.prefill_rows,
    )
    return greedy_decode(model, embeds, mask, options)


@torch.inference_mode()
def run_generate(model, embeds, mask, args) -> torch.Tensor:
    return model.generate(
        inputs_embeds=embeds,
        attention_mask=mask,
        max_new_tokens=args.new_tokens,
        min_new_tokens=args.new_tokens,
        do_sample=False,
        num_beams=1,
        eos_token_id=IM_END_ID,
        pad_token_id=PAD_ID,
    )


def timed(fn, device: torch.device, *a) -> tuple[torch.Tensor, float, float | None]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    out = fn(*a)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        peak = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    else:
        peak = None
    return out, time.perf_counter() - start, peak


def main() -> None:
    args = parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = build_model(args.size, device, dtype)
    text = model.config.text_config
    torch.manual_seed(1)
    embeds = torch.randn(args.rows, args.prompt, text.hidden_size, device=device, dtype=dtype)
    mask = torch.ones(args.rows, args.prompt, dtype=torch.long, device=device)
    mask[1::2, : args.prompt // 10] = (
        0  # every other row 10% shorter: left padding as in a real batch
    )
    cache_gib = (
        KVBuffers.bytes_needed(text, args.rows, args.prompt + args.new_tokens, dtype) / 2**30
    )
    print(
        json.dumps(
            {
                "what": "setup",
                "device": str(device),
                "size": args.size,
                "rows": args.rows,
                "prompt": args.prompt,
                "new_tokens": args.new_tokens,
                "kv_cache_gib": round(cache_gib, 2),
                "torch": torch.__version__,
            }
        ),
        flush=True,
    )
    decoders = {"cached": run_cached, "generate": run_generate}
    small = argparse.Namespace(**{**vars(args), "new_tokens": 2})
    for fn in decoders.values():  # warm-up: kernels, allocator
        fn(model, embeds[:2], mask[:2], small)
    best: dict[str, float] = {}
    outputs: dict[str, torch.Tensor] = {}
    for _ in range(args.repeats):
        for name, fn in decoders.items():
            out, seconds, peak = timed(fn, device, model, embeds, mask, args)
            outputs[name] = out
            best[name] = min(best.get(name, seconds), seconds)
            tokens = out.shape[0] * out.shape[1]
            print(
                json.dumps(
                    {
                        "what": name,
                        "seconds": round(seconds, 3),
                        "tokens_per_s": round(tokens / seconds, 1),
                        "peak_gib": peak,
                    }
                ),
                flush=True,
            )
    same = torch.equal(outputs["cached"], outputs["generate"])
    print(
        json.dumps(
            {
                "what": "ratio",
                "cached_over_generate_speed": round(best["generate"] / best["cached"], 2),
                "same_tokens": same,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
