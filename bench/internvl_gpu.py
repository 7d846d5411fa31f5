"""InternVL 1.5 engine throughput at full size: batched engine vs. plain per-page `generate`.

    python bench/internvl_gpu.py            # one GPU, full-size architecture, random bf16 weights
    python bench/internvl_gpu.py --tiny     # same script, CPU, tiny config (a test runs this)

Builds InternViT-6B + InternLM2-20B from INTERNVL.md's dimensions directly on
the device (no weights to download), then runs synthetic 13-tile (1344x1792 at
max 12) and 41-tile (3584x2240 at max 40) pages through the engine's own code
path with a fixed output length (eos suppressed) and, in the same process, a
few of the same pages through plain `model.generate` at batch 1 (what the whole
engine buys; bench/internvl_decode.py compares the decoders alone). Prints one
JSON line per measurement; --json FILE also writes them all.

On the device machine, transformers is 5.17 while Tessera pins 5.23: carry the
pinned wheel (see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from PIL import Image, ImageDraw

from bench.device_timing import device_name, elapsed, peak_gib, reset_peak
from tessera.logs import configure_logging
from workers.engines.base import PageInput
from workers.internvl.architecture import full_size_original_config, random_model
from workers.internvl.engine import EngineOptions, InternVLEngine
from workers.internvl.loader import attention_implementation
from workers.internvl.prompt import Prompts, build_prompt
from workers.internvl.special_tokens import SpecialTokens
from workers.internvl.tiling import plan_tiles, tile_image

PAGE_SHAPES = {13: ((1344, 1792), 12), 41: ((3584, 2240), 40)}  # tiles -> (size, max_tiles)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--tiny", action="store_true", help="tiny config on the CPU (smoke test)")
    p.add_argument("--new-tokens", type=int, default=512)
    p.add_argument(
        "--pages-13", type=int, help="13-tile pages in the batched run (48; 20 <100 GiB)"
    )
    p.add_argument("--pages-41", type=int, help="41-tile pages in the batched run (8; 4 <100 GiB)")
    p.add_argument(
        "--baseline-13", type=int, default=2, help="13-tile pages through plain generate"
    )
    p.add_argument(
        "--baseline-41", type=int, default=1, help="41-tile pages through plain generate"
    )
    p.add_argument("--vision-chunk", type=int, default=64, help="tiles per vision-tower call")
    p.add_argument("--json", type=Path, help="also write all results to this file")
    args = p.parse_args()
    big = _gpu_gib() >= 100  # H200: 141 GB; an H100's 80 GB holds 51 GB of weights + less cache
    args.pages_13 = args.pages_13 or (48 if big else 20)
    args.pages_41 = args.pages_41 or (8 if big else 4)
    if args.tiny:
        args.new_tokens = min(args.new_tokens, 8)
        args.pages_13, args.pages_41 = min(args.pages_13, 3), min(args.pages_41, 2)
        args.baseline_13, args.baseline_41 = min(args.baseline_13, 1), min(args.baseline_41, 1)
    return args


def _gpu_gib() -> float:
    if not torch.cuda.is_available():
        return 0.0
    return torch.cuda.get_device_properties(0).total_memory / 2**30


def build_model(tiny: bool, image_token_id: int, device: torch.device, dtype: torch.dtype):
    """Random weights, created directly on the device (about 51 GB in bf16 at full size)."""
    if tiny:
        from tests.utils.tiny_internvl import original_config

        return random_model(original_config(), image_token_id, device, dtype)
    return random_model(full_size_original_config(), image_token_id, device, dtype)


def build_tokenizer():
    """A tokenizer with InternVL 1.5's vocabulary size and special-token ids (synthetic pieces)."""
    from transformers import AutoTokenizer

    from tests.utils.tiny_internvl import INTERNVL_ADDED, tiny_vocab
    from workers.internvl.tokenizer import AddedSpec, SpModel, save_tokenizer
    from workers.internvl.tokenizer import build_tokenizer as build

    added = [AddedSpec(92544 + i, token) for i, token in enumerate(INTERNVL_ADDED)]
    with tempfile.TemporaryDirectory() as tmp:
        save_tokenizer(build(SpModel(pieces=tiny_vocab()), added), Path(tmp))
        return AutoTokenizer.from_pretrained(tmp)


def synthetic_page(tiles: int, seed: int) -> PageInput:
    """A white page with lines of random words: the size decides the tile count."""
    (width, height), max_tiles = PAGE_SHAPES[tiles]
    assert plan_tiles(width, height, max_tiles).tiles == tiles
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for y in range(40, height - 40, 28):
        words = " ".join(
            rng.choice(["total", "sales", "year", "page", "2024", "chart"]) for _ in range(12)
        )
        draw.text((40, y), words, fill="black")
    return PageInput(image=image, max_tiles=max_tiles, ref=f"synthetic-{tiles}-{seed}")


def measure_engine(model, tokenizer, pages: list[PageInput], args, device) -> dict:
    """The engine's code path: chunked vision, one packed batch, fixed output length."""
    options = EngineOptions(
        max_new_tokens=args.new_tokens,
        min_new_tokens=args.new_tokens,
        max_batch_rows=len(pages),
        vision_chunk_tiles=args.vision_chunk,
    )
    engine = InternVLEngine(model, tokenizer, options)
    reset_peak(device)
    start = time.perf_counter()
    results = engine.process(pages)
    seconds = elapsed(start, device)
    stats = engine.stats
    failed = [w for r in results for w in r.warnings if "failed" in w]
    return {
        "pages": len(pages),
        "slots": len(pages),
        "streams": stats.streams,
        "seconds": round(seconds, 3),
        "pages_per_s": round(len(pages) / seconds, 4),
        "tokens_per_s": round(stats.generated_tokens / seconds, 1),
        "generated_tokens": stats.generated_tokens,
        "vision_s": round(stats.vision_seconds, 3),
        "generate_s": round(stats.generate_seconds, 3),
        "peak_gib": peak_gib(device),
        "failed": failed,
    }


def measure_plain_generate(model, tokenizer, pages: list[PageInput], args, device) -> dict:
    """Plain transformers: one page per `generate`, vision inside it, no chunking (and pixel
    shuffle v2 whatever the config says: the same cost as v1, which only reorders tokens)."""
    prompts, special = Prompts(), SpecialTokens.from_tokenizer(tokenizer)
    reset_peak(device)
    start, tokens = time.perf_counter(), 0
    for page in pages:
        plan, pixels = tile_image(page.image, page.max_tiles)
        ids = torch.tensor(
            [tokenizer(build_prompt(prompts.ocr, plan.tiles, prompts.system)).input_ids],
            device=device,
        )
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                pixel_values=torch.from_numpy(pixels).to(device, model.dtype),
                max_new_tokens=args.new_tokens,
                min_new_tokens=args.new_tokens,
                do_sample=False,
                num_beams=1,
                eos_token_id=special.im_end,
                pad_token_id=special.pad,
            )
        tokens += out.shape[1] - ids.shape[1]
    seconds = elapsed(start, device)
    return {
        "pages": len(pages),
        "seconds": round(seconds, 3),
        "pages_per_s": round(len(pages) / seconds, 4),
        "tokens_per_s": round(tokens / seconds, 1),
        "generated_tokens": tokens,
        "peak_gib": peak_gib(device),
    }


def emit(results: list[dict], record: dict) -> None:
    results.append(record)
    print(json.dumps(record), flush=True)


def main() -> None:
    args = parse_args()
    configure_logging()  # INFO: the engine's per-answer debug events stay quiet
    device = torch.device("cpu" if args.tiny or not torch.cuda.is_available() else "cuda")
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    results: list[dict] = []
    start = time.perf_counter()
    tokenizer = build_tokenizer()
    image_token_id = SpecialTokens.from_tokenizer(tokenizer).img_context
    model = build_model(args.tiny, image_token_id, device, dtype)
    params = sum(p.numel() for p in model.parameters())
    emit(
        results,
        {
            "what": "build",
            "device": device_name(device),
            "params": params,
            "seconds": round(elapsed(start, device), 2),
            "torch": torch.__version__,
            "attention": attention_implementation(device),
        },
    )
    warm = argparse.Namespace(**{**vars(args), "new_tokens": 4})
    measure_engine(model, tokenizer, [synthetic_page(13, 999)], warm, device)  # kernels, allocator
    for tiles in (13, 41):
        pages = [synthetic_page(tiles, i) for i in range(getattr(args, f"pages_{tiles}"))]
        engine = measure_engine(model, tokenizer, pages, args, device)
        emit(results, {"what": "engine", "tiles": tiles, "new_tokens": args.new_tokens, **engine})
        plain = measure_plain_generate(
            model, tokenizer, pages[: getattr(args, f"baseline_{tiles}")], args, device
        )
        emit(
            results,
            {
                "what": "plain_generate_batch1",
                "tiles": tiles,
                "new_tokens": args.new_tokens,
                **plain,
            },
        )
        emit(
            results,
            {
                "what": "ratio",
                "tiles": tiles,
                "pages_per_s_engine_over_plain": round(
                    engine["pages_per_s"] / plain["pages_per_s"], 2
                ),
            },
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
