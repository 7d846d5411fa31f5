"""One document through the real stack: `tessera serve` + `tessera worker` processes, rapidocr,
on Postgres + Redis + S3 and on the embedded defaults. Text is checked against what was rendered."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tessera.synthetic import char_error_rate, make_encrypted_pdf, make_pdf, make_truncated_pdf, render_text_page
from tests.utils.tessera_procs import Server, TesseraProcess, create_api_key, run_cli, s3_client, tessera_env

pytestmark = pytest.mark.slow

PAGES = [
    ("en", ["Tessera reads documents page by page.", "The quick brown fox jumps over 12 lazy dogs."]),
    ("zh", ["文档处理服务把每一页转成文字。", "今天天气很好，我们去公园散步。"]),
    ("zh", ["Invoice 2026-118 总计 4250 元", "Thank you 谢谢 for your order"]),
]
MAX_CER = 0.15  # rapidocr on clean 200 dpi pages measures 0.00-0.05; the bound leaves room for noise


def three_page_pdf() -> bytes:
    return make_pdf([render_text_page(lines, size=(1400, 500), lang=lang) for lang, lines in PAGES])


def assert_pages_match(client, job: dict) -> None:  # noqa: ANN001
    assert job["status"] == "succeeded", job
    assert job["progress"] == {"pages_total": 3, "pages_done": 3, "pages_failed": 0}
    for page_no, (_, lines) in enumerate(PAGES, start=1):
        page = client.http.get(f"/v1/jobs/{job['id']}/pages/{page_no}").json()
        assert page["status"] == "done" and page["engine"] == "rapidocr"
        cer = char_error_rate(page["text"], "\n".join(lines))
        assert cer < MAX_CER, f"page {page_no}: CER {cer:.3f}: {page['text']!r}"
    markdown = client.http.get(f"/v1/jobs/{job['id']}/result", params={"format": "markdown"})
    assert markdown.status_code == 200 and markdown.text.count("<!-- page ") == 3
    document = client.http.get(f"/v1/jobs/{job['id']}/result").json()
    assert [p["page"] for p in document["pages"]] == [1, 2, 3]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("embedded")
    env = tessera_env({"TESSERA_HOME": str(home)})
    key = create_api_key(env, "alice")
    server = Server(env, home / "serve.log").start()
    yield server, key
    server.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, stack_env: dict[str, str]):
    logs = tmp_path_factory.mktemp("stack")
    env = tessera_env({**stack_env, "TESSERA_HOME": str(logs / "home")})
    run_cli(env, "migrate")
    keys = {tenant: create_api_key(env, tenant) for tenant in ("alice", "mallory")}
    worker = TesseraProcess(["worker", "--queues", "cpu,gpu"], env, logs / "worker.log").start()
    server = Server(env, logs / "serve.log", worker=False).start()
    yield server, keys, stack_env
    server.stop()
    worker.stop()


def test_three_page_pdf_on_embedded_defaults(embedded) -> None:  # noqa: ANN001
    server, key = embedded
    client = server.client(key)
    response = client.submit(three_page_pdf(), "mixed.pdf")
    assert response.status_code == 202, response.text
    assert_pages_match(client, client.wait(response.json()["id"]))


def test_three_page_pdf_on_postgres_redis_s3(stack) -> None:  # noqa: ANN001
    server, keys, env = stack
    client = server.client(keys["alice"])
    response = client.submit(three_page_pdf(), "mixed.pdf")
    assert response.status_code == 202, response.text
    job = client.wait(response.json()["id"])
    assert_pages_match(client, job)
    s3 = s3_client(env)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=env["TESSERA_S3_BUCKET"])  # shared bucket
    keys_in_s3 = {item["Key"].split("/", 2)[-1] for page in pages for item in page.get("Contents", [])
                  if f"/{job['id']}/" in item["Key"]}
    assert {"input", "pages/00001.png", "results/00003.a1.json", "result.json", "result.md"} <= keys_in_s3


def test_tenants_cannot_see_each_other(stack) -> None:  # noqa: ANN001
    server, keys, _ = stack
    alice, mallory = server.client(keys["alice"]), server.client(keys["mallory"])
    job_id = alice.submit(three_page_pdf(), "a.pdf", options={"pages": "1"}).json()["id"]
    for path in ("", "/pages/1", "/result"):
        response = mallory.http.get(f"/v1/jobs/{job_id}{path}")
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    assert alice.wait(job_id)["progress"]["pages_total"] == 1


def test_requests_without_a_valid_key_are_refused(stack) -> None:  # noqa: ANN001
    server, _, _ = stack
    response = server.client("tsk_not-a-key").http.get("/v1/jobs/whatever")
    assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(("name", "data", "options", "status", "code"), [
    ("empty.pdf", b"", None, 422, "empty_document"),
    ("page.pdf", b"<html><body>not a pdf</body></html>", None, 415, "unsupported_media_type"),
    ("locked.pdf", make_encrypted_pdf(three_page_pdf()), None, 422, "encrypted_pdf"),
    ("cut.pdf", make_truncated_pdf(three_page_pdf(), 0.3), None, 422, "corrupt_document"),
    ("doc.pdf", three_page_pdf(), {"max_tiles": 99}, 422, "invalid_options"),
    ("doc.pdf", three_page_pdf(), {"pages": "2-9"}, 422, "invalid_options"),
    ("doc.pdf", three_page_pdf(), {"colour": "blue"}, 422, "invalid_options"),
])
def test_bad_input_gets_a_stable_error_code(stack, name, data, options, status, code) -> None:  # noqa: ANN001
    server, keys, _ = stack
    response = server.client(keys["alice"]).submit(data, name, options=options)
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code and body["message"]


def test_job_submitted_before_a_restart_completes_after_it(tmp_path: Path) -> None:
    env = tessera_env({"TESSERA_HOME": str(tmp_path / "home")})
    key = create_api_key(env, "alice")
    server = Server(env, tmp_path / "serve-1.log").start()
    job_id = server.client(key).submit(three_page_pdf(), "mixed.pdf").json()["id"]
    server.stop(signal.SIGKILL)  # no goodbye: worker and API die mid-flight
    restarted = Server(env, tmp_path / "serve-2.log", port=server.port).start()
    try:
        assert_pages_match(restarted.client(key), restarted.client(key).wait(job_id))
    finally:
        restarted.stop()


def by_status(url: str) -> dict[str, dict[str, int]]:
    """SELECT count(*) by status of jobs and of pages, straight from the database."""
    import psycopg

    with psycopg.connect(url) as connection:
        return {table: dict(connection.execute(f"SELECT status, count(*) FROM {table} GROUP BY status").fetchall())
                for table in ("jobs", "pages")}


def scraped(text: str) -> dict[str, dict[str, int]]:
    """tessera_jobs / tessera_pages by status, as a Prometheus server would parse the scrape."""
    from prometheus_client.parser import text_string_to_metric_families

    families = {family.name: family for family in text_string_to_metric_families(text)}
    return {table: {sample.labels["status"]: int(sample.value) for sample in families[f"tessera_{table}"].samples}
            for table in ("jobs", "pages")}


def test_metrics_equal_the_database_counts(stack) -> None:  # noqa: ANN001
    server, keys, env = stack
    client = server.client(keys["alice"])
    client.wait(client.submit(three_page_pdf(), "m.pdf", options={"pages": "2"}).json()["id"])
    client.submit(three_page_pdf(), "queued.pdf", options={"pages": "1-3"})  # open work too
    for _ in range(50):  # a scrape between two equal readings: nothing moved meanwhile
        before = by_status(env["TESSERA_DATABASE_URL"])
        text = client.http.get("/metrics").text
        if by_status(env["TESSERA_DATABASE_URL"]) == before:
            break
    assert scraped(text) == before
    assert before["jobs"].get("succeeded", 0) >= 1 and before["pages"].get("done", 0) >= 1
    assert "tessera_oldest_waiting_page_seconds" in text and "process_cpu_seconds_total" in text
