"""Nothing lost, nothing twice, nothing mixed up: real processes SIGKILLed in every stage,
PostgreSQL, Redis and S3 stopped hard and gracefully, while documents are processed by the
digest engine (each result checkable against the original page, rendered here by poppler).

Every fault records the progress it interrupted and fails the test if it hit an idle stage;
each test ends by checking every page (tests/chaos/harness.py) and that recovery really ran
(pages on a second attempt, or re-sent by the sweeper). Figures are printed (`-s`)."""

from __future__ import annotations

import io
import os
import re
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tessera.synthetic import make_pdf, render_text_page
from tests.chaos.harness import Db, Faults, check_every_page, logged, poppler_texts, resent_by_sweeper
from tests.security.http_helpers import LocalHttp, Reply, Request
from tests.utils.services import TcpGate
from tests.utils.tessera_procs import (
    Stack,
    child_pids,
    create_api_key,
    pid_owning_connection,
    run_cli,
    tessera_env,
)
from workers.engines.digest import POISON_RGB, expected_text, split_run

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

DPI = 72
CHAOS_ENV = {
    "TESSERA_ENGINE": "digest",
    "TESSERA_DIGEST_DELAY_S": "0.03",
    "TESSERA_DIGEST_NONCE": "true",
    "TESSERA_ENGINE_BATCH_SIZE": "4",
    "TESSERA_LEASE_S": "3",
    "TESSERA_SWEEP_INTERVAL_S": "1",
    "TESSERA_STALE_QUEUED_S": "15",
    "TESSERA_VISIBILITY_TIMEOUT_S": "30",
    "TESSERA_DEFAULT_DPI": str(DPI),
    "TESSERA_LOG_JSON": "1",
    "TESSERA_ALLOW_PRIVATE_URLS": "true",
    "TESSERA_WEBHOOK_TIMEOUT_S": "1",
}
POLL_S = 0.01


def numbered_pdf(n_pages: int, tag: str = "chaos") -> bytes:
    return make_pdf([render_text_page([f"{tag} page {i}"], size=(300, 120), font_size=20, margin=20)
                     for i in range(1, n_pages + 1)], dpi=DPI)


def wait_until(condition: Callable[[], object], what: str, timeout: float = 120.0,
               each: Callable[[], object] | None = None) -> object:
    """Poll `condition` (running `each` first every time) until it returns something true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if each is not None:
            each()
        value = condition()
        if value:
            return value
        time.sleep(POLL_S)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def stack(stack_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest):  # noqa: ANN201
    """(Stack, ApiClient, Db, env). Parameters: env overrides, gpus, webhooks (a webhooks
    worker), s3_gate (the processes reach S3 through a TcpGate the test can close)."""
    overrides = getattr(request, "param", {})
    env = tessera_env({**stack_env, **CHAOS_ENV, "TESSERA_HOME": str(tmp_path / "home"),
                       **overrides.get("env", {})})
    gate = None
    if overrides.get("s3_gate"):
        gate = TcpGate(int(stack_env["TESSERA_S3_ENDPOINT_URL"].rsplit(":", 1)[1]))
        gate.open()
        env["TESSERA_S3_ENDPOINT_URL"] = f"http://127.0.0.1:{gate.port}"
    run_cli(env, "migrate")
    key = create_api_key(env, "chaos")
    try:
        with Stack(env, tmp_path, gpu_workers=overrides.get("gpus", 1),
                   webhooks=overrides.get("webhooks", False)) as running:
            running.gate = gate
            yield running, running.server.client(key), Db(env["TESSERA_DATABASE_URL"]), env
    finally:
        if gate is not None:
            gate.close()


def submit(client, pdf: bytes, name: str, **options) -> str:  # noqa: ANN001, ANN003
    response = client.submit(pdf, name, options=options or None)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def finish(running: Stack, client, db: Db, faults: Faults, job_id: str, *,  # noqa: ANN001
           expect_second_attempts: bool = True) -> dict:
    """Wait for the job to end; print the figures; assert that recovery really ran.

    A killed worker loses the work in flight, so some page must have needed a second attempt
    or a re-send. A short outage of a service need not, hard or graceful: the workers ride
    through it in-process (`_durably` in workers/infer.py keeps the page's attempt; a broker
    that comes back with its messages loses none), so those tests pass
    `expect_second_attempts=False` and prove the hit from the workers' logs instead."""
    job = client.wait(job_id, timeout=300, each_poll=running.supervise)
    finished_at = time.monotonic()
    attempts, resent = db.attempts(job_id), resent_by_sweeper(running.server.log)
    print(faults.summary(finished_at, attempts, resent))
    if expect_second_attempts:
        assert any(attempt > 1 for attempt in attempts) or resent["pages"] > 0, (
            f"no page needed a second attempt and none was re-sent: the faults hit nothing ({attempts})")
    return job


def assert_hit_working_processes(running: Stack, *evidence: tuple[str, ...]) -> None:
    """Each stop reached processes at work: a line of the workers' logs names its effect."""
    logs = "\n".join(p.log.read_text(errors="replace") for p in running.workers().values())
    for needles in evidence:
        assert logged(logs, *needles), f"no worker logged {needles}: the stop hit no work"


# ------------------------------------------------------------------ SIGKILLs in every stage


class HeldHook:
    """A webhook receiver that holds the first delivery unanswered until released."""

    def __init__(self, receiver: LocalHttp, path: str) -> None:
        self.receiver, self.path = receiver, path
        self.url = receiver.serve(path, self)
        self.first: Request | None = None
        self.release = threading.Event()

    def __call__(self, request: Request) -> Reply:
        if self.first is None:
            self.first = request
            self.release.wait(60)
        return Reply(200, b"ok")


def kill_during_split(running: Stack, db: Db, faults: Faults, job_id: str, total: int) -> None:
    def splitting() -> int:
        status, rendered = db.job(job_id)[0], sum(db.pages(job_id).values())
        assert status in ("queued", "splitting"), f"the split ended ({status}) before a kill landed"
        return rendered if status == "splitting" and 0 < rendered < total else 0

    rendered = wait_until(splitting, "a split half done", timeout=60)
    running.kill("cpu")
    assert db.job(job_id)[0] == "splitting", "the split had finished when the kill landed"
    faults.record("split", "SIGKILL cpu worker", rendered, total, "pages rendered")


def kill_webhook_sender(db: Db, faults: Faults, hook: HeldHook, job_id: str) -> None:
    """SIGKILL whichever process holds the connection of the held delivery (a webhooks pool
    process, or the API's sweeper), then let the receiver go."""
    pid = pid_owning_connection(hook.first.client_port, hook.receiver.port)
    assert pid is not None, "no process holds the webhook's connection"
    (attempts, delivered), = db.rows("SELECT attempts, delivered_at FROM webhook_deliveries "
                                     "WHERE subject_id = %s", job_id)
    assert attempts == 1 and delivered is None
    os.kill(pid, signal.SIGKILL)
    faults.note("webhook", f"SIGKILL sender (pid {pid})", "delivery 1 sent, not answered")
    hook.release.set()


class InferKiller:
    """SIGKILLs of the gpu worker while it holds pages of one job: alternately the whole worker
    and its pool process. A kill lands only on fresh pages (never killed before, so no page
    dies of the kills) and after at least 3 more pages were done (so the job moves on)."""

    def __init__(self, running: Stack, db: Db, faults: Faults, job_id: str, total: int) -> None:
        self.running, self.db, self.faults, self.job_id, self.total = running, db, faults, job_id, total
        self.kills, self.last_done = 0, 0

    def maybe_kill(self) -> None:
        gpu = self.running.gpus[0]
        if gpu.proc is None or gpu.proc.poll() is not None:
            return
        pool = child_pids(gpu.proc.pid)
        held = [attempt for pid, attempt in self.db.running_on(self.job_id) if pid in pool]
        done = self.db.done(self.job_id)
        if not held or max(held) > 1 or done < self.last_done + 3:
            return
        whole = self.kills % 2 == 0
        self.faults.record("infer", "SIGKILL gpu worker" if whole else "SIGKILL gpu pool process",
                           done, self.total)
        if whole:
            self.running.kill("gpu-0")
        else:
            for pid in pool:
                os.kill(pid, signal.SIGKILL)
        self.kills, self.last_done = self.kills + 1, done


def kill_during_assembly(running: Stack, db: Db, faults: Faults, job_id: str, total: int) -> None:
    """SIGKILL the cpu worker once it has taken the job's assembly, before the document is out."""
    received = re.compile(r"tessera\.assemble\[[0-9a-f-]+\] received")
    before = len(received.findall(running.cpu.log.read_text(errors="replace")))
    assert db.job(job_id)[0] == "processing", "the job was assembled before the test was ready"

    def taken() -> bool:
        return (db.job(job_id)[0] == "assembling"
                and len(received.findall(running.cpu.log.read_text(errors="replace"))) > before)

    wait_until(taken, "the assembly to start", each=running.supervise)
    running.kill("cpu")
    assert db.job(job_id)[0] == "assembling", "the assembly had finished when the kill landed"
    faults.note("assemble", "SIGKILL cpu worker", f"{total}/{total} pages done, document not written")


@pytest.mark.parametrize("stack", [{"webhooks": True}], indirect=True)
def test_sigkills_in_every_stage_lose_repeat_and_mix_up_nothing(stack, done_log) -> None:  # noqa: ANN001
    running, client, db, env = stack
    faults, total, infer_kills = Faults(), 100, 10
    with LocalHttp() as receiver:
        hook = HeldHook(receiver, "/hook/chaos")
        small_pdf, big_pdf = numbered_pdf(2, "hook"), numbered_pdf(total)
        small = submit(client, small_pdf, "hook.pdf", webhook_url=hook.url, priority="high")
        big = submit(client, big_pdf, "chaos.pdf")
        kill_during_split(running, db, faults, big, total)
        infer, hook_killed = InferKiller(running, db, faults, big, total), False
        deadline = time.monotonic() + 180
        while infer.kills < infer_kills or not hook_killed:
            assert time.monotonic() < deadline, f"{infer.kills} infer kills, webhook killed: {hook_killed}"
            running.supervise()
            if not hook_killed and hook.first is not None:
                kill_webhook_sender(db, faults, hook, small)
                hook_killed = True
            if infer.kills < infer_kills:
                infer.maybe_kill()
            time.sleep(POLL_S)
        kill_during_assembly(running, db, faults, big, total)
        job = finish(running, client, db, faults, big)
        check_every_page(client, env, db, done_log, job, poppler_texts(big_pdf, DPI))
        small_job = client.wait(small, timeout=60)
        check_every_page(client, env, db, done_log, small_job, poppler_texts(small_pdf, DPI))
        deliveries = receiver.wait_for("/hook/chaos", count=2, timeout=90)
    assert len({request.headers["tessera-delivery"] for request in deliveries}) == 1  # one delivery, re-sent
    assert db.rows("SELECT delivered_at IS NOT NULL FROM webhook_deliveries WHERE subject_id = %s",
                   small) == [(True,)]
    assert faults.per_stage() == {"split": 1, "webhook": 1, "infer": infer_kills, "assemble": 1}


# ------------------------------------------------------------------ hard and graceful stops


def progress_past(db: Db, job_id: str, pages: int) -> int:
    """Pages done, once at least `pages` are."""
    def enough() -> int:
        done = db.done(job_id)
        return done if done >= pages else 0

    return wait_until(enough, f"{pages} pages done")


@pytest.mark.parametrize("stack", [{"s3_gate": True, "env": {"TESSERA_STALE_QUEUED_S": "5",
                                                             "TESSERA_DIGEST_DELAY_S": "0.05"}}],
                         indirect=True)
def test_hard_stops_lose_nothing_acknowledged(stack, redis_srv, postgres, done_log) -> None:  # noqa: ANN001
    running, client, db, env = stack
    faults, total = Faults(), 160
    big_pdf, small_pdf = numbered_pdf(total), numbered_pdf(3, "acked")
    big = submit(client, big_pdf, "chaos.pdf")
    done = progress_past(db, big, 20)
    # Jobs acknowledged (202) just before Redis dies: their messages may be in the lost second
    # of the AOF (appendfsync everysec); the database still knows them.
    acked = [submit(client, small_pdf, f"acked-{n}.pdf") for n in range(3)]
    faults.record("redis", "SIGKILL redis-server", done, total)
    redis_srv.stop(hard=True)
    redis_srv.start()
    done = progress_past(db, big, done + 20)
    faults.record("postgres", "pg_ctl stop -m immediate, 5 s", done, total)
    postgres.stop(hard=True)
    try:
        time.sleep(5)
        assert client.http.get(f"/v1/jobs/{big}").status_code == 503  # a clear 503, never a 500
    finally:
        postgres.start()
    done = progress_past(db, big, done + 20)
    faults.record("s3", "S3 unreachable for 10 s", done, total)
    running.gate.close()
    try:
        time.sleep(10)
        reading = client.http.get(f"/v1/jobs/{big}/pages", params={"include": "text"})  # done pages' blobs
        assert reading.status_code == 503, reading.text
    finally:
        running.gate.open()
    job = finish(running, client, db, faults, big, expect_second_attempts=False)
    assert_hit_working_processes(running, ("Connection to broker lost",), ("OperationalError",),
                                 ("EndpointConnectionError",))
    check_every_page(client, env, db, done_log, job, poppler_texts(big_pdf, DPI))
    small_texts = poppler_texts(small_pdf, DPI)
    for job_id in acked:
        check_every_page(client, env, db, done_log, client.wait(job_id, timeout=120), small_texts)


def test_graceful_stops_of_redis_and_postgres_mid_run(stack, redis_srv, postgres, done_log) -> None:  # noqa: ANN001
    running, client, db, env = stack
    faults, total = Faults(), 80
    pdf = numbered_pdf(total)
    job_id = submit(client, pdf, "chaos.pdf")
    faults.record("redis", "restart (SIGTERM)", progress_past(db, job_id, 10), total)
    redis_srv.stop()
    try:
        time.sleep(2.0)
    finally:
        redis_srv.start()
    faults.record("postgres", "fast shutdown, 10 s", progress_past(db, job_id, 30), total)
    postgres.stop()
    try:
        time.sleep(10.0)
        assert client.http.get(f"/v1/jobs/{job_id}").status_code == 503  # a clear 503, never a 500
    finally:
        postgres.start()
    job = finish(running, client, db, faults, job_id, expect_second_attempts=False)
    assert_hit_working_processes(running, ("Connection to broker lost",), ("OperationalError",))
    texts = poppler_texts(pdf, DPI)
    check_every_page(client, env, db, done_log, job, texts)
    with pytest.raises(AssertionError, match="not the page of the original document"):
        check_every_page(client, env, db, done_log, job, {**texts, 1: texts[2], 2: texts[1]})  # the check can fail


# ------------------------------------------------------------------ poison, slow tasks


@pytest.mark.parametrize("stack", [{"env": {"TESSERA_DIGEST_POISON": "true"}}], indirect=True)
def test_poison_page_goes_dead_and_the_rest_finish(stack) -> None:  # noqa: ANN001
    _, client, _, _ = stack
    frames = [render_text_page([f"frame {i}"], size=(300, 120), font_size=20, margin=20).convert("RGB")
              for i in range(1, 9)]
    frames[2].putpixel((0, 0), POISON_RGB)
    buffer = io.BytesIO()
    frames[0].save(buffer, "TIFF", save_all=True, append_images=frames[1:])
    job = client.wait(client.submit(buffer.getvalue(), "poison.tiff").json()["id"], timeout=120)
    assert job["status"] == "partially_succeeded"
    assert job["progress"] == {"pages_total": 8, "pages_done": 7, "pages_failed": 1}
    poison = client.http.get(f"/v1/jobs/{job['id']}/pages/3").json()
    assert poison["status"] == "dead" and poison["error"]["code"] == "worker_lost"
    assert poison["attempt"] == 3
    for page_no in (1, 2, 4, 8):
        page = client.http.get(f"/v1/jobs/{job['id']}/pages/{page_no}").json()
        assert split_run(page["text"])[0] == expected_text(frames[page_no - 1])


@pytest.mark.parametrize("stack", [{"gpus": 2, "env": {"TESSERA_VISIBILITY_TIMEOUT_S": "2",
                                                       "TESSERA_DIGEST_DELAY_S": "6",
                                                       "TESSERA_LEASE_S": "3"}}], indirect=True)
def test_task_outliving_the_visibility_timeout_still_gives_one_result(stack, done_log) -> None:  # noqa: ANN001
    running, client, db, env = stack
    running.wait_until_workers_ready()  # the second gpu worker must be there to take the copy
    pdf = numbered_pdf(1)
    job = client.wait(submit(client, pdf, "slow.pdf"), timeout=60)
    received = Counter(re.findall(r"tessera\.infer\[([0-9a-f-]+)\] received", running.gpu_logs()))
    assert any(count > 1 for count in received.values()), f"no redelivery happened: {received}"
    check_every_page(client, env, db, done_log, job, poppler_texts(pdf, DPI))
    assert client.http.get(f"/v1/jobs/{job['id']}/pages/1").json()["attempt"] == 1
