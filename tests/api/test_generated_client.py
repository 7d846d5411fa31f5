"""A client generated from the running server's /openapi.json, as a user generates theirs
(openapi-python-client, pinned in scripts/codegen-requirements.txt, in its own virtualenv),
submits a document, polls it and reads a page. The upload only works if the schema describes
the file the way generators read one (`format: binary`): before, the generated client sent it
as a text field and the server answered 422."""

from __future__ import annotations

import importlib
import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pdf2image import convert_from_bytes

from tests.api.helpers import pdf
from workers.engines.digest import expected_text

pytestmark = pytest.mark.slow
CODEGEN = Path(__file__).resolve().parents[2] / ".venv" / "codegen" / "bin"


def generate(url: str, folder: Path, package: str) -> None:
    """`openapi-python-client generate --url <server>/openapi.json`, the package alone."""
    env = {**os.environ, "PATH": f"{CODEGEN}{os.pathsep}{os.environ['PATH']}"}  # its ruff post-hooks
    proc = subprocess.run([str(CODEGEN / "openapi-python-client"), "generate", "--url", f"{url}/openapi.json",
                           "--output-path", str(folder / package), "--meta", "none"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Warning" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_a_generated_client_submits_polls_and_reads_a_page(stack, tmp_path: Path) -> None:  # noqa: ANN001
    key = stack.new_client().http.headers["Authorization"].split(" ", 1)[1]
    generate(stack.server.url, tmp_path, "tessera_generated")
    sys.path.insert(0, str(tmp_path))
    try:
        api = importlib.import_module("tessera_generated")
        submit = importlib.import_module("tessera_generated.api.jobs.submit_job_v1_jobs_post")
        get_job = importlib.import_module("tessera_generated.api.jobs.get_job_v1_jobs_job_id_get")
        get_page = importlib.import_module("tessera_generated.api.pages.get_page_v1_jobs_job_id_pages_page_no_get")
        models = importlib.import_module("tessera_generated.models")
        types = importlib.import_module("tessera_generated.types")
    finally:
        sys.path.remove(str(tmp_path))
    client = api.AuthenticatedClient(base_url=stack.server.url, token=key)
    document = pdf(2, "generated")
    body = models.SubmitJobV1JobsPostFilesJobUpload(
        file=types.File(payload=io.BytesIO(document), file_name="generated.pdf", mime_type="application/pdf"),
        options='{"pages": "2"}')
    submitted = submit.sync_detailed(client=client, body=body)
    assert submitted.status_code == 202, submitted.content
    job = submitted.parsed
    assert job.filename == "generated.pdf" and job.options.to_dict()["pages"] == "2"
    deadline = time.monotonic() + 60
    while job.status not in ("succeeded", "partially_succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, f"job still {job.status}"
        time.sleep(0.2)
        job = get_job.sync(client=client, job_id=job.id)
    assert job.status == "succeeded" and job.progress.pages_done == 1
    page = get_page.sync(client=client, job_id=job.id, page_no=2)
    [rendered] = convert_from_bytes(document, dpi=200, first_page=2, last_page=2)  # the service's default dpi
    assert page.status == "done" and page.page == 2 and page.text == expected_text(rendered)
