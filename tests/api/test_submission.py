"""Idempotency-Key: the same request returns the first job; a different one is refused."""

from __future__ import annotations

import pytest

from tests.api.helpers import pdf

pytestmark = pytest.mark.slow


def test_same_key_same_request_returns_the_first_job(any_api) -> None:  # noqa: ANN001
    client = any_api.new_client()
    document, key = pdf(1, "idem"), {"Idempotency-Key": "order-1"}
    first = client.submit(document, "a.pdf", options={"pages": "1"}, headers=key)
    assert first.status_code == 202, first.text
    # same bytes, same options (written differently, other file name): the same request
    again = client.submit(document, "renamed.pdf", options={"max_tiles": 12, "pages": "1"}, headers=key)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert "_request_sha256" not in again.json()["options"]
    assert [job["id"] for job in client.http.get("/v1/jobs").json()["jobs"]] == [first.json()["id"]]


@pytest.mark.parametrize(("data", "options"), [
    (pdf(1, "other"), {"pages": "1"}),  # another file
    (pdf(1, "idem"), {"pages": "1", "max_tiles": 6}),  # other options
    (pdf(1, "idem"), None),  # no page range: the same pages here, but not the same request
])
def test_same_key_different_request_is_a_conflict(embedded, data: bytes, options: dict | None) -> None:  # noqa: ANN001
    client = embedded.new_client()
    key = {"Idempotency-Key": "order-2"}
    assert client.submit(pdf(1, "idem"), "a.pdf", options={"pages": "1"}, headers=key).status_code == 202
    response = client.submit(data, "a.pdf", options=options, headers=key)
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "idempotency_conflict"
    assert len(client.http.get("/v1/jobs").json()["jobs"]) == 1


def test_keys_are_per_tenant_and_bounded(embedded) -> None:  # noqa: ANN001
    alice, bob = embedded.new_client(), embedded.new_client()
    key = {"Idempotency-Key": "shared"}
    first = alice.submit(pdf(1), "a.pdf", headers=key).json()["id"]
    other = bob.submit(pdf(1), "a.pdf", headers=key)
    assert other.status_code == 202 and other.json()["id"] != first
    too_long = alice.submit(pdf(1), "a.pdf", headers={"Idempotency-Key": "k" * 300})
    assert too_long.status_code == 422 and too_long.json()["error"]["code"] == "invalid_request"


@pytest.mark.parametrize("options", [
    "[" * 100_000 + "]" * 100_000,  # nesting deeper than the JSON parser recurses
    '{"max_tiles": ' + "9" * 5000 + "}",  # more digits than Python converts to an int
    '{"max_tiles": 1e400}', "null", '"text"', '{"pages": "1\\u0000"}', "{", "",
])
def test_odd_options_are_refused_never_a_server_error(embedded, options: str) -> None:  # noqa: ANN001
    client = embedded.new_client()
    response = client.http.post("/v1/jobs", files={"file": ("a.pdf", pdf(1))}, data={"options": options})
    if options == "":
        assert response.status_code == 202  # empty means the defaults
        return
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_options"


def test_a_json_source_on_a_private_address_is_refused_unfetched(stack) -> None:  # noqa: ANN001
    """The suite's server keeps the default: no private addresses (TESSERA_ALLOW_PRIVATE_URLS)."""
    from tests.security.http_helpers import LocalHttp, Reply

    with LocalHttp() as web:
        url = web.serve("/doc.pdf", Reply(body=pdf(1, "private")))
        response = stack.new_client().http.post("/v1/jobs", json={"source": {"url": url}})
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "source_not_allowed"
        assert web.received("/doc.pdf") == []
