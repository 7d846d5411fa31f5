"""Fuzz every REST operation with schemathesis, from the live server's own /openapi.json.

Every case (schema examples, the coverage phase's edge cases, then `max_examples` fuzzed cases,
valid and invalid, per operation) is sent with a valid API key to a real `tessera serve`, and
each response must be:

- no 5xx (`not_a_server_error`),
- a status code the operation documents, with a documented content type,
- a body (and, for the events stream, every event) that matches the documented schema.

Path parameters are random strings most of the time and, as often as the fuzzer likes, the id
of a real finished job or batch (see conftest.py), so the routes past the 404 are reached too;
DELETE gets its own jobs so it cannot take the others away. Generation is derandomized: a CI
failure reproduces locally. TESSERA_FUZZ_MAX_EXAMPLES=500 runs a deeper search.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.slow

MAX_EXAMPLES = int(os.environ.get("TESSERA_FUZZ_MAX_EXAMPLES", "40"))
REQUEST_TIMEOUT_S = 30.0
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]
EXPECTED_OPERATIONS = 21  # the v1 contract, /healthz, /readyz, /metrics and the dashboard

settings.register_profile(
    "tessera-fuzz",
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases on every run: a failure in CI reproduces locally
    database=None,  # nothing written under .hypothesis/
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                           HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
FUZZ_SETTINGS = settings.get_profile("tessera-fuzz")

# operation label -> response status -> count, for the sanity test at the end of the module
RESPONSES: dict[str, Counter[int]] = defaultdict(Counter)


@pytest.fixture(scope="module")
def api_schema(fuzz_api):  # noqa: ANN001, ANN201
    schema = schemathesis.openapi.from_url(f"{fuzz_api.url}/openapi.json", timeout=10)

    def real_ids(operation) -> dict[str, list[str]]:  # noqa: ANN001
        if "{job_id}" in operation.path:
            delete = operation.method.upper() == "DELETE"
            ids = {"job_id": fuzz_api.deletable_job_ids if delete else fuzz_api.job_ids}
            if "{page_no}" in operation.path:
                ids["page_no"] = [1, 2, 3]
            return ids
        if "{batch_id}" in operation.path:
            return {"batch_id": fuzz_api.batch_ids}
        return {}

    @schema.hook("flatmap_path_parameters")
    def _real_path_ids(context, path_parameters):  # noqa: ANN001, ANN202
        return _sometimes_real(path_parameters, real_ids(context.operation))

    @schema.hook("flatmap_query")
    def _real_batch_filter(context, query):  # noqa: ANN001, ANN202
        if context.operation.method.upper() == "GET" and context.operation.path == "/v1/jobs":
            return _sometimes_real(query, {"batch_id": fuzz_api.batch_ids})
        return st.just(query)

    @schema.hook("flatmap_case")
    def _real_files(context, case):  # noqa: ANN001, ANN202
        samples = {"/v1/jobs": fuzz_api.documents, "/v1/batches": fuzz_api.archives,
                   "/v1/plan": fuzz_api.documents + fuzz_api.archives}.get(case.path)
        if (case.method.upper() != "POST" or not samples or not isinstance(case.body, dict)
                or not (case.media_type or "").startswith("multipart/form-data")):
            return st.just(case)
        real = st.sampled_from(samples).map(lambda data: _with_file(case, data))
        return st.one_of(st.just(case), real)

    return schema


def _with_file(case, data: bytes):  # noqa: ANN001, ANN202
    real = case.derive(keep_auth=True)
    real.body = {**case.body, "file": data}
    return real


_AS_GENERATED = object()


def _sometimes_real(values, ids: dict[str, list]) -> st.SearchStrategy:  # noqa: ANN001
    """`values` with each parameter named in `ids` either as generated (or absent) or set to one
    of its real values."""
    if not isinstance(values, dict):
        return st.just(values)
    choices = {name: st.one_of(st.just(_AS_GENERATED), st.sampled_from(real))
               for name, real in ids.items() if real}
    return st.fixed_dictionaries(choices).map(
        lambda chosen: {**values, **{k: v for k, v in chosen.items() if v is not _AS_GENERATED}})


@pytest.fixture(scope="module")
def http_session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@FUZZ_SETTINGS
def test_no_server_errors_and_responses_match_the_schema(case, fuzz_api, http_session) -> None:
    response = case.call_and_validate(session=http_session, headers=fuzz_api.headers,
                                      checks=CHECKS, timeout=REQUEST_TIMEOUT_S)
    RESPONSES[case.operation.label][response.status_code] += 1


def test_the_fuzzer_reached_every_operation_past_authentication(record_property) -> None:
    """Guards the test above against passing vacuously (a schema with no operations, a key the
    server refuses, every id unknown)."""
    if not RESPONSES:
        pytest.skip("the fuzz test did not run (deselected?)")
    # shown after the run by tests/fuzz/conftest.py (and kept in a JUnit report)
    record_property("schemathesis_responses", {label: dict(s) for label, s in RESPONSES.items()})
    assert len(RESPONSES) == EXPECTED_OPERATIONS, sorted(RESPONSES)
    for label, statuses in RESPONSES.items():
        assert sum(statuses.values()) >= 3, (label, statuses)
        assert set(statuses) != {401}, f"{label}: every case was refused as unauthenticated"
    reached = {label for label, statuses in RESPONSES.items()
               if any(200 <= status < 300 for status in statuses)}
    for label in ("GET /v1/jobs/{job_id}", "GET /v1/jobs/{job_id}/pages",
                  "GET /v1/jobs/{job_id}/pages/{page_no}", "GET /v1/jobs/{job_id}/result",
                  "GET /v1/jobs/{job_id}/events", "DELETE /v1/jobs/{job_id}",
                  "GET /v1/batches/{batch_id}", "GET /v1/jobs/{job_id}/pages/{page_no}/image",
                  "GET /v1/jobs/{job_id}/pages/{page_no}/tiles", "POST /v1/plan", "GET /v1/queue",
                  "GET /v1/batches"):
        assert label in reached, f"{label} never answered 2xx: {dict(RESPONSES.get(label, {}))}"
