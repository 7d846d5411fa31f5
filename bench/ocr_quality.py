"""RapidOCR speed and character error rate on the repository's sample documents.

    .venv/bin/python bench/ocr_quality.py [--threads 2] [--samples DIR]

PDFs are rendered with pdf2image (poppler) at 200 dpi, images are read as they
are. Each page is scored against samples/truth/<stem>/<page>.txt: CER is the
Levenshtein distance over characters, whitespace removed from both sides,
divided by the length of the truth; CER+sp keeps each run of whitespace as one
space, so word spacing counts too. A benchmark that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
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


@dataclass
class Score:
    pages: int = 0
    seconds: float = 0.0
    edits: int = 0  # whitespace removed
    chars: int = 0
    spaced_edits: int = 0  # whitespace runs kept as one space: word spacing counts too
    spaced_chars: int = 0

    def add(self, other: Score) -> None:
        for name, value in vars(other).items():
            setattr(self, name, getattr(self, name) + value)

    def row(self, label: str) -> str:
        return (
            f"{label:<22}{self.pages:>6}{self.seconds / self.pages:>9.2f}{self.chars:>8}"
            f"{self.edits / self.chars:>8.3f}{self.spaced_edits / self.spaced_chars:>9.3f}"
        )


def bench_sample(engine: RapidOcrEngine, path: Path, truth_dir: Path) -> Score:
    score = Score()
    for number, image in enumerate(load_pages(path), start=1):
        started = time.perf_counter()
        text = engine.process([PageInput(image=image)])[0].text
        score.seconds += time.perf_counter() - started
        truth = (truth_dir / path.stem / f"{number}.txt").read_text(encoding="utf-8")
        for joiner, edits, chars in (("", "edits", "chars"), (" ", "spaced_edits", "spaced_chars")):
            ref = joiner.join(truth.split())
            setattr(
                score, edits, getattr(score, edits) + levenshtein(joiner.join(text.split()), ref)
            )
            setattr(score, chars, getattr(score, chars) + len(ref))
        score.pages += 1
    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--samples", type=Path, default=ROOT / "samples")
    args = parser.parse_args()

    engine = RapidOcrEngine(threads=args.threads)
    started = time.perf_counter()
    engine.process([PageInput(image=Image.new("RGB", (64, 64), "white"))])
    print(
        f"rapidocr, {engine.threads} onnxruntime threads, {os.cpu_count()} CPUs; "
        f"model load {time.perf_counter() - started:.2f} s"
    )
    print(f"{'sample':<22}{'pages':>6}{'s/page':>9}{'chars':>8}{'CER':>8}{'CER+sp':>9}")
    total = Score()
    kinds = {".pdf", ".png", ".jpg"}
    for path in sorted(p for p in args.samples.iterdir() if p.suffix.lower() in kinds):
        score = bench_sample(engine, path, args.samples / "truth")
        total.add(score)
        print(score.row(path.name))
    print(total.row("total"))
    print("CER: whitespace ignored; CER+sp: whitespace runs count as one space")


if __name__ == "__main__":
    main()
