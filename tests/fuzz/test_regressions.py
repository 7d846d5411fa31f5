"""What the schemathesis run (test_openapi_fuzz.py) found, as plain requests to the real server.

Each test names the failure the fuzzer reported and the fix, so the bug stays fixed even if the
fuzzer's (derandomized) search stops drawing that exact case.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.fuzz.samples import small_pdf, zip_of

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(fuzz_api) -> Iterator[httpx.Client]:  # noqa: ANN001
    """A client of a tenant of its own (the fuzzer's tenant has odd jobs and batches)."""
    api_client = fuzz_api.new_client("fuzz-regressions")
    yield api_client.http
    api_client.http.close()


def _archive(tag: str) -> bytes:
    return zip_of({"a.pdf": small_pdf(1, tag)})


def test_an_empty_idempotency_key_is_refused_never_a_server_error(client: httpx.Client) -> None:
    """Was: POST /v1/batches with `Idempotency-Key:` (empty) stored the key "" without looking it
    up first (an empty key is falsy), so the second such batch hit the (tenant, key) unique
    constraint: 500. POST /v1/jobs likewise stored "" and later treated it as a real key.
    Fix: the header has min_length=1 on both routes (422 `invalid_request`), and _new_batch also
    catches the IntegrityError raised by create_batch's flush, not only by the commit."""
    empty = {"Idempotency-Key": ""}
    for attempt in range(2):
        response = client.post("/v1/batches", files={"file": ("docs.zip", _archive(f"e{attempt}"))},
                               headers=empty)
        assert response.status_code == 422, (attempt, response.status_code, response.text)
        assert response.json()["error"]["code"] == "invalid_request"
        assert "idempotency-key" in response.json()["error"]["message"].lower()
        response = client.post("/v1/jobs", files={"file": ("doc.pdf", small_pdf(1, f"e{attempt}"))},
                               headers=empty)
        assert response.status_code == 422, (attempt, response.status_code, response.text)
        assert response.json()["error"]["code"] == "invalid_request"
    # a real key still works, and replays
    key = {"Idempotency-Key": "fuzz-regression-batch"}
    first = client.post("/v1/batches", files={"file": ("docs.zip", _archive("k1"))}, headers=key)
    again = client.post("/v1/batches", files={"file": ("docs.zip", _archive("k1"))}, headers=key)
    assert (first.status_code, again.status_code) == (202, 200), (first.text, again.text)
    assert again.json()["id"] == first.json()["id"]


def _utc(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    assert moment.utcoffset() == timedelta(0), f"{value!r} is not a UTC time with an offset"
    return moment


def test_batch_timestamps_are_utc_date_times(client: httpx.Client) -> None:
    """Was: BatchOut.created_at / finished_at came from SQLite naive datetimes and were sent
    without an offset ("2026-01-05T09:30:00.123456"), not the `date-time` the schema declares
    (jobs were already sent in UTC). Fix: batch_out passes them through as_utc."""
    refused = {"sources": [{"url": "ftp://example.invalid/a.pdf"}]}  # not http(s): rejected
    response = client.post("/v1/batches", json=refused)
    assert response.status_code == 202, response.text
    batch = response.json()
    assert batch["status"] == "finished"  # its one entry was refused at once: finished_at is set
    assert abs(_utc(batch["created_at"]) - datetime.now(UTC)) < timedelta(minutes=5)
    _utc(batch["finished_at"])
    again = client.get(f"/v1/batches/{batch['id']}").json()
    assert (_utc(again["created_at"]), _utc(again["finished_at"])) == (
        _utc(batch["created_at"]), _utc(batch["finished_at"]))


def test_undocumented_statuses_are_now_in_the_schema(client: httpx.Client) -> None:
    """Was (status_code_conformance): a batch replay answered 200 and a malformed multipart body
    400, neither documented; /readyz's 503 was not documented either. Fix: documented."""
    spec = client.get("/openapi.json").json()["paths"]
    assert {"200", "400"} <= set(spec["/v1/batches"]["post"]["responses"])
    assert "400" in spec["/v1/jobs"]["post"]["responses"]
    assert "503" in spec["/readyz"]["get"]["responses"]
    for path in ("/v1/jobs", "/v1/batches"):
        malformed = client.post(path, content=b"--x\r\n\r\n--x--\r\n",
                                headers={"Content-Type": "multipart/form-data"})  # no boundary
        assert malformed.status_code == 400, (path, malformed.text)
        assert malformed.json()["error"]["code"] == "bad_request"


def test_the_events_schema_describes_one_event(client: httpx.Client) -> None:
    """Was (response_schema_conformance): the text/event-stream schema was `{"type": "string"}`,
    but before Open API 3.2 that schema describes each event (fields `event`, `id`, `data`), so
    every real event violated it. Fix: a oneOf of the page, status and error events, each with
    its JSON `data` schema (PageSummary, JobOut, ErrorBody)."""
    spec = client.get("/openapi.json").json()
    stream = spec["paths"]["/v1/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"]
    variants = stream["text/event-stream"]["schema"]["oneOf"]
    kinds = {v["properties"]["event"]["const"]: v["properties"]["data"]["contentSchema"]["$ref"]
             for v in variants}
    assert kinds == {"page": "#/components/schemas/PageSummary",
                     "status": "#/components/schemas/JobOut",
                     "error": "#/components/schemas/ErrorBody"}
    for ref in kinds.values():
        assert ref.rsplit("/", 1)[-1] in spec["components"]["schemas"]
