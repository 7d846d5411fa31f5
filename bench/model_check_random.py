"""`tessera model check` on InternVL 1.5's full-size architecture with random weights.

    python bench/model_check_random.py           # one GPU: 25.5B parameters, bf16
    python bench/model_check_random.py --tiny    # the same on the CPU, tiny config

No checkpoint can reach the device machine, so this writes what a converted
checkpoint holds besides its weights (config.json, the tokenizer) to a scratch
folder, checks them with the same code as `tessera model check`, builds the random
model directly on the device and runs the sample documents through the engine,
printing the same report (texts are noise: the weights are random; tokens/s and
pages/s are real).

The device image has no poppler to render the sample PDFs, so `--prerender DIR` renders them
here first (each PDF page as `<name>.p<N>.png`, at the same resolution and CropBox, with its
truth beside it) and the device run reads that folder: `bash bench/on_device.sh --fetch-wheels`
writes `.whl/samples`, which the device call carries.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from bench.internvl_gpu import build_model, build_tokenizer  # noqa: E402
from tessera.logs import configure_logging  # noqa: E402
from tessera.model_check import (  # noqa: E402
    SAMPLE_DPI,
    SAMPLE_SUFFIXES,
    CheckReport,
    checkpoint_facts,
    lines,
    run_samples,
    sample_pages,
)
from workers.internvl.architecture import full_size_original_config  # noqa: E402
from workers.internvl.checkpoint_config import native_config  # noqa: E402
from workers.internvl.engine import EngineOptions, InternVLEngine  # noqa: E402
from workers.internvl.special_tokens import SpecialTokens  # noqa: E402


def prerender(samples: Path, target: Path) -> None:
    """`samples` as images only: each PDF page rendered as `sample_pages` renders it, named
    `<name>.p<N>.png` with its truth at `truth/<name>.p<N>/1.txt`; images copied as they are."""
    from pdf2image import convert_from_path

    (target / "truth").mkdir(parents=True, exist_ok=True)
    for path in sorted(p for p in samples.iterdir() if p.suffix.lower() in SAMPLE_SUFFIXES):
        if path.suffix.lower() != ".pdf":
            if (samples / "truth" / path.stem).is_dir():
                shutil.copytree(samples / "truth" / path.stem, target / "truth" / path.stem, dirs_exist_ok=True)
            shutil.copy(path, target / path.name)
            continue
        for number, image in enumerate(convert_from_path(path, dpi=SAMPLE_DPI, use_cropbox=True), start=1):
            name = f"{path.stem}.p{number}"
            image.save(target / f"{name}.png")
            truth = samples / "truth" / path.stem / f"{number}.txt"
            if truth.exists():
                (target / "truth" / name).mkdir(exist_ok=True)
                shutil.copy(truth, target / "truth" / name / "1.txt")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="tiny config on the CPU")
    p.add_argument("--samples", type=Path, default=ROOT / "samples")
    p.add_argument("--max-tiles", type=int, default=12)
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--slots", type=int, default=8)
    p.add_argument("--prerender", type=Path, help="render --samples into this folder and stop")
    args = p.parse_args()
    if args.prerender:
        prerender(args.samples, args.prerender)
        return
    configure_logging()  # INFO: the engine's per-answer debug events stay quiet
    device = torch.device("cpu" if args.tiny or not torch.cuda.is_available() else "cuda")
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    tokenizer = build_tokenizer()
    image_token_id = SpecialTokens.from_tokenizer(tokenizer).img_context
    report = CheckReport()
    with tempfile.TemporaryDirectory() as scratch:
        if args.tiny:
            from tests.utils.tiny_internvl import original_config

            original = original_config()
        else:
            original = full_size_original_config()
        native_config(original, image_token_id)[0].save_pretrained(scratch)
        tokenizer.save_pretrained(scratch)
        checkpoint_facts(Path(scratch), report)
    model = build_model(args.tiny, image_token_id, device, dtype)
    options = EngineOptions(max_new_tokens=args.max_new_tokens, max_batch_rows=args.slots)
    engine = InternVLEngine(model, tokenizer, options)
    report.facts["loaded"] = {"device": str(device), "dtype": str(dtype).removeprefix("torch.")}
    pages = sample_pages(args.samples, ("ocr", "charts"), args.max_tiles)
    run_samples(engine, pages, args.samples / "truth", report)
    for line in lines(report, chars=120):
        print(line, flush=True)
    sys.exit(0 if report.ok else 1)


if __name__ == "__main__":
    main()
