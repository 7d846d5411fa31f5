"""Webhook delivery from the outbox (storage/webhooks.py): signed POSTs, retried with backoff.

Each request carries
  Tessera-Event: job.finished | batch.finished
  Tessera-Delivery: <delivery id, the same on every retry: receivers dedupe on it>
  Tessera-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(tenant secret, f"{t}.{body}")>
A 2xx answer delivers it; anything else (or no answer in `webhook_timeout_s`) is retried after
`webhook_backoff_s * 2**(attempt-1)` (at most `webhook_backoff_max_s`), up to
`webhook_max_attempts`. Redirects are not followed. The target address is checked like a URL
source (no private addresses unless TESSERA_ALLOW_PRIVATE_URLS=true).

Two paths send: the `tessera.webhook` task (queue `webhooks`), sent right after the outbox row
is committed and re-sent by itself with the backoff; and `deliver_due_webhooks()`, which a
sweeper calls so that rows whose message was lost (a restart) are still delivered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import structlog

from storage import webhooks as outbox
from storage.models import utcnow
from tessera.errors import TRANSIENT_ERRORS, InvalidInput
from tessera.netguard import check_url, guarded_client, guarded_send
from workers.celery_app import app
from workers.runtime import Runtime, get_runtime

log = structlog.get_logger(__name__)
WEBHOOK = "tessera.webhook"
QUEUE = "webhooks"
USER_AGENT = "Tessera-Webhooks/1"
PARALLEL = 8


def signature(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(secret: str, header: str, body: bytes, tolerance_s: float = 300,
                     now: float | None = None) -> bool:
    """What a receiver does: recompute the HMAC and refuse stale timestamps (replays)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


@dataclass
class Outcome:
    delivered: bool = False
    retry_in: float | None = None  # seconds; None: nothing more to do (delivered, gave up, not ours)


def deliver(rt: Runtime, delivery_id: str, now: datetime | None = None) -> Outcome:
    """Send one delivery if it is due; record the attempt either way."""
    settings = rt.settings
    now = now or utcnow()
    with rt.sessions.begin() as session:
        row = outbox.claim(session, delivery_id, now, hold_s=settings.webhook_timeout_s + 30)
        if row is None:
            return Outcome()
        secret = outbox.webhook_secret(session, row.tenant_id)
        attempt, url, event, payload = row.attempts, row.url, row.event, row.payload
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    status, error = _post(rt, url, body, {
        "Content-Type": "application/json", "User-Agent": USER_AGENT, "Tessera-Event": event,
        "Tessera-Delivery": delivery_id, "Tessera-Signature": signature(secret, int(time.time()), body)})
    with rt.sessions.begin() as session:
        if error is None:
            outbox.record_success(session, delivery_id, attempt, status)
            log.info("webhook.delivered", delivery=delivery_id, kind=event, attempt=attempt)
            return Outcome(delivered=True)
        delay = min(settings.webhook_backoff_s * 2 ** (attempt - 1), settings.webhook_backoff_max_s)
        retry = attempt < settings.webhook_max_attempts and not error.startswith("refused")
        outbox.record_failure(session, delivery_id, attempt, status, error,
                              utcnow() + timedelta(seconds=delay) if retry else None)
    log.warning("webhook.failed", delivery=delivery_id, attempt=attempt, status=status, error=error,
                retry_in=delay if retry else None)
    return Outcome(retry_in=delay if retry else None)


def _post(rt: Runtime, url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str | None]:
    """(HTTP status, error or None). An error starting with 'refused' is not retried."""

    settings = rt.settings
    try:
        with guarded_client(settings.webhook_timeout_s) as client, guarded_send(
                client, "POST", check_url(url), settings.allow_private_urls,
                content=body, headers=headers) as response:
            status = response.status_code
    except InvalidInput as exc:
        return None, f"{'refused' if exc.code == 'source_not_allowed' else 'unreachable'}: {exc.message}"
    except httpx.HTTPError as exc:
        return None, f"unreachable: {type(exc).__name__}: {exc}"[:500]
    if 200 <= status < 300:
        return status, None
    return status, f"the receiver answered HTTP {status}"


def deliver_due_webhooks(rt: Runtime | None = None, limit: int = 200, now: datetime | None = None) -> int:
    """Send every delivery that is due (new, retry time reached, or held by a sender that died).
    For a sweeper; safe to run anywhere at any time. Returns how many were delivered."""
    rt = rt or get_runtime()
    now = now or utcnow()
    with rt.sessions() as session:
        ids = outbox.due_ids(session, now, limit)
    if not ids:
        return 0
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(ids)), thread_name_prefix="webhook") as pool:
        outcomes = list(pool.map(lambda delivery_id: deliver(rt, delivery_id, now), ids))
    return sum(outcome.delivered for outcome in outcomes)


def send_soon(delivery_ids: list[str]) -> None:
    """Hand new outbox rows to the `webhooks` queue, best effort: a row whose message is lost is
    still sent by `deliver_due_webhooks`. Only where a Celery broker is configured."""
    if not delivery_ids or not app.conf.broker_url:
        return
    for delivery_id in delivery_ids:
        try:
            app.send_task(WEBHOOK, args=[delivery_id], queue=QUEUE, retry=False)
        except Exception as exc:  # noqa: BLE001 (the outbox keeps it)
            log.warning("webhook.enqueue_failed", delivery=delivery_id, error=repr(exc)[:200])


# max_retries caps Celery's own re-sends; the outbox caps attempts (and a sweeper outlives both).
@app.task(name=WEBHOOK, bind=True, max_retries=50, autoretry_for=TRANSIENT_ERRORS,
          retry_backoff=2, retry_backoff_max=60)
def webhook(self, delivery_id: str) -> None:  # noqa: ANN001 (Celery's bound task)
    outcome = deliver(get_runtime(), str(delivery_id))
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
