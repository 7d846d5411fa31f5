"""`tessera submit` end to end: the real CLI in a subprocess against the suite's real stack
(`tessera serve` + a digest worker on PostgreSQL, Redis and S3), on real folders.

Each test has a tenant of its own, so counting the tenant's jobs on the server counts exactly
the jobs the client made."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tessera.bulk.run import idempotency_key
from tests.api.conftest import Api
from tests.api.helpers import pdf, wait_for
from tests.utils.front import Front
from tests.utils.tessera_procs import ApiClient, tessera_cmd

pytestmark = pytest.mark.slow
MANIFEST = ".tessera-manifest.sqlite"


def key_of(client: ApiClient) -> str:
    return client.http.headers["authorization"].split()[1]


def submit(api: Api, client: ApiClient, *args: str, server: str | None = None,
           timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**api.env, "TESSERA_API_KEY": key_of(client), "TESSERA_SERVER": server or api.server.url}
    return subprocess.run(tessera_cmd("submit", "--progress", "plain", "--poll-interval", "0.5", *args),
                          env=env, capture_output=True, text=True, timeout=timeout)


def start_submit(api: Api, client: ApiClient, server: str, *args: str) -> subprocess.Popen[str]:
    env = {**api.env, "TESSERA_API_KEY": key_of(client), "TESSERA_SERVER": server}
    return subprocess.Popen(tessera_cmd("submit", "--progress", "plain", "--poll-interval", "0.5", *args),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def server_jobs(client: ApiClient) -> list[dict]:
    jobs, cursor = [], None
    while True:
        params = {"limit": "200", **({"cursor": cursor} if cursor else {})}
        page = client.http.get("/v1/jobs", params=params).json()
        jobs += page["jobs"]
        cursor = page["next_cursor"]
        if cursor is None:
            return jobs


def manifest_rows(out: Path) -> dict[str, dict]:
    """The manifest's rows by key ({} while the run has not created it yet)."""
    try:
        with sqlite3.connect(f"file:{out / MANIFEST}?mode=ro", uri=True) as db:
            db.row_factory = sqlite3.Row
            return {row["key"]: dict(row) for row in db.execute("SELECT * FROM documents")}
    except sqlite3.OperationalError:
        return {}


def one_page_docs(folder: Path, count: int, tag: str) -> list[Path]:
    paths = []
    for index in range(count):
        path = folder / f"box-{index % 3}" / f"scan-{index:03d}.pdf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pdf(1, f"{tag} {index}"))
        paths.append(path)
    return paths


def test_same_names_in_different_folders_both_land_and_a_rerun_resumes(stack: Api, tmp_path: Path) -> None:
    client = stack.new_client()
    tree, out = tmp_path / "archive", tmp_path / "out"
    (tree / "a").mkdir(parents=True)
    (tree / "b" / "deep").mkdir(parents=True)
    (tree / "a" / "report.pdf").write_bytes(pdf(2, "from a"))
    (tree / "b" / "report.pdf").write_bytes(pdf(1, "from b"))
    (tree / "b" / "deep" / "report.pdf.md").write_text("not a document: never sent")
    (tree / "b" / "deep" / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a PDF")

    first = submit(stack, client, str(tree), "--out", str(out))
    assert first.returncode == 1, first.stdout + first.stderr  # one document failed
    a = json.loads((out / "a" / "report.pdf.json").read_text())
    b = json.loads((out / "b" / "report.pdf.json").read_text())
    assert (a["page_count"], b["page_count"]) == (2, 1)  # both landed, neither overwritten
    assert "<!-- page 2 -->" in (out / "a" / "report.pdf.md").read_text()
    assert not (out / "b" / "deep" / "report.pdf.md.json").exists()
    assert "corrupt_document (1): b/deep/broken.pdf" in first.stdout
    assert "3 uploads" in first.stdout and len(server_jobs(client)) == 2  # the broken one: no job
    rows = manifest_rows(out)
    assert {k: r["state"] for k, r in rows.items()} == {
        "a/report.pdf": "done", "b/report.pdf": "done", "b/deep/broken.pdf": "failed"}

    again = submit(stack, client, str(tree), "--out", str(out))
    assert again.returncode == 1 and "0 uploads, 0 polls, 0 downloads" in again.stdout, again.stdout

    (tree / "b" / "deep" / "broken.pdf").write_bytes(pdf(3, "fixed"))  # a changed file is new
    fixed = submit(stack, client, str(tree), "--out", str(out))
    assert fixed.returncode == 0, fixed.stdout
    assert "1 uploads" in fixed.stdout and len(server_jobs(client)) == 3
    assert json.loads((out / "b" / "deep" / "broken.pdf.json").read_text())["page_count"] == 3


def test_a_run_killed_mid_upload_resumes_without_a_second_job(stack: Api, tmp_path: Path) -> None:
    client = stack.new_client()
    tree, out = tmp_path / "scans", tmp_path / "out"
    paths = one_page_docs(tree, 24, "kill")
    # A run that died right after the server accepted a document, before writing it down: the
    # next run must find that job again through the document's idempotency key.
    first_hash = hashlib.sha256(paths[0].read_bytes()).hexdigest()
    early = client.submit(paths[0].read_bytes(), "early.pdf",
                          headers={"Idempotency-Key": idempotency_key(first_hash, {}, 0)}).json()

    def accepted() -> int:
        return sum(r["state"] != "pending" for r in manifest_rows(out).values())

    slow_uploads = Front(stack.server.url, pause=lambda method, _path: 0.3 if method == "POST" else 0)
    with slow_uploads:
        run = start_submit(stack, client, slow_uploads.url, str(tree), "--out", str(out),
                           "--concurrency", "2")
        try:
            wait_for(lambda: accepted() >= 4, 60, "a few uploads")
        finally:
            run.send_signal(signal.SIGKILL)
            run.communicate(timeout=30)
        killed_at = accepted()
        assert killed_at < len(paths), "every upload was done before the kill"

        ctrl_c = start_submit(stack, client, slow_uploads.url, str(tree), "--out", str(out),
                              "--concurrency", "2")
        wait_for(lambda: accepted() > killed_at, 60, "the second run to upload")
        ctrl_c.send_signal(signal.SIGINT)
        output, _ = ctrl_c.communicate(timeout=30)
    assert ctrl_c.returncode == 130 and "interrupted" in output, output
    assert accepted() < len(paths), "every upload was done before Ctrl-C"

    final = submit(stack, client, str(tree), "--out", str(out))
    assert final.returncode == 0, final.stdout + final.stderr
    assert len(server_jobs(client)) == len(paths)  # no document made a second job
    rows = manifest_rows(out)
    assert rows["box-0/scan-000.pdf"]["job_id"] == early["id"]
    assert len({r["job_id"] for r in rows.values()}) == len(paths)
    for path in paths:
        result = out / path.relative_to(tree).with_suffix(".pdf.json")
        assert json.loads(result.read_text())["page_count"] == 1


def test_429_and_503_are_waited_out_with_retry_after(stack: Api, tmp_path: Path) -> None:
    client = stack.new_client()
    tree, out = tmp_path / "in", tmp_path / "out"
    one_page_docs(tree, 3, "busy")

    def busy(method: str, path: str, index: int) -> tuple[int, dict[str, str]] | None:
        if method == "POST" and index < 2:
            return 429, {"Retry-After": "2"}
        if method == "GET" and path.startswith("/v1/jobs?") and index == 0:
            return 503, {"Retry-After": "1"}
        return None

    with Front(stack.server.url, busy) as front:
        done = submit(stack, client, str(tree), "--out", str(out), "--concurrency", "1",
                      server=front.url)
        seen = list(front.seen)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 waits (429/503 Retry-After)" in done.stdout, done.stdout
    posts = [s for s in seen if s.method == "POST"]
    assert [s.answered for s in posts] == [429, 429, 202, 202, 202]
    assert posts[1].at - posts[0].at >= 1.9 and posts[2].at - posts[1].at >= 1.9  # Retry-After: 2
    assert len(server_jobs(client)) == 3


def test_usage_errors_exit_2(stack: Api, tmp_path: Path) -> None:
    client = stack.new_client()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.pdf").write_bytes(pdf(1, "usage"))
    missing = submit(stack, client, str(tmp_path / "nowhere"), "--out", str(tmp_path / "o1"))
    assert missing.returncode == 2 and "no such file or folder" in missing.stdout
    mixed = submit(stack, client, str(tmp_path / "in"), "s3://bucket/x", "--out", str(tmp_path / "o2"))
    assert mixed.returncode == 2
    bad = submit(stack, client, str(tmp_path / "in"), "--options", '{"max_tiles": 99}')
    assert bad.returncode == 2 and "max_tiles" in bad.stderr
    ok = submit(stack, client, str(tmp_path / "in"), "--out", str(tmp_path / "o3"), "--no-watch")
    assert ok.returncode == 0, ok.stdout
    other = submit(stack, client, str(tmp_path / "in"), "--out", str(tmp_path / "o3"),
                   "--options", '{"max_tiles": 4}')
    assert other.returncode == 2 and "use another --out" in other.stdout


def test_progress_reads_many_jobs_in_one_call(stack: Api) -> None:
    client = stack.new_client()
    ids = [client.submit(pdf(1, f"ids {i}"), f"{i}.pdf").json()["id"] for i in range(3)]
    other = stack.new_client().submit(pdf(1, "other"), "x.pdf").json()["id"]
    listed = client.http.get("/v1/jobs", params={"ids": ",".join([*ids, other, "nope"])}).json()
    assert sorted(job["id"] for job in listed["jobs"]) == sorted(ids)  # not another tenant's
    assert all("progress" in job for job in listed["jobs"])
    repeated = client.http.get("/v1/jobs", params=[("ids", ids[0]), ("ids", ids[1])]).json()
    assert len(repeated["jobs"]) == 2
    too_many = client.http.get("/v1/jobs", params={"ids": ",".join(["a" * 32] * 201)})
    assert too_many.status_code == 422 and too_many.json()["error"]["code"] == "invalid_request"
