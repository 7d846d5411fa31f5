"""Webhooks: signed, retried with backoff, and delivered from the outbox after a restart.

The receiver is a real HTTP server on 127.0.0.1; jobs run through real processes, and the
outbox tests drive `deliver_due_webhooks()` in this process on the same PostgreSQL."""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from storage.migrate import upgrade
from storage.models import Job, JobStatus, WebhookDelivery, new_id, utcnow
from storage.tenants import get_or_create_tenant
from storage.webhooks import claim, enqueue_job_finished_webhook, webhook_secret
from tessera.config import Settings
from tests.data.hostile import corpus
from tests.security.http_helpers import LocalHttp, Reply, scripted
from tests.security.stack import BulkStack, wait_batch, wait_job
from workers.runtime import Runtime
from workers.webhooks import deliver, deliver_due_webhooks, signature, verify_signature

PDF = corpus.text_pdf()


@pytest.fixture(scope="module")
def receiver() -> Iterator[LocalHttp]:
    with LocalHttp() as server:
        yield server


def check_signed(request, secret: str) -> dict:  # noqa: ANN001
    assert verify_signature(secret, request.headers["tessera-signature"], request.body)
    payload = json.loads(request.body)
    assert request.headers["tessera-event"] == payload["event"]
    assert request.headers["tessera-delivery"] == payload["id"]
    assert request.headers["content-type"] == "application/json"
    return payload


@pytest.mark.slow
def test_finished_job_sends_a_signed_webhook(bulk: BulkStack, receiver: LocalHttp) -> None:
    client = bulk.client("sec-alice")
    secret = client.get("/v1/webhooks/secret").json()["secret"]
    assert client.get("/v1/webhooks/secret").json()["secret"] == secret  # stable
    assert bulk.client("sec-mallory").get("/v1/webhooks/secret").json()["secret"] != secret
    url = receiver.serve("/hook/signed", scripted())
    job_id = client.post("/v1/jobs", files={"file": ("a.pdf", PDF)},
                         data={"options": json.dumps({"webhook_url": url})}).json()["id"]
    (request,) = receiver.wait_for("/hook/signed")
    payload = check_signed(request, secret)
    assert payload["event"] == "job.finished"
    assert payload["data"]["job"]["id"] == job_id and payload["data"]["job"]["status"] == "succeeded"
    assert not verify_signature(secret, request.headers["tessera-signature"], request.body + b" ")
    assert not verify_signature("whsec_other", request.headers["tessera-signature"], request.body)


@pytest.mark.slow
def test_a_failing_receiver_gets_retries(bulk: BulkStack, receiver: LocalHttp) -> None:
    client = bulk.client("sec-alice")
    secret = client.get("/v1/webhooks/secret").json()["secret"]
    url = receiver.serve("/hook/flaky", scripted(500, 500))
    client.post("/v1/jobs", files={"file": ("a.pdf", PDF)}, data={"options": json.dumps({"webhook_url": url})})
    requests = receiver.wait_for("/hook/flaky", count=3)
    ids = {check_signed(request, secret)["id"] for request in requests}
    assert len(ids) == 1  # one delivery, tried three times: receivers dedupe on Tessera-Delivery
    # Once the outbox records the delivery no sender may claim it again: the count is final.
    row = wait_delivered(bulk.env["TESSERA_DATABASE_URL"], ids.pop())
    assert row == (3, 200) and len(receiver.received("/hook/flaky")) == 3


def wait_delivered(url: str, delivery_id: str, timeout: float = 30.0) -> tuple[int, int]:
    """(attempts, last HTTP status) of an outbox row once it records its delivery."""
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as connection:
        while True:
            attempts, status, delivered = connection.execute(
                "SELECT attempts, last_status, delivered_at FROM webhook_deliveries WHERE id = %s",
                (delivery_id,)).fetchone()
            if delivered is not None:
                return attempts, status
            assert time.monotonic() < deadline, f"delivery {delivery_id} not recorded after {timeout} s"
            time.sleep(0.05)


@pytest.mark.slow
def test_batch_webhooks(bulk: BulkStack, receiver: LocalHttp) -> None:
    client = bulk.client("sec-alice")
    batch_url, own_url = receiver.serve("/hook/batch", scripted()), receiver.serve("/hook/own", scripted())
    archive = corpus.zip_of([("a.pdf", PDF), ("b.pdf", PDF), ("c.txt", b"text")])
    batch = client.post("/v1/batches", files={"file": ("x.zip", archive)},
                        data={"webhook_url": batch_url}).json()
    job_id = client.post("/v1/jobs", files={"file": ("own.pdf", PDF)},
                         data={"options": json.dumps({"webhook_url": own_url})}).json()["id"]
    wait_batch(client, batch["id"])
    events = [json.loads(r.body) for r in receiver.wait_for("/hook/batch", count=3)]
    assert sorted(e["event"] for e in events) == ["batch.finished", "job.finished", "job.finished"]
    finished = next(e for e in events if e["event"] == "batch.finished")
    assert finished["data"]["batch"]["id"] == batch["id"]
    assert finished["data"]["batch"]["totals"]["succeeded"] == 2
    assert finished["data"]["batch"]["totals"]["rejected"] == 1
    assert json.loads(receiver.wait_for("/hook/own")[0].body)["data"]["job"]["id"] == job_id
    wait_job(client, job_id)


# ---------------------------------------------------------------- the outbox, in this process


@pytest.fixture
def runtime(stack_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.setenv(name, stack_env[name])
    settings = Settings(home=tmp_path, database_url=stack_env["TESSERA_DATABASE_URL"],
                        allow_private_urls=True, webhook_backoff_s=0.2, webhook_max_attempts=3,
                        webhook_timeout_s=3)
    upgrade(settings.sqlalchemy_url)
    return Runtime(settings)


def finished_job(rt: Runtime, url: str | None, status: str = JobStatus.SUCCEEDED) -> Job:
    with rt.sessions.begin() as session:
        tenant = get_or_create_tenant(session, "sec-outbox")
        job = Job(id=new_id(), tenant_id=tenant.id, status=status, media_type="application/pdf",
                  input_sha256="0" * 64, input_size=1, page_count=1, finished_at=utcnow(),
                  options={"webhook_url": url} if url else {})
        session.add(job)
    return job


def outbox_row(rt: Runtime, delivery_id: str) -> WebhookDelivery:
    with rt.sessions() as session:
        return session.get(WebhookDelivery, delivery_id)


def test_outbox_row_is_delivered_after_a_restart(runtime: Runtime, receiver: LocalHttp) -> None:
    url = receiver.serve("/hook/restart", scripted())
    job = finished_job(runtime, url)
    with runtime.sessions.begin() as session:  # the job's final transaction; then the process dies
        (delivery_id,) = enqueue_job_finished_webhook(session, job)
        assert enqueue_job_finished_webhook(session, job) == []  # once per job
    restarted = Runtime(runtime.settings)
    assert deliver_due_webhooks(restarted) >= 1
    (request,) = receiver.wait_for("/hook/restart", timeout=5)
    with restarted.sessions.begin() as session:
        secret = webhook_secret(session, job.tenant_id)
    assert check_signed(request, secret)["data"]["job"]["id"] == job.id
    row = outbox_row(restarted, delivery_id)
    assert row.delivered_at is not None and row.attempts == 1 and row.next_try_at is None
    assert deliver(restarted, delivery_id).delivered is False  # delivered once, never again


def test_a_sender_that_died_mid_attempt_is_retried(runtime: Runtime, receiver: LocalHttp) -> None:
    url = receiver.serve("/hook/died", scripted())
    job = finished_job(runtime, url)
    with runtime.sessions.begin() as session:
        (delivery_id,) = enqueue_job_finished_webhook(session, job)
    with runtime.sessions.begin() as session:  # claimed by a sender that then died
        assert claim(session, delivery_id, utcnow(), hold_s=60) is not None
    assert deliver(runtime, delivery_id).delivered is False  # still held by the dead sender
    assert deliver_due_webhooks(runtime, now=utcnow() + timedelta(seconds=61)) >= 1
    assert receiver.wait_for("/hook/died", timeout=5)
    assert outbox_row(runtime, delivery_id).attempts == 2


def test_backoff_then_give_up(runtime: Runtime, receiver: LocalHttp) -> None:
    rt = Runtime(runtime.settings.model_copy(update={"webhook_backoff_s": 10.0}))
    url = receiver.serve("/hook/down", Reply(503))
    job = finished_job(rt, url, JobStatus.FAILED)
    with rt.sessions.begin() as session:
        (delivery_id,) = enqueue_job_finished_webhook(session, job)
    later = lambda seconds: utcnow() + timedelta(seconds=seconds)  # noqa: E731
    first = deliver(rt, delivery_id)
    assert first.retry_in == pytest.approx(10) and not first.delivered
    assert deliver(rt, delivery_id).retry_in is None  # not due yet: nothing is sent
    assert deliver(rt, delivery_id, now=later(11)).retry_in == pytest.approx(20)  # doubled
    assert deliver(rt, delivery_id, now=later(32)).retry_in is None  # the third attempt was the last
    row = outbox_row(rt, delivery_id)
    assert row.attempts == 3 and row.failed_at is not None and row.next_try_at is None
    assert row.last_status == 503 and len(receiver.received("/hook/down")) == 3
    assert deliver_due_webhooks(rt, now=later(3600)) == 0 and len(receiver.received("/hook/down")) == 3


def test_private_targets_are_refused_without_retry(runtime: Runtime, receiver: LocalHttp) -> None:
    strict = Runtime(runtime.settings.model_copy(update={"allow_private_urls": False}))
    url = receiver.serve("/hook/private", scripted())
    job = finished_job(strict, url)
    with strict.sessions.begin() as session:
        (delivery_id,) = enqueue_job_finished_webhook(session, job)
    assert deliver(strict, delivery_id).retry_in is None
    row = outbox_row(strict, delivery_id)
    assert row.failed_at is not None and row.last_error.startswith("refused")
    assert receiver.received("/hook/private") == []


def test_no_event_without_url_or_before_the_end(runtime: Runtime) -> None:
    with runtime.sessions.begin() as session:
        assert enqueue_job_finished_webhook(session, finished_job(runtime, None)) == []
        assert enqueue_job_finished_webhook(
            session, finished_job(runtime, "http://127.0.0.1:9/x", JobStatus.PROCESSING)) == []


def test_signature_scheme() -> None:
    body = b'{"id":"d1"}'
    header = signature("whsec_k", 1_700_000_000, body)
    assert header == "t=1700000000,v1=" + hmac.new(b"whsec_k", b"1700000000." + body, "sha256").hexdigest()
    assert verify_signature("whsec_k", header, body, now=1_700_000_100)
    assert not verify_signature("whsec_k", header, body, now=1_700_000_000 + 301)  # replayed later
    assert not verify_signature("whsec_k", "v1=abc", body)
