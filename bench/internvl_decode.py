"""Decoders compared on the same prompt embeddings: Tessera's continuous batching vs `generate`.

    python bench/internvl_decode.py                      # CPU: a small InternLM2-shaped model
    python bench/internvl_decode.py --size full --rows 48 --prompt 3400 --repeats 1   # GPU

Only the language model matters to a decoder, so the model here is InternVL
with a one-layer vision tower, and the prompts are random embeddings of the
length a 13-tile page has (about 3,400 tokens; every other prompt 10% shorter,
so `generate` pads). Two workloads, both decoders in the same process:

- forced: every answer exactly --new-tokens long, --rows prompts. Both decoders
  run the same batch; the difference is the cache (in place vs `torch.cat`),
  the unpadded one-prompt prefill and the sync every few steps. The script
  checks both produced the same tokens (on a GPU, bf16 kernels of different
  shapes can flip an argmax of random weights: reported, not asserted).
- varied: 2 x --rows prompts whose answers are forced to lengths drawn between
  --new-tokens / 16 and --new-tokens (real OCR answers range from a blank
  page's few tokens to a dense page's thousand). `generate` runs them in
  batches of --rows, each batch as long as its longest answer (static
  batching); Tessera streams them through --rows slots. The figure is useful
  tokens (the drawn lengths) per second.
- paired: --rows prompts in pairs that differ only in their last 30 tokens (a
  page's transcription and chart-grounding prompts), the second answer a quarter
  as long; Tessera with and without copying the shared prefix, and `generate`.

Prints one JSON line per run and one per ratio.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from bench.device_timing import device_name, elapsed, peak_gib, reset_peak
from workers.internvl.architecture import full_size_original_config, random_model
from workers.internvl.decode import DecodeOptions, PromptQueue, decode_stream
from workers.internvl.kv_cache import KVBuffers
from workers.internvl.special_tokens import IM_END, IMG_CONTEXT, RELEASED_IDS

# No tokenizer here (prompts are random embeddings): InternVL 1.5's released ids.
IM_END_ID, PAD_ID = RELEASED_IDS[IM_END], RELEASED_IDS["</s>"]

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
    p.add_argument("--rows", type=int, default=8, help="decode batch: slots / generate rows")
    p.add_argument("--prompt", type=int, default=1500, help="prompt tokens per row")
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--repeats", type=int, default=2, help="alternating runs of each decoder")
    p.add_argument(
        "--workloads",
        default="forced,varied,paired",
        help="comma list: forced, varied, paired (forced and varied always run)",
    )
    return p.parse_args()


def build_model(size: str, device: torch.device, dtype: torch.dtype):
    original = full_size_original_config()
    original["vision_config"]["num_hidden_layers"] = 1  # unused here; keeps memory for the cache
    if size == "small":
        original["llm_config"].update(SMALL_LLM)
        original["vision_config"].update(
            hidden_size=64, num_attention_heads=2, intermediate_size=128
        )
    return random_model(original, RELEASED_IDS[IMG_CONTEXT], device, dtype)


def prompts(model, rows: int, length: int, seed: int) -> list[torch.Tensor]:
    """Random prompt embeddings; every other one 10% shorter."""
    text = model.config.text_config
    g = torch.Generator(device="cpu").manual_seed(seed)
    out = []
    for i in range(rows):
        n = length - (length // 10 if i % 2 else 0)
        out.append(torch.randn(n, text.hidden_size, generator=g).to(model.device, model.dtype))
    return out


def tessera(
    model,
    batch: list[torch.Tensor],
    limits: list[int],
    rows: int,
    shared: dict[int, tuple[int, int]] | None = None,
) -> list[list[int]]:
    options = DecodeOptions(
        max_new_tokens=max(limits), min_new_tokens=max(limits), eos_id=IM_END_ID, pad_id=PAD_ID
    )
    queue = PromptQueue.of([len(p) for p in batch], limits, shared)
    answers = dict(decode_stream(model, queue, lambda idx: [batch[i] for i in idx], options, rows))
    return [answers[i] for i in range(len(batch))]


@torch.inference_mode()
def static_generate(
    model, batch: list[torch.Tensor], limits: list[int], rows: int
) -> list[list[int]]:
    """transformers' generate over left-padded batches of `rows`; each batch runs to its longest."""
    answers = []
    for start in range(0, len(batch), rows):
        part, want = batch[start : start + rows], limits[start : start + rows]
        width = max(len(p) for p in part)
        embeds = torch.zeros(len(part), width, part[0].shape[-1], dtype=part[0].dtype)
        embeds = embeds.to(part[0].device)
        mask = torch.zeros(len(part), width, dtype=torch.long, device=part[0].device)
        for r, p in enumerate(part):
            embeds[r, width - len(p) :], mask[r, width - len(p) :] = p, 1
        out = model.generate(
            inputs_embeds=embeds,
            attention_mask=mask,
            max_new_tokens=max(want),
            min_new_tokens=max(want),
            do_sample=False,
            num_beams=1,
            eos_token_id=IM_END_ID,
            pad_token_id=PAD_ID,
        ).tolist()
        answers += [row[:n] for row, n in zip(out, want)]
    return answers


def timed(fn, device: torch.device, *args) -> tuple[list[list[int]], float, float | None]:
    reset_peak(device)
    start = time.perf_counter()
    out = fn(*args)
    seconds = elapsed(start, device)
    return out, seconds, peak_gib(device)


def compare(name: str, model, batch, limits, args, device, decoders=None) -> None:
    """The decoders, alternating, `repeats` times; best time of each; useful tokens per second;
    the speed of each against `generate`."""
    decoders = decoders or {"tessera": tessera, "generate": static_generate}
    best: dict[str, float] = {}
    outputs: dict[str, list[list[int]]] = {}
    for _ in range(args.repeats):
        for decoder, fn in decoders.items():
            out, seconds, peak = timed(fn, device, model, batch, limits, args.rows)
            outputs[decoder], best[decoder] = out, min(best.get(decoder, seconds), seconds)
            emit(
                {
                    "what": name,
                    "decoder": decoder,
                    "prompts": len(batch),
                    "useful_tokens": sum(limits),
                    "seconds": round(seconds, 3),
                    "useful_tokens_per_s": round(sum(limits) / seconds, 1),
                    "peak_gib": peak,
                }
            )
    ratios = {
        f"{decoder}_over_generate_speed": round(best["generate"] / best[decoder], 2)
        for decoder in decoders
        if decoder != "generate"
    }
    same = all(out == outputs["generate"] for out in outputs.values())
    emit({"what": f"{name}_ratio", **ratios, "same_tokens": same})


def emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def main() -> None:
    args = parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = build_model(args.size, device, dtype)
    text = model.config.text_config
    room = args.prompt + args.new_tokens
    emit(
        {
            "what": "setup",
            "device": device_name(device),
            "size": args.size,
            "rows": args.rows,
            "prompt": args.prompt,
            "new_tokens": args.new_tokens,
            "kv_cache_gib": round(KVBuffers.bytes_needed(text, args.rows, room, dtype) / 2**30, 2),
            "torch": torch.__version__,
        }
    )
    warm = prompts(model, 2, 64, seed=0)
    for fn in (tessera, static_generate):  # kernels, allocator
        fn(model, warm, [2, 2], 2)
    forced = prompts(model, args.rows, args.prompt, seed=1)
    compare("forced", model, forced, [args.new_tokens] * args.rows, args, device)
    rng = random.Random(2)
    varied = prompts(model, 2 * args.rows, args.prompt, seed=3)
    limits = [rng.randint(max(1, args.new_tokens // 16), args.new_tokens) for _ in varied]
    compare("varied", model, varied, limits, args, device)
    if "paired" in args.workloads:
        paired(model, args, device)


def paired(model, args, device) -> None:
    """Pairs of prompts that differ only in their last 30 tokens, as a page's transcription and
    chart-grounding prompts do (the same image tokens, another question); the second answer
    is a quarter as long. With and without copying the shared prefix."""
    firsts = prompts(model, args.rows // 2, args.prompt, seed=4)
    tails = prompts(model, args.rows // 2, 30, seed=5)
    batch, limits, shared = [], [], {}
    for first, tail in zip(firsts, tails):
        common = len(first) - 30
        shared[len(batch) + 1] = (len(batch), common)
        batch += [first, torch.cat([first[:common], tail])]
        limits += [args.new_tokens, max(1, args.new_tokens // 4)]
    decoders = {
        "tessera": partial(tessera, shared=shared),
        "tessera_no_prefix_copy": tessera,
        "generate": static_generate,
    }
    compare("paired", model, batch, limits, args, device, decoders)


if __name__ == "__main__":
    main()
