"""The pipeline stages in-process, on both storage backends (SQLite + folder, Postgres + S3),
with the digest engine, so every result can be checked against its own page image."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest
from PIL import Image

from api.schemas import JobOptions
from api.submission import create_job
from storage import jobs as job_repo
from storage.blobs import BlobKeys
from storage.migrate import upgrade
from storage.models import JobStatus, PageStatus
from storage.tenants import get_or_create_tenant
from tessera.config import Settings
from tessera.synthetic import make_pdf, render_text_page
from workers.assemble import assemble_job
from workers.engines.digest import DigestEngine, expected_text
from workers.enqueue import ASSEMBLE, INFER, SPLIT, LocalEnqueuer
from workers.infer import infer_pages
from workers.runtime import Runtime
from workers.split import split_job


@pytest.fixture(params=["embedded", "postgres_s3"])
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Runtime:
    values: dict = {"home": tmp_path, "engine": "digest", "engine_batch_size": 2}
    if request.param == "postgres_s3":
        env = request.getfixturevalue("stack_env")
        request.getfixturevalue("monkeypatch").setenv("AWS_ACCESS_KEY_ID", env["AWS_ACCESS_KEY_ID"])
        request.getfixturevalue("monkeypatch").setenv("AWS_SECRET_ACCESS_KEY", env["AWS_SECRET_ACCESS_KEY"])
        values.update(database_url=env["TESSERA_DATABASE_URL"], s3_bucket=env["TESSERA_S3_BUCKET"],
                      s3_endpoint_url=env["TESSERA_S3_ENDPOINT_URL"])
    settings = Settings(**values)
    upgrade(settings.sqlalchemy_url)
    return Runtime(settings)


def local_queue(rt: Runtime) -> LocalEnqueuer:
    queue = LocalEnqueuer({})
    queue.handlers = {SPLIT: lambda job_id: split_job(rt, queue, job_id),
                      INFER: lambda ids: infer_pages(rt, queue, ids),
                      ASSEMBLE: lambda job_id: assemble_job(rt, job_id)}
    return queue


def submit(rt: Runtime, queue: LocalEnqueuer, data: bytes, tenant: str = "t", **options) -> str:  # noqa: ANN003
    with rt.sessions() as session:
        tenant_id = get_or_create_tenant(session, tenant).id
        session.commit()
        job, created = create_job(session, rt.blobs, queue, rt.settings, tenant_id=tenant_id, data=data,
                                  filename="../../etc/passwd", options=JobOptions(**options),
                                  idempotency_key=None)
    assert created
    return job.id


def pdf(n_pages: int) -> bytes:
    return make_pdf([render_text_page([f"page {i}"], size=(400, 300)) for i in range(1, n_pages + 1)])


def finished(rt: Runtime, job_id: str):  # noqa: ANN201
    with rt.sessions() as session:
        return job_repo.get_job(session, job_id), job_repo.pages_of(session, job_id)


def test_every_page_result_is_derived_from_its_own_page(rt: Runtime) -> None:
    queue = local_queue(rt)
    job_id = submit(rt, queue, pdf(5))
    queue.drain()
    job, pages = finished(rt, job_id)
    assert job.status == JobStatus.SUCCEEDED and job.page_count == 5
    assert job.filename == "passwd"  # display only; keys are built from ids
    for page in pages:
        image = Image.open(io.BytesIO(rt.blobs.get(page.image_key)))
        result = json.loads(rt.blobs.get(page.result_key))
        assert page.status == PageStatus.DONE and page.attempt == 1
        assert result["text"] == expected_text(image) and result["page"] == page.page_no
    document = json.loads(rt.blobs.get(BlobKeys.result(job.tenant_id, job_id, "json")))
    assert [p["page"] for p in document["pages"]] == [1, 2, 3, 4, 5]


class _WatchingDigest(DigestEngine):
    """The digest engine, in reverse page order. Before each page it waits (up to 30 s) for
    the pages it already handed over to be stored, and notes the job's page statuses."""

    def __init__(self, rt: Runtime, fail_batches: bool = False) -> None:
        super().__init__()
        self.rt, self.fail_batches = rt, fail_batches
        self.seen: list[tuple[str, list[PageStatus]]] = []

    def process_iter(self, pages):  # noqa: ANN001, ANN202
        handed_over = 0
        for index in reversed(range(len(pages))):
            job_id = pages[index].ref.split("/")[0]
            self.seen.append((pages[index].ref, self._statuses(job_id, handed_over)))
            if self.fail_batches and len(pages) > 1 and index < len(pages) - 1:
                raise RuntimeError("engine fault after the first page of a batch")
            yield index, self._one(pages[index])
            handed_over += 1

    def _statuses(self, job_id: str, stored: int) -> list[PageStatus]:
        deadline = time.monotonic() + 30
        while True:
            with self.rt.sessions() as session:
                statuses = [p.status for p in job_repo.pages_of(session, job_id)]
            if statuses.count(PageStatus.DONE) >= stored or time.monotonic() > deadline:
                return statuses
            time.sleep(0.02)


def test_each_page_is_stored_as_soon_as_the_engine_finishes_it(rt: Runtime) -> None:
    engine = _WatchingDigest(rt)
    rt.__dict__["engine"] = engine
    queue = local_queue(rt)
    job_id = submit(rt, queue, pdf(2))  # engine_batch_size 2: one batch, pages 2 then 1
    queue.drain()
    job, pages = finished(rt, job_id)
    assert job.status == JobStatus.SUCCEEDED
    assert [ref for ref, _ in engine.seen] == [f"{job_id}/2", f"{job_id}/1"]
    assert engine.seen[0][1] == [PageStatus.RUNNING, PageStatus.RUNNING]
    # page 2 was stored while the engine still held page 1, not at the end of the batch
    assert engine.seen[1][1] == [PageStatus.RUNNING, PageStatus.DONE]


def test_a_batch_that_fails_midway_keeps_what_it_finished(rt: Runtime) -> None:
    engine = _WatchingDigest(rt, fail_batches=True)
    rt.__dict__["engine"] = engine
    queue = local_queue(rt)
    job_id = submit(rt, queue, pdf(2))
    queue.drain()
    job, pages = finished(rt, job_id)
    assert job.status == JobStatus.SUCCEEDED
    # page 2 was finished before the fault and kept; page 1 then ran alone, still attempt 1
    assert [(p.status, p.attempt) for p in pages] == [(PageStatus.DONE, 1), (PageStatus.DONE, 1)]
    assert [ref for ref, _ in engine.seen] == [f"{job_id}/2", f"{job_id}/1", f"{job_id}/1"]
    for page in pages:
        image = Image.open(io.BytesIO(rt.blobs.get(page.image_key)))
        assert json.loads(rt.blobs.get(page.result_key))["text"] == expected_text(image)


def test_running_every_stage_twice_changes_nothing(rt: Runtime) -> None:
    queue = local_queue(rt)
    job_id = submit(rt, queue, pdf(3))
    queue.drain()
    before_job, before_pages = finished(rt, job_id)
    split_job(rt, queue, job_id)
    infer_pages(rt, queue, [page.id for page in before_pages])
    assemble_job(rt, job_id)
    assert not queue.pending
    after_job, after_pages = finished(rt, job_id)
    assert after_job.status == before_job.status == JobStatus.SUCCEEDED
    assert [(p.status, p.attempt, p.result_key) for p in after_pages] == \
           [(p.status, p.attempt, p.result_key) for p in before_pages]


def test_page_range_selects_pages_numbered_from_one(rt: Runtime) -> None:
    queue = local_queue(rt)
    job_id = submit(rt, queue, pdf(6), pages="2-3,6")
    queue.drain()
    job, pages = finished(rt, job_id)
    assert job.status == JobStatus.SUCCEEDED and [p.page_no for p in pages] == [2, 3, 6]


def test_multi_page_tiff_becomes_one_page_per_frame(rt: Runtime) -> None:
    frames = [Image.new("RGB", (64, 48), colour) for colour in ("red", "green", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, "TIFF", save_all=True, append_images=frames[1:])
    queue = local_queue(rt)
    job_id = submit(rt, queue, buffer.getvalue())
    queue.drain()
    job, pages = finished(rt, job_id)
    assert job.status == JobStatus.SUCCEEDED and [p.page_no for p in pages] == [1, 2, 3]
    for page, frame in zip(pages, frames):
        assert json.loads(rt.blobs.get(page.result_key))["text"] == expected_text(frame)


def test_input_that_turns_out_corrupt_fails_the_job_with_a_code(rt: Runtime) -> None:
    queue = local_queue(rt)
    job_id = submit(rt, queue, pdf(2))
    with rt.sessions() as session:
        job = job_repo.get_job(session, job_id)
    rt.blobs.put(BlobKeys.input(job.tenant_id, job_id), b"%PDF-1.4 garbage that poppler cannot read")
    queue.drain()
    job, pages = finished(rt, job_id)
    assert job.status == JobStatus.FAILED and job.error_code == "corrupt_document"
    assert pages == [] and job.finished_at is not None


def test_a_job_whose_pages_all_fail_ends_failed(rt: Runtime) -> None:
    class Broken:
        name = "broken"

        def process(self, pages):  # noqa: ANN001, ANN202
            raise RuntimeError("engine fault")

    rt.__dict__["engine"] = Broken()
    queue = local_queue(rt)
    job_id = submit(rt, queue, pdf(2))
    queue.drain()
    job, pages = finished(rt, job_id)
    assert job.status == JobStatus.FAILED and job.error_code == "all_pages_failed"
    assert {p.status for p in pages} == {PageStatus.FAILED}
    assert all(p.attempt == rt.settings.max_page_attempts for p in pages)
