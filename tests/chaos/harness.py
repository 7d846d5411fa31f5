"""What the chaos tests check, kept apart from how they break things.

- `Faults` records each fault with the progress it interrupted and refuses one that hit an
  idle stage (nothing started yet, or everything already done).
- `check_every_page` compares every page's served text with the original document rendered
  independently (pdftoppm on the submitted bytes, not the service's stored image), checks
  that the served result is the one of the attempt the database recorded (the digest engine's
  run nonce, `TESSERA_DIGEST_NONCE`), that each page was finished once (trigger log), and that
  the only result files left are the ones the rows point at.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from PIL import Image

from tests.utils.tessera_procs import ApiClient, s3_client
from workers.engines.digest import expected_text, split_run


def poppler_texts(pdf: bytes, dpi: int) -> dict[int, str]:
    """page number -> the digest engine's text for that page, rendered by pdftoppm itself."""
    with tempfile.TemporaryDirectory(prefix="chaos-poppler-") as folder:
        source = Path(folder, "original.pdf")
        source.write_bytes(pdf)
        subprocess.run(["pdftoppm", "-r", str(dpi), str(source), f"{folder}/page"], check=True,
                       capture_output=True, timeout=120)
        texts = {}
        for path in Path(folder).glob("page-*.ppm"):
            with Image.open(path) as image:
                texts[int(path.stem.rsplit("-", 1)[1])] = expected_text(image)
    return texts


class Db:
    """Reads of the system of record, straight from PostgreSQL."""

    def __init__(self, url: str) -> None:
        self.url = url

    def rows(self, sql: str, *params: object) -> list[tuple]:
        with psycopg.connect(self.url, connect_timeout=3) as connection:
            return connection.execute(sql, params).fetchall()

    def job(self, job_id: str) -> tuple[str, str, int | None]:
        """(status, tenant id, page count)."""
        return self.rows("SELECT status, tenant_id, page_count FROM jobs WHERE id = %s", job_id)[0]

    def pages(self, job_id: str) -> dict[str, int]:
        """Page rows by status."""
        return dict(self.rows("SELECT status, count(*) FROM pages WHERE job_id = %s GROUP BY status", job_id))

    def done(self, job_id: str) -> int:
        return self.pages(job_id).get("done", 0)

    def running_on(self, job_id: str) -> list[tuple[int, int]]:
        """(worker pid, attempt) of the job's running pages."""
        rows = self.rows("SELECT worker_id, attempt FROM pages WHERE job_id = %s AND status = 'running'", job_id)
        return [(int(worker.rsplit(":", 1)[1]), attempt) for worker, attempt in rows]

    def attempts(self, job_id: str) -> dict[int, int]:
        """attempt number -> pages whose final attempt it was."""
        return dict(self.rows("SELECT attempt, count(*) FROM pages WHERE job_id = %s GROUP BY attempt", job_id))


@dataclass
class Fault:
    stage: str
    what: str
    progress: str
    at: float  # time.monotonic()


@dataclass
class Faults:
    """Every fault of a test, each with the progress it interrupted."""

    started: float = field(default_factory=time.monotonic)
    items: list[Fault] = field(default_factory=list)

    def record(self, stage: str, what: str, done: int, total: int, unit: str = "pages done") -> None:
        """A fault that landed on work in progress: 0 < done < total (else the test is wrong)."""
        assert 0 < done < total, f"{what} during {stage} hit no work in progress: {done}/{total} {unit}"
        self.note(stage, what, f"{done}/{total} {unit}")

    def note(self, stage: str, what: str, progress: str) -> None:
        self.items.append(Fault(stage, what, progress, time.monotonic()))

    def per_stage(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for fault in self.items:
            counts[fault.stage] = counts.get(fault.stage, 0) + 1
        return counts

    def summary(self, finished_at: float, attempts: dict[int, int], resent: dict[str, int]) -> str:
        """One line of figures for the report (printed; nothing is asserted on times)."""
        retried = sum(count for attempt, count in attempts.items() if attempt > 1)
        return (f"chaos: faults per stage {self.per_stage()}; pages by final attempt {dict(sorted(attempts.items()))} "
                f"({retried} needed more than one); re-sent by the sweeper: {resent['pages']} pages, "
                f"{resent['expired']} of them lost by their worker; job done "
                f"{finished_at - self.items[-1].at:.1f} s after the last fault, "
                f"{finished_at - self.started:.1f} s in all; at each fault: "
                + "; ".join(f"{f.stage} {f.what} at {f.progress} (+{f.at - self.started:.1f} s)"
                            for f in self.items))


def resent_by_sweeper(serve_log: Path) -> dict[str, int]:
    """What the sweeper sent again (its `sweep.recovered` lines, JSON logs): `pages` in all,
    `expired` of them because their worker lost them."""
    totals = {"pages": 0, "expired": 0}
    for line in serve_log.read_text(errors="replace").splitlines():
        if '"sweep.recovered"' in line:
            record = json.loads(line[line.index("{"):])
            for name in totals:
                totals[name] += record.get(name, 0)
    return totals


def logged(text: str, *needles: str) -> bool:
    """Some line of a log holds every one of `needles`."""
    return any(all(needle in line for needle in needles) for line in text.splitlines())


def check_every_page(client: ApiClient, env: dict[str, str], db: Db, done_log: Any, job: dict,
                     poppler: dict[int, str]) -> None:
    """Nothing lost, nothing twice, nothing mixed up: see the module docstring."""
    pages = job["progress"]["pages_total"]
    assert job["status"] == "succeeded", job
    assert pages == len(poppler) and done_log(job["id"]) == {n: 1 for n in range(1, pages + 1)}
    listing = client.http.get(f"/v1/jobs/{job['id']}/pages", params={"include": "text", "limit": 200})
    assert listing.status_code == 200, listing.text
    served = {page["page"]: page for page in listing.json()["pages"]}
    assert sorted(served) == list(range(1, pages + 1))
    for number, page in served.items():
        digest, run = split_run(page["text"])
        assert digest == poppler[number], f"page {number} is not the page of the original document"
        assert run is not None and run == split_run(page["text_preview"])[1], (
            f"page {number}: the served result is not the attempt the database recorded")
    document = client.http.get(f"/v1/jobs/{job['id']}/result").json()
    assert [entry["text"] for entry in document["pages"]] == [served[n]["text"] for n in sorted(served)]
    _, tenant_id, _ = db.job(job["id"])
    recorded = {key for (key,) in db.rows("SELECT result_key FROM pages WHERE job_id = %s", job["id"])}
    listed = s3_client(env).list_objects_v2(Bucket=env["TESSERA_S3_BUCKET"],
                                            Prefix=f"{tenant_id}/{job['id']}/results/", MaxKeys=1000)
    assert {item["Key"] for item in listed.get("Contents", [])} == recorded, "result files no row points at"
