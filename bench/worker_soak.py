"""Worker memory over a long run: the resident memory (RSS) of one `tessera worker` (its main
process and its pool process) sampled every second while it processes 2,000 pages with the
digest engine, then 200 pages with rapidocr, on PostgreSQL + Redis + S3.

    .venv/bin/python bench/worker_soak.py [--digest-pages 2000] [--ocr-pages 200]

Documents are 20-page (digest) and 10-page (rapidocr) PDFs of US-Letter text pages at 200 dpi,
so the split stage renders real pages with poppler. Growth is measured after warm-up (the
first WARMUP share of the pages): the median RSS of the last samples against the median of
the samples at the end of warm-up; the goal is under 5 %. The worker runs with the configured
safety net (TESSERA_WORKER_MAX_MEMORY_MB; a replaced pool process shows as a new pid).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tessera.synthetic import make_pdf, render_text_page  # noqa: E402
from tests.utils.services import stack_services  # noqa: E402
from tests.utils.tessera_procs import (  # noqa: E402
    Server,
    TesseraProcess,
    child_pids,
    create_api_key,
    run_cli,
    tessera_env,
)

WARMUP = 0.1
TAIL = 0.1
LINES = ["Tessera soak test: a page of ordinary text, rendered at 200 dpi.",
         "Quarterly figures were revised after the audit of the northern region.",
         "Every page is different, so nothing is cached by accident."]


@dataclass
class Sample:
    seconds: float
    pages_done: int
    rss_mb: dict[int, float]  # pid -> MB


@dataclass
class Sampler:
    """Samples the RSS of a process and its children every second, in a thread."""

    pid: int
    progress: Callable[[], int]  # pages done so far
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> Sampler:
        self.started = time.monotonic()
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            pids = [self.pid, *child_pids(self.pid)]
            rss = {pid: mb for pid in pids if (mb := rss_mb(pid)) is not None}
            self.samples.append(Sample(time.monotonic() - self.started, self.progress(), rss))


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def documents(total_pages: int, per_doc: int, tag: str) -> list[bytes]:
    docs = []
    for index in range(0, total_pages, per_doc):
        pages = [render_text_page([f"{tag} document {index // per_doc} page {n}", *LINES])
                 for n in range(min(per_doc, total_pages - index))]
        docs.append(make_pdf(pages))
    return docs


def soak(services: dict[str, str], work: Path, engine: str, pages: int, per_doc: int
         ) -> tuple[list[Sample], int]:
    """(RSS samples, the worker's main pid)."""
    env = tessera_env({**services, "TESSERA_ENGINE": engine, "TESSERA_HOME": str(work / "home")})
    key = create_api_key(env, f"soak-{engine}")
    docs = documents(pages, per_doc, engine)
    worker = TesseraProcess(["worker", "--queues", "cpu,gpu", "--concurrency", "1"], env,
                            work / f"worker-{engine}.log").start()
    server = Server(env, work / f"serve-{engine}.log", worker=False).start()
    client = server.client(key)
    ids = [client.submit(doc, f"{engine}-{i}.pdf").json()["id"] for i, doc in enumerate(docs)]
    done = {"pages": 0}

    def progress() -> int:
        return done["pages"]

    sampler = Sampler(worker.proc.pid, progress).start()
    try:
        while True:
            listed = client.http.get("/v1/jobs", params={"ids": ",".join(ids), "limit": "200"}).json()["jobs"]
            done["pages"] = sum(j["progress"]["pages_done"] + j["progress"]["pages_failed"] for j in listed)
            if all(j["status"] in ("succeeded", "partially_succeeded", "failed") for j in listed):
                break
            time.sleep(1.0)
    finally:
        sampler.stop()
        server.stop()
        worker.stop()
    return sampler.samples, sampler.pid


def report(engine: str, pages: int, samples: list[Sample], main_pid: int) -> None:
    pids = sorted({pid for s in samples for pid in s.rss_mb}, key=lambda p: (p != main_pid, min(
        s.seconds for s in samples if p in s.rss_mb), p))
    names = {pid: ("main" if pid == main_pid else f"pool-{i}") for i, pid in enumerate(pids)}
    print(f"\n{engine}: {pages} pages in {samples[-1].seconds:.0f} s, {len(samples)} samples; "
          f"processes: {', '.join(f'{names[p]}={p}' for p in pids)}")
    print(f"{'pages done':>10} {'seconds':>8}  " + "  ".join(f"{names[p]:>9}" for p in pids))
    for step in range(11):
        target = pages * step / 10
        sample = next((s for s in samples if s.pages_done >= target), samples[-1])
        print(f"{sample.pages_done:>10} {sample.seconds:>8.0f}  " + "  ".join(
            f"{sample.rss_mb[p]:>6.0f} MB" if p in sample.rss_mb else f"{'-':>9}" for p in pids))
    for pid in pids:
        mine = [s for s in samples if pid in s.rss_mb]
        warm = [s.rss_mb[pid] for s in mine if pages * WARMUP <= s.pages_done <= pages * (WARMUP + TAIL)]
        tail = [s.rss_mb[pid] for s in mine if s.pages_done >= pages * (1 - TAIL)]
        if warm and tail:
            before, after = statistics.median(warm), statistics.median(tail)
            print(f"{names[pid]}: RSS after warm-up {before:.0f} MB, at the end {after:.0f} MB: "
                  f"growth {100 * (after - before) / before:+.1f} % (goal < 5 %); peak "
                  f"{max(s.rss_mb[pid] for s in mine):.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digest-pages", type=int, default=2000)
    parser.add_argument("--ocr-pages", type=int, default=200)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    with stack_services(root) as services:
        run_cli(tessera_env(services), "migrate")
        for engine, pages, per_doc in (("digest", args.digest_pages, 20), ("rapidocr", args.ocr_pages, 10)):
            if pages:
                report(engine, pages, *soak(services, root / engine, engine, pages, per_doc))


if __name__ == "__main__":
    main()
