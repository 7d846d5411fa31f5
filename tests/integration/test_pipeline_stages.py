"""The pipeline stages in-process, on both storage backends (SQLite + folder, Postgres + S3),
with the digest engine, so every result can be checked against its own page image."""

from __future__ import annotations

import io
import json
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import update

from api.schemas import JobOptions
from api.submission import create_job
from storage import jobs as job_repo
from storage.blobs import BlobKeys
from storage.migrate import upgrade
from storage.models import Job, JobStatus, Page, PageStatus, Tenant, utcnow
from storage.tenants import get_or_create_tenant
from tessera.config import Settings
from tessera.synthetic import make_pdf, render_text_page
from workers.assemble import assemble_job
from workers.engines.digest import DigestEngine, expected_text, split_run
from workers.enqueue import ASSEMBLE, INFER, SPLIT, LocalEnqueuer
from workers.infer import infer_pages
from workers.recovery import recover
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


def local_queue(rt: Runtime, queue: LocalEnqueuer | None = None) -> LocalEnqueuer:
    queue = queue or LocalEnqueuer({})
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


class _HeldDigest(DigestEngine):
    """The digest engine with a nonce per run (which attempt wrote a result shows in its text);
    its first run holds its pages until `release` is set, as a worker that lost its lease
    (a long GC pause, a partitioned host) would."""

    def __init__(self) -> None:
        super().__init__(nonce=True)
        self.holding, self.release, self.runs = threading.Event(), threading.Event(), 0

    def process_iter(self, pages):  # noqa: ANN001, ANN202
        self.runs += 1
        if self.runs == 1:
            self.holding.set()
            assert self.release.wait(60), "the test never released the first attempt"
        yield from super().process_iter(pages)


def test_a_stale_attempt_cannot_replace_the_result_of_the_attempt_that_won(rt: Runtime) -> None:
    engine = _HeldDigest()
    rt.__dict__["engine"] = engine
    first = local_queue(rt)
    job_id = submit(rt, first, pdf(1))
    stale = threading.Thread(target=first.drain)  # split, then attempt 1 holds the page
    stale.start()
    try:
        assert engine.holding.wait(60)
        second = local_queue(rt)
        assert recover(rt, second, all_running=True).expired == 1  # its lease is taken as expired
        second.drain()  # attempt 2 runs, the page is done, the job assembled
    finally:
        engine.release.set()
        stale.join(60)
    job, (page,) = finished(rt, job_id)
    assert job.status == JobStatus.SUCCEEDED and page.attempt == 2 and engine.runs == 2
    served = json.loads(rt.blobs.get(page.result_key))  # what GET /v1/jobs/{id}/pages/1 reads
    assert split_run(served["text"])[1] == split_run(page.text_preview)[1], \
        "the page's result blob is not the one of the attempt the database recorded"
    document = json.loads(rt.blobs.get(BlobKeys.result(job.tenant_id, job_id, "json")))
    assert document["pages"][0]["text"] == served["text"]
    # the stale attempt removed what it wrote: the only result left is the winner's
    assert rt.blobs.keys(BlobKeys.page_results(job.tenant_id, job_id)) == [page.result_key]


def api_delete(rt: Runtime, job_id: str, blobs=None) -> int:  # noqa: ANN001
    """`DELETE /v1/jobs/{id}` through the API's own route function; its status code."""
    from api.routes.jobs import delete_job

    with rt.sessions() as session:
        job = job_repo.get_job(session, job_id)
        return delete_job(job_id, session, session.get(Tenant, job.tenant_id), blobs or rt.blobs).status_code


def leftovers(rt: Runtime, job_id: str, tenant_id: str) -> tuple[list[str], list]:  # noqa: ANN201
    """(blobs, page rows) of a job that should be gone."""
    with rt.sessions() as session:
        return rt.blobs.keys(BlobKeys.job_prefix(tenant_id, job_id)), job_repo.pages_of(session, job_id)


def test_deleting_a_job_while_its_page_is_in_the_engine_leaves_nothing(rt: Runtime) -> None:
    engine = _HeldDigest()
    rt.__dict__["engine"] = engine
    queue = local_queue(rt)
    job_id = submit(rt, queue, pdf(2))
    running = threading.Thread(target=queue.drain)
    running.start()
    try:
        assert engine.holding.wait(60)
        job, _ = finished(rt, job_id)
        assert api_delete(rt, job_id) == 204
    finally:
        engine.release.set()
        running.join(60)
    assert leftovers(rt, job_id, job.tenant_id) == ([], [])


class _DeletedDuringAssembly:
    """The real blob store, except that the moment the assembly writes the document, the job
    is deleted through the API's route (a client's DELETE arriving mid-assembly)."""

    def __init__(self, rt: Runtime, job_id: str) -> None:
        self.rt, self.store, self.job_id, self.deleted = rt, rt.blobs, job_id, False

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.store, name)

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        if key.endswith("/result.json") and not self.deleted:
            self.deleted = True
            assert api_delete(self.rt, self.job_id, self.store) == 204
        self.store.put(key, data, content_type)


def test_deleting_a_job_while_it_is_assembled_leaves_nothing(rt: Runtime) -> None:
    queue = local_queue(rt)
    job_id = submit(rt, queue, pdf(2))
    job, _ = finished(rt, job_id)
    store = _DeletedDuringAssembly(rt, job_id)
    rt.__dict__["blobs"] = store
    queue.drain()
    rt.__dict__["blobs"] = store.store
    assert store.deleted
    assert leftovers(rt, job_id, job.tenant_id) == ([], [])


def test_the_pages_of_a_split_still_running_are_not_resent_or_failed(rt: Runtime) -> None:
    """A long split (thousands of pages) stores its first pages long before it ends: the
    sweeper must not take them for lost, and a page that runs early must not be failed as if
    its job had been cancelled."""
    queue = local_queue(rt)
    job_id = submit(rt, queue, pdf(3))
    queue.pending.clear()
    split_job(rt, queue, job_id)
    queue.pending.clear()  # the pages' messages: this test sends them itself
    with rt.sessions.begin() as session:  # back to mid-split, the pages stored long ago
        session.execute(update(Job).where(Job.id == job_id).values(status=JobStatus.SPLITTING))
        session.execute(update(Page).where(Page.job_id == job_id)
                        .values(updated_at=utcnow() - timedelta(hours=1)))
    assert recover(rt, queue).pages == 0
    _, pages = finished(rt, job_id)
    infer_pages(rt, queue, [page.id for page in pages])  # a message that came early anyway
    _, pages = finished(rt, job_id)
    assert [(page.status, page.error_code) for page in pages] == [(PageStatus.DONE, None)] * 3
    with rt.sessions.begin() as session:  # the split ends
        session.execute(update(Job).where(Job.id == job_id).values(status=JobStatus.PROCESSING))
    recover(rt, queue)  # the sweeper moves on a processing job whose pages are all final
    queue.drain()
    assert finished(rt, job_id)[0].status == JobStatus.SUCCEEDED


class SendLog(LocalEnqueuer):
    """A local queue that notes the job's state at each inference send, and can refuse sends
    the way a broker that is away does (kombu raises OperationalError)."""

    def __init__(self, rt: Runtime, refuse: int = 0):
        super().__init__({})
        self.rt, self.refuse, self.sends = rt, refuse, []

    def infer(self, page_ids: list[int], high: bool = False) -> None:
        from kombu.exceptions import OperationalError

        if self.refuse:
            self.refuse -= 1
            raise OperationalError("Error 111 connecting to the broker. Connection refused.")
        with self.rt.sessions() as session:
            job = job_repo.get_job(session, session.get(Page, page_ids[0]).job_id)
        self.sends.append((job.status, list(page_ids)))
        super().infer(page_ids, high)


@pytest.mark.parametrize("refuse", [0, 1])
def test_the_split_sends_pages_as_it_stores_them_and_survives_a_refused_send(rt: Runtime, refuse: int) -> None:
    """The first page, then batches of `engine_batch_size`, go to inference while the split still
    renders the rest; a send the broker refuses neither fails nor restarts the split: its pages
    go at the end."""
    queue = local_queue(rt, SendLog(rt, refuse))
    job_id = submit(rt, queue, pdf(5))
    queue.pending.clear()
    split_job(rt, queue, job_id)
    _, pages = finished(rt, job_id)
    ids = [page.id for page in pages]
    assert sorted(i for _, batch in queue.sends for i in batch) == ids  # every page once
    assert all(len(batch) <= 2 for _, batch in queue.sends)
    mid_split = [batch for status, batch in queue.sends if status == JobStatus.SPLITTING]
    # The first page at once, then batches; a refused send's pages go when the split ends.
    assert mid_split == ([ids[0:1], ids[1:3], ids[3:5]] if not refuse else [ids[1:2], ids[2:4]])
    queue.drain()
    job, pages = finished(rt, job_id)
    assert job.status == JobStatus.SUCCEEDED and [p.status for p in pages] == [PageStatus.DONE] * 5


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
