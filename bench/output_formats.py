"""Milliseconds per page to build each archive format (txt, hOCR, searchable PDF), against the
engine's own time per page, and the PDF's size against the stored page images.

    .venv/bin/python bench/output_formats.py [--samples DIR] [--repeat 3]

Every document of `samples/` goes through the real stages in this process (split with poppler,
rapidocr, assemble) on embedded storage in a scratch folder; then each format is built again
`--repeat` times from the stored page results and images (the median is printed). The engine's
time is the page's own `timings.ocr`. The PDF's size is compared with the stored page images
(24-bit PNG, the 1.5x budget of issue 11). A benchmark that prints figures, not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.submission import create_job, parse_options  # noqa: E402
from storage import jobs as job_repo  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.tenants import get_or_create_tenant  # noqa: E402
from tessera.config import Settings  # noqa: E402
from workers.assemble import assemble_job  # noqa: E402
from workers.enqueue import ASSEMBLE, INFER, SPLIT, LocalEnqueuer  # noqa: E402
from workers.infer import infer_pages  # noqa: E402
from workers.outputs.fonts import text_layer_fonts  # noqa: E402
from workers.outputs.pages import OutputPage, output_page  # noqa: E402
from workers.outputs.searchable_pdf import searchable_pdf  # noqa: E402
from workers.outputs.store import build_hocr, build_txt  # noqa: E402
from workers.runtime import Runtime  # noqa: E402
from workers.split import split_job  # noqa: E402


def run_documents(rt: Runtime, paths: list[Path]) -> dict[str, str]:
    """Each document through split, infer and assemble; job id by file name."""
    queue = LocalEnqueuer({})
    queue.handlers = {SPLIT: lambda job_id: split_job(rt, queue, job_id),
                      INFER: lambda page_ids: infer_pages(rt, queue, page_ids),
                      ASSEMBLE: lambda job_id: assemble_job(rt, job_id)}
    with rt.sessions() as session:
        tenant_id = get_or_create_tenant(session, "bench").id
        session.commit()
    jobs = {}
    for path in paths:
        with rt.sessions() as session:
            job, _ = create_job(session, rt.blobs, queue, rt.settings, tenant_id=tenant_id,
                                data=path.read_bytes(), filename=path.name, options=parse_options(None),
                                idempotency_key=None)
        queue.drain()
        jobs[path.name] = job.id
    return jobs


def median_ms(build: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        build()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=Path, default=ROOT / "samples")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    paths = sorted(p for p in args.samples.iterdir() if p.suffix.lower() in (".pdf", ".png", ".jpg"))
    with tempfile.TemporaryDirectory(prefix="tessera-bench-") as home:
        settings = Settings(home=Path(home))
        upgrade(settings.sqlalchemy_url)
        rt = Runtime(settings)
        jobs = run_documents(rt, paths)
        fonts = text_layer_fonts(settings.pdf_cjk_font)
        print(f"{'document':<20}{'pages':>6}{'engine':>9}{'txt':>7}{'hocr':>7}{'pdf':>8}{'pdf/eng':>8}"
              f"{'images KB':>11}{'pdf KB':>8}{'ratio':>7}  encodings   (ms per page)")
        totals = [0, 0.0, 0.0, 0.0, 0.0, 0, 0]
        for name, job_id in jobs.items():
            with rt.sessions() as session:
                rows = job_repo.pages_of(session, job_id)
            results = [json.loads(rt.blobs.get(row.result_key)) for row in rows]
            pages = [output_page(row, result) for row, result in zip(rows, results)]
            figures = measure(rt, pages, results, fonts, args.repeat)
            for index, value in enumerate(figures[:-1]):
                totals[index] += value
            print(row(name, *figures))
        print(row("all", *totals, ""))


def measure(rt: Runtime, pages: list[OutputPage], results: list[dict], fonts, repeat: int) -> tuple:  # noqa: ANN001
    """(pages, engine ms, txt ms, hocr ms, pdf ms, stored image bytes, pdf bytes, encodings), the
    times summed over the document's pages."""
    settings, count = rt.settings, len(pages)
    engine = 1000 * sum(result["timings"]["ocr"] for result in results)
    txt = median_ms(lambda: build_txt(pages), repeat)
    hocr = median_ms(lambda: build_hocr(pages, settings, "t"), repeat)
    build = searchable_pdf(pages, rt.blobs.get, fonts, assumed_dpi=settings.default_dpi)
    pdf = median_ms(lambda: searchable_pdf(pages, rt.blobs.get, fonts, assumed_dpi=settings.default_dpi), repeat)
    stored = sum(len(rt.blobs.get(page.image_key)) for page in pages)
    encodings = ",".join(sorted(set(build.encodings.values())))
    return count, engine, txt, hocr, pdf, stored, len(build.data), encodings


def row(name: str, pages: int, engine: float, txt: float, hocr: float, pdf: float, stored: int,
        size: int, encodings: str) -> str:
    return (f"{name:<20}{pages:>6}{engine / pages:>9.0f}{txt / pages:>7.2f}{hocr / pages:>7.2f}"
            f"{pdf / pages:>8.0f}{pdf / engine:>8.3f}{stored / 1024:>11.0f}{size / 1024:>8.0f}"
            f"{size / stored:>7.2f}  {encodings}")


if __name__ == "__main__":
    main()
