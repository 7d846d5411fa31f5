"""The contract around the routes: tenant isolation, OpenAPI, the dashboard, odd input."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.helpers import pdf

pytestmark = pytest.mark.slow
# The dashboard's own scripts (markdown-it is vendored: its output is never used as HTML, markdown.js)
DASHBOARD_MODULES = sorted(path for path in (Path(__file__).resolve().parents[2] / "api" / "static").glob("*.js")
                           if not path.name.startswith("markdown-it"))
JOB_ROUTES = [("GET", ""), ("GET", "/pages"), ("GET", "/pages/1"), ("GET", "/result"),
              ("GET", "/result?format=csv"), ("GET", "/events"), ("POST", "/cancel"), ("DELETE", ""),
              ("GET", "/pages/1/image"), ("GET", "/pages/1/tiles")]


def test_another_tenants_job_is_not_found_on_every_route(stack) -> None:  # noqa: ANN001
    alice, mallory = stack.new_client(), stack.new_client()
    job_id = alice.wait(alice.submit(pdf(1), "secret.pdf").json()["id"])["id"]
    for method, path in JOB_ROUTES:
        response = mallory.http.request(method, f"/v1/jobs/{job_id}{path}")
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "not_found"
    listed = mallory.http.get("/v1/jobs", params={"status": "succeeded"}).json()
    assert job_id not in [job["id"] for job in listed["jobs"]]
    assert alice.job(job_id)["status"] == "succeeded"  # mallory's cancel and delete did nothing
    assert alice.http.get(f"/v1/jobs/{job_id}/result").status_code == 200


def test_every_route_needs_a_key(embedded) -> None:  # noqa: ANN001
    anonymous = embedded.server.client("tsk_not-a-key")
    tenant_wide = [("GET", "/v1/jobs"), ("GET", "/v1/batches"), ("GET", "/v1/queue"), ("POST", "/v1/plan")]
    for method, path in [*tenant_wide, *[(m, f"/v1/jobs/{'0' * 32}{p}") for m, p in JOB_ROUTES]]:
        response = anonymous.http.request(method, path)
        assert response.status_code == 401, (method, path)
        assert response.json()["error"]["code"] == "unauthorized"


ODD_IDS = ["%C3%A9t%C3%A9", "%00", "a%00b", "%F0%9F%92%A9" * 10, "x" * 5000, "..%2F..%2Fetc",
           "0" * 32 + "%0A", "%20", "'%20or%201=1--"]


@pytest.mark.parametrize("job_id", ODD_IDS)
def test_odd_ids_are_not_found_never_a_server_error(embedded, job_id: str) -> None:  # noqa: ANN001
    client = embedded.new_client()
    for method, path in JOB_ROUTES:
        response = client.http.request(method, f"/v1/jobs/{job_id}{path}")
        assert response.status_code in (404, 422), (method, path, response.status_code, response.text)
        assert response.json()["error"]["code"] in ("not_found", "invalid_request")


@pytest.mark.parametrize(("path", "params", "headers"), [
    ("/v1/jobs", {"status": "\u00e9\u00e9\u00e9" * 100}, {}),
    ("/v1/jobs", {"status": ",,,"}, {}),
    ("/v1/jobs", {"batch_id": "b" * 1000}, {}),
    ("/v1/jobs", {"batch_id": "\u00e9"}, {}),
    ("/v1/jobs", {"limit": "9" * 400}, {}),
    ("/v1/jobs", {"cursor": "\u00e9" * 10000}, {}),
    ("{job}/pages", {"limit": "-" + "9" * 400, "cursor": "%%"}, {}),
    ("{job}/pages/0", {}, {}),
    ("{job}/pages/-1", {}, {}),
    ("{job}/pages/" + "9" * 40, {}, {}),
    ("{job}/pages/1.5", {}, {}),
    ("{job}/result", {"format": "\u00e9"}, {}),
    ("{job}/events", {}, {"Last-Event-ID": "page:" + "9" * 400}),
    ("{job}/events", {}, {"Last-Event-ID": "status:\u00e9".encode("latin-1")}),
])
def test_odd_parameters_never_cause_a_server_error(embedded, path, params, headers) -> None:  # noqa: ANN001
    client = embedded.new_client()
    job_id = client.submit(pdf(1), "a.pdf").json()["id"]
    client.http.post(f"/v1/jobs/{job_id}/cancel")  # final, so /events ends at once
    url = path.replace("{job}", f"/v1/jobs/{job_id}")
    response = client.http.get(url, params=params, headers=headers)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["error"]["code"] in ("not_found", "invalid_request", "invalid_cursor")


def test_openapi_describes_every_route(embedded) -> None:  # noqa: ANN001
    spec = embedded.server.client("unused").http.get("/openapi.json").json()
    expected = {
        "/v1/jobs": {"get", "post"}, "/v1/jobs/{job_id}": {"get", "delete"},
        "/v1/jobs/{job_id}/cancel": {"post"}, "/v1/jobs/{job_id}/pages": {"get"},
        "/v1/jobs/{job_id}/pages/{page_no}": {"get"}, "/v1/jobs/{job_id}/result": {"get"},
        "/v1/jobs/{job_id}/events": {"get"}, "/": {"get"}, "/healthz": {"get"}, "/readyz": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(spec["paths"].get(path, {})), path
    error_ref = "#/components/schemas/ErrorBody"
    for path, operations in spec["paths"].items():
        if not path.startswith("/v1/jobs"):
            continue
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            assert operation.get("summary"), where
            assert operation["responses"]["401"]["content"]["application/json"]["schema"]["$ref"] == error_ref
            assert operation["responses"]["422"]["content"]["application/json"]["schema"]["$ref"] == error_ref
            assert "429" in operation["responses"], where
            if "{job_id}" in path:
                assert "404" in operation["responses"], where
            success = [code for code in operation["responses"] if code.startswith("2")]
            assert success, where
    schemas = spec["components"]["schemas"]
    for name in ("JobOut", "PageOut", "PageSummary", "ErrorBody"):
        assert schemas[name].get("examples"), name
    # uploads as client generators read them (tests/api/test_generated_client.py uses one)
    bodies = spec["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]
    form = bodies["multipart/form-data"]["schema"]
    assert form["required"] == ["file"] and form["properties"]["file"]["format"] == "binary"
    options = form["properties"]["options"]
    assert options["contentSchema"]["title"] == "JobOptions" and options["contentSchema"]["examples"]
    source = bodies["application/json"]["schema"]  # {"source": {"url"} | {"s3_uri"}, "options"}
    assert source["required"] == ["source"] and len(source["properties"]["source"]["anyOf"]) == 2
    archive = spec["paths"]["/v1/batches"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert archive["schema"]["properties"]["file"]["format"] == "binary"
    assert spec["paths"]["/v1/jobs"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == \
        {"$ref": "#/components/schemas/JobList"}


def test_dashboard_is_served_without_a_key(embedded) -> None:  # noqa: ANN001
    http = embedded.server.client("unused").http
    page = http.get("/", headers={"Authorization": ""})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/dashboard.js"' in page.text and 'id="jobs"' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "img-src 'self' data: blob:;" in policy
    scripts = {path.name: http.get(f"/static/{path.name}") for path in DASHBOARD_MODULES}
    for name, script in scripts.items():
        assert script.status_code == 200 and "javascript" in script.headers["content-type"], name
        for sink in (".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in script.text, (name, sink)  # document text reaches the DOM as text only
    assert "localStorage" in scripts["api.js"].text and "/v1/jobs" in scripts["jobs.js"].text
    assert http.get("/static/dashboard.css").status_code == 200
    assert http.get("/static/../storage/models.py").status_code == 404
