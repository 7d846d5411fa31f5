"""GET /v1/jobs/{id}/events: Server-Sent Events read over real HTTP until the server ends them."""

from __future__ import annotations

import json

import pytest

from tests.api.helpers import pdf, read_events

pytestmark = pytest.mark.slow
ORDER = ["queued", "splitting", "processing", "assembling", "succeeded"]


def test_events_follow_a_job_to_its_end(stack) -> None:  # noqa: ANN001
    client = stack.new_client()
    job_id = client.submit(pdf(3), "three.pdf").json()["id"]
    status, events = read_events(client.http, f"/v1/jobs/{job_id}/events")
    assert status == 200
    pages = [event for event in events if event.kind == "page"]
    statuses = [event for event in events if event.kind == "status"]
    assert sorted(event.data["page"] for event in pages) == [1, 2, 3]
    assert all(event.data["status"] == "done" and event.id == f"page:{event.data['page']}" for event in pages)
    assert events[-1].kind == "status" and events[-1].data["status"] == "succeeded"
    assert events[-1].id == "status:succeeded" and events[-1].data["progress"]["pages_done"] == 3
    seen = [event.data["status"] for event in statuses]
    assert seen == sorted(set(seen), key=ORDER.index), seen  # each status once, in lifecycle order
    assert len(seen) >= 2  # the stream opened before the job ended, so it saw it change


def test_events_of_a_finished_job_replay_and_resume(stack) -> None:  # noqa: ANN001
    client = stack.new_client()
    job_id = client.wait(client.submit(pdf(2), "two.pdf").json()["id"])["id"]
    _, events = read_events(client.http, f"/v1/jobs/{job_id}/events")
    assert [(event.kind, event.id) for event in events] in (
        [("page", "page:1"), ("page", "page:2"), ("status", "status:succeeded")],
        [("page", "page:2"), ("page", "page:1"), ("status", "status:succeeded")])
    status, after_end = read_events(client.http, f"/v1/jobs/{job_id}/events",
                                    headers={"Last-Event-ID": "status:succeeded"})
    assert status == 204 and after_end == []  # an EventSource stops reconnecting on 204
    resume = {"Last-Event-ID": events[0].id}
    _, resumed = read_events(client.http, f"/v1/jobs/{job_id}/events", headers=resume)
    assert resumed[-1].id == "status:succeeded" and events[0].id not in [event.id for event in resumed]
    odd = {"Last-Event-ID": "page:x\u00e9".encode("latin-1")}  # not an id we sent: ignored
    _, garbage = read_events(client.http, f"/v1/jobs/{job_id}/events", headers=odd)
    assert [event.kind for event in garbage].count("page") == 2


def test_events_of_a_cancelled_job_end_with_its_status(embedded) -> None:  # noqa: ANN001
    client = embedded.new_client()
    job_id = client.submit(pdf(1), "a.pdf").json()["id"]
    client.http.post(f"/v1/jobs/{job_id}/cancel")
    _, events = read_events(client.http, f"/v1/jobs/{job_id}/events")
    assert [(event.kind, event.data["status"]) for event in events] == [("status", "cancelled")]


def test_a_job_deleted_while_followed_ends_the_stream_with_an_error_event(stack) -> None:  # noqa: ANN001
    client = stack.new_client()
    job_id = client.submit(pdf(6), "six.pdf").json()["id"]
    with client.http.stream("GET", f"/v1/jobs/{job_id}/events") as response:
        lines = response.iter_lines()
        for line in lines:  # read up to the first page event, then delete the job under the stream
            if line == "event: page":
                assert client.http.delete(f"/v1/jobs/{job_id}").status_code == 204
                break
        rest = [line for line in lines if line.startswith(("event:", "data:"))]
    assert rest[-2] == "event: error", rest
    assert json.loads(rest[-1].removeprefix("data: "))["error"]["code"] == "not_found"
