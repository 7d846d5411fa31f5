"""The pipeline's own cost on the embedded defaults: pages/s of `tessera serve` (SQLite, local
blobs, kombu filesystem queue, in-process worker, rapidocr) on real multi-page PDFs, POST to
final, against pages/s of the rapidocr engine alone on the same rendered pages, in one run.

    .venv/bin/python bench/pipeline_ratio.py [--drawn-pages 6] [--rounds 1]

The documents: a drawn (born-digital, vector text) PDF of `--drawn-pages` dense pages made here
with fpdf2, the raster sample PDFs (English 3 pages, Chinese 2), and two real-world scans whose
pages must be turned (duplex back upside down, page 2 sideways): 15 pages by default.

Order: a warm-up job that loads the worker's engine, then per round (`--rounds`) the pipeline
(every document submitted at once) followed by the engine alone on the same pages; each side's
rate is the mean of its passes, so drift on a shared machine hits both. The engine alone reads
the pages the pipeline stored (`GET .../pages/{n}/image`: rendered by poppler, turned upright),
in this process, built as a worker builds it (`create_engine`); the texts must agree with the
pipeline's (the count that differ is printed).

Also printed: where the pipeline's time went: the worker's seconds in each task (split, infer,
assemble, from Celery's log lines), the engine's own seconds inside infer (each page's
`timings.ocr`) and the wall time. Figures, not a test.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.utils.tessera_procs import FINAL, Server, create_api_key, tessera_env  # noqa: E402

SCANS = [ROOT / "tests/data/real-world/duplex_back_upside_down.pdf",
         ROOT / "tests/data/real_world_more/scan_page2_sideways.pdf"]
SAMPLES = [ROOT / "samples/english-prose.pdf", ROOT / "samples/chinese-prose.pdf"]
WORDS = ("archive scanning document page service batch engine result render quality invoice report "
         "quarter revenue customer account the of and to in for with on by at from").split()


def drawn_pdf(pages: int) -> bytes:
    """Dense born-digital pages: a heading and seven paragraphs of 10.5 pt DejaVu Sans each."""
    from fpdf import FPDF

    from tessera.synthetic import FONT_FILES

    rng = random.Random(3)
    pdf = FPDF(unit="pt", format="letter")
    pdf.add_font("dejavu", fname=FONT_FILES["en"])
    for number in range(1, pages + 1):
        pdf.add_page()
        pdf.set_font("dejavu", size=16)
        pdf.cell(0, 24, f"Chapter {number}: quarterly archive report", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("dejavu", size=10.5)
        for _ in range(7):
            pdf.multi_cell(0, 14, " ".join(rng.choice(WORDS) for _ in range(90)).capitalize() + ".")
            pdf.ln(6)
    return bytes(pdf.output())


def corpus(drawn_pages: int) -> dict[str, bytes]:
    documents = {"drawn.pdf": drawn_pdf(drawn_pages)} if drawn_pages else {}
    documents.update({path.name: path.read_bytes() for path in SAMPLES + SCANS})
    return documents


def utc(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def run_pipeline(client, documents: dict[str, bytes]) -> tuple[float, list[dict]]:  # noqa: ANN001
    """Seconds from the first POST to the last job's `finished_at` (the server's clock, so the
    polling interval adds nothing), and the final jobs."""
    started = datetime.now(timezone.utc).timestamp()
    ids = [client.submit(data, name).json()["id"] for name, data in documents.items()]
    jobs: dict[str, dict] = {}
    while len(jobs) < len(ids):
        time.sleep(0.5)
        listed = client.http.get("/v1/jobs", params={"ids": ",".join(ids), "limit": 200}).json()["jobs"]
        jobs.update({job["id"]: job for job in listed if job["status"] in FINAL})
    final = [jobs[job_id] for job_id in ids]
    bad = [(job["filename"], job["status"]) for job in final if job["status"] != "succeeded"]
    assert not bad, bad
    return max(utc(job["finished_at"]) for job in final) - started, final


def stored_pages(client, jobs: list[dict]) -> list[tuple[bytes, str]]:  # noqa: ANN001
    """Each page's stored image and the text the pipeline read from it."""
    pages = []
    for job in jobs:
        listed = client.http.get(f"/v1/jobs/{job['id']}/pages", params={"include": "text", "limit": 200})
        for page in listed.json()["pages"]:
            image = client.http.get(f"/v1/jobs/{job['id']}/pages/{page['page']}/image")
            image.raise_for_status()
            pages.append((image.content, page["text"]))
    return pages


def engine_pass(engine, images: list) -> tuple[float, list[str]]:  # noqa: ANN001
    """Seconds for the engine to read every page, one call per page as the worker's batch of one
    page would, and the texts it read."""
    from workers.engines.base import PageInput

    started, texts = time.perf_counter(), []
    for image in images:
        texts.extend(result.text for result in engine.process([PageInput(image=image)]))
    return time.perf_counter() - started, texts


TASK_LINE = re.compile(r"Task tessera\.(\w+)\[[^\]]+\] succeeded in ([\d.]+)s")


def task_seconds(log: str) -> dict[str, float]:
    """Seconds the worker spent in each task (Celery's `Task ... succeeded in Ns` lines), summed."""
    totals: dict[str, float] = {}
    for name, seconds in TASK_LINE.findall(log):
        totals[name] = totals.get(name, 0.0) + float(seconds)
    return totals


def engine_seconds(client, jobs: list[dict]) -> float:  # noqa: ANN001
    """The engine's own seconds inside the worker (each page's `timings.ocr`)."""
    total = 0.0
    for job in jobs:
        for number in range(1, job["page_count"] + 1):
            page = client.http.get(f"/v1/jobs/{job['id']}/pages/{number}").json()
            total += (page.get("timings") or {}).get("ocr", 0.0)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drawn-pages", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2, help="pipeline passes, each followed by an engine pass")
    args = parser.parse_args()
    documents = corpus(args.drawn_pages)
    work = Path(tempfile.mkdtemp(prefix="bench-ratio-"))
    env = tessera_env({"TESSERA_HOME": str(work / "home")})
    os.environ["OMP_NUM_THREADS"] = env["OMP_NUM_THREADS"]  # as the worker has it, before onnxruntime loads
    from PIL import Image

    from tessera.config import Settings
    from workers.engines.registry import create_engine

    engine = create_engine(Settings(_env_file=None, engine="rapidocr"))
    key = create_api_key(env, "bench")
    server = Server(env, work / "serve.log").start()
    pipeline, alone, differing = [], [], 0
    try:
        client = server.client(key)
        warm = client.submit(SAMPLES[1].read_bytes(), "warm-up.pdf").json()["id"]  # loads the engine
        assert client.wait(warm, timeout=600)["status"] == "succeeded"
        for round_ in range(args.rounds):
            log_start = (work / "serve.log").stat().st_size
            seconds, jobs = run_pipeline(client, documents)
            pipeline.append(seconds)
            time.sleep(1.0)  # the last task's line reaches the log
            with (work / "serve.log").open(encoding="utf-8", errors="replace") as log:
                log.seek(log_start)
                by_stage = {**task_seconds(log.read()), "engine (inside infer)": engine_seconds(client, jobs),
                            "wall": seconds}
            if round_ == 0:
                pages = stored_pages(client, jobs)
                images = [Image.open(io.BytesIO(data)) for data, _ in pages]
                for image in images:
                    image.load()
                engine_pass(engine, images[:1])  # the engine's models load outside the timing
            seconds, texts = engine_pass(engine, images)
            alone.append(seconds)
            differing = sum(text != page_text for text, (_, page_text) in zip(texts, pages))
    finally:
        server.stop()
    report(len(images), pipeline, alone, by_stage, differing)


def report(count: int, pipeline: list[float], alone: list[float], by_stage: dict[str, float],
           differing: int) -> None:
    engine_rate = count / statistics.mean(alone)
    pipeline_rate = count / statistics.mean(pipeline)
    print(f"{count} pages; texts the engine alone read differently from the pipeline: {differing}")
    print(f"engine alone (rapidocr, this process):        {engine_rate:.3f} pages/s  "
          f"(passes: {' '.join(f'{s:.1f}' for s in alone)} s)")
    print(f"pipeline, embedded defaults, POST -> final:   {pipeline_rate:.3f} pages/s  "
          f"(passes: {' '.join(f'{s:.1f}' for s in pipeline)} s)")
    print(f"ratio pipeline / engine: {pipeline_rate / engine_rate:.3f}")
    print("where the last pipeline pass's seconds went (worker seconds per task, summed; tasks may overlap):")
    for name, seconds in by_stage.items():
        print(f"  {name:<22}{seconds:8.1f} s  {1000 * seconds / count:7.0f} ms/page")


if __name__ == "__main__":
    main()
