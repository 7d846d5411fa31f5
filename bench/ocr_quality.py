"""RapidOCR speed and character error rate on the repository's sample documents.

    .venv/bin/python bench/ocr_quality.py [--threads 2] [--samples DIR]

PDFs are rendered with pdf2image (poppler) at 200 dpi, images are read as they
are. Each page is scored against samples/truth/<stem>/<page>.txt: CER is the
Levenshtein distance over characters, whitespace removed from both sides,
divided by the length of the truth. A benchmark that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tessera.synthetic import levenshtein  # noqa: E402
from workers.engines.base import PageInput  # noqa: E402
from workers.engines.rapidocr_engine import RapidOcrEngine  # noqa: E402

DPI = 200


def load_pages(path: Path) -> list[Image.Image]:
    if path.suffix.lower() == ".pdf":
        from pdf2image import convert_from_path

        return convert_from_path(path, dpi=DPI)
    return [Image.open(path)]


def squeeze(text: str) -> str:
    return "".join(text.split())


def bench_sample(engine: RapidOcrEngine, path: Path, truth_dir: Path) -> tuple[int, float, int, int]:
    """(pages, OCR seconds, edit distance, truth characters) for one sample."""
    pages = load_pages(path)
    seconds, edits, chars = 0.0, 0, 0
    for number, image in enumerate(pages, start=1):
        started = time.perf_counter()
        result = engine.process([PageInput(image=image)])[0]
        seconds += time.perf_counter() - started
        truth = squeeze((truth_dir / path.stem / f"{number}.txt").read_text(encoding="utf-8"))
        edits += levenshtein(squeeze(result.text), truth)
        chars += len(truth)
    return len(pages), seconds, edits, chars


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--samples", type=Path, default=ROOT / "samples")
    args = parser.parse_args()

    engine = RapidOcrEngine(threads=args.threads)
    started = time.perf_counter()
    engine.process([PageInput(image=Image.new("RGB", (64, 64), "white"))])
    print(f"rapidocr, {engine.threads} onnxruntime threads, {os.cpu_count()} CPUs; "
          f"model load {time.perf_counter() - started:.2f} s")
    print(f"{'sample':<22}{'pages':>6}{'s/page':>9}{'chars':>8}{'CER':>8}")
    totals = [0, 0.0, 0, 0]
    files = sorted(p for p in args.samples.iterdir() if p.suffix.lower() in {".pdf", ".png", ".jpg"})
    for path in files:
        pages, seconds, edits, chars = bench_sample(engine, path, args.samples / "truth")
        totals = [t + v for t, v in zip(totals, (pages, seconds, edits, chars))]
        print(f"{path.name:<22}{pages:>6}{seconds / pages:>9.2f}{chars:>8}{edits / chars:>8.3f}")
    pages, seconds, edits, chars = totals
    print(f"{'total':<22}{pages:>6}{seconds / pages:>9.2f}{chars:>8}{edits / chars:>8.3f}")


if __name__ == "__main__":
    main()
