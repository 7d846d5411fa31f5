"""The routes behind the dashboard, through real `tessera serve` + worker processes on PostgreSQL,
Redis and S3: the cost preview against what the pipeline then did, page images and tile grids,
the queue panel's counts and workers, the batch listing."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import text

from storage.db import make_engine
from tests.api.helpers import pdf
from tests.utils.tessera_procs import ApiClient

pytestmark = pytest.mark.slow
DATA = Path(__file__).resolve().parents[1] / "data"


def plan(client: ApiClient, data: bytes, name: str, options: dict | None = None) -> dict:
    form = {"options": json.dumps(options)} if options is not None else None
    response = client.http.post("/v1/plan", files={"file": (name, data)}, data=form)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(("name", "data", "options"), [
    ("two-of-three.pdf", pdf(3, "plan"), {"pages": "1,3", "dpi": 150, "max_tiles": 6}),
    ("rotate_90_180_270.pdf", (DATA / "real-world" / "rotate_90_180_270.pdf").read_bytes(), None),
    ("exif_orientation6.jpg", (DATA / "real-world" / "exif_orientation6.jpg").read_bytes(), {"max_tiles": 40}),
    ("tiff_frame2_orientation6.tif", (DATA / "real_world_more" / "tiff_frame2_orientation6.tif").read_bytes(), None),
], ids=lambda value: value if isinstance(value, str) else "")
def test_the_preview_is_what_the_pipeline_then_does(stack, name: str, data: bytes, options: dict | None) -> None:  # noqa: ANN001
    client = stack.new_client()
    planned = plan(client, data, name, options)
    assert planned["kind"] == "document" and planned["submit_to"] == "/v1/jobs"
    assert client.http.get("/v1/jobs").json()["jobs"] == []  # planning made no job
    [document] = planned["documents"]
    job = client.wait(client.submit(data, name, options).json()["id"])
    assert job["status"] == "succeeded"
    for page in document["pages"]:
        stored = client.http.get(f"/v1/jobs/{job['id']}/pages/{page['page']}").json()
        turned = stored["rotation"] in (90, 270)  # orientation detection, known only after running
        size = (stored["height"], stored["width"]) if turned else (stored["width"], stored["height"])
        assert size == (page["width"], page["height"]), (page, stored["render"])
        tiles = client.http.get(f"/v1/jobs/{job['id']}/pages/{page['page']}/tiles").json()
        if not turned:
            assert (tiles["grid"], tiles["tiles"], tiles["visual_tokens"]) == \
                (page["grid"], page["tiles"], page["visual_tokens"])
        assert tiles["source"] == "plan" and tiles["max_tiles"] == (options or {}).get("max_tiles", 12)
        image = client.http.get(f"/v1/jobs/{job['id']}/pages/{page['page']}/image")
        assert image.status_code == 200 and image.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(image.content)).size == (stored["width"], stored["height"])
    assert planned["totals"] == {"documents": 1, "refused": 0, "pages": len(document["pages"]),
                                 "tiles": document["tiles"], "visual_tokens": document["visual_tokens"]}


def test_an_archive_is_planned_entry_by_entry(stack) -> None:  # noqa: ANN001
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("a.pdf", pdf(2, "za"))
        zipped.writestr("../evil.pdf", pdf(1, "ze"))
        zipped.writestr("notes.txt", b"not a document")
    planned = plan(stack.new_client(), archive.getvalue(), "docs.zip", {"max_tiles": 1})
    assert planned["kind"] == "archive" and planned["submit_to"] == "/v1/batches"
    names = {doc["name"]: doc for doc in planned["documents"]}
    assert [page["tiles"] for page in names["a.pdf"]["pages"]] == [1, 1]  # max_tiles 1: no thumbnail
    assert names["../evil.pdf"]["error"]["code"] == "unsafe_archive_entry"
    assert names["notes.txt"]["error"]["code"] == "unsupported_media_type"
    assert planned["totals"] == {"documents": 1, "refused": 2, "pages": 2, "tiles": 2, "visual_tokens": 512}


@pytest.mark.parametrize(("data", "status", "code"), [
    (b"", 422, "empty_document"), (b"<html></html>", 415, "unsupported_media_type"),
    (pdf(1)[:200], 422, "corrupt_document"),
])
def test_a_bad_upload_is_refused_as_submission_refuses_it(stack, data: bytes, status: int, code: str) -> None:  # noqa: ANN001
    client = stack.new_client()
    for path in ("/v1/plan", "/v1/jobs"):
        response = client.http.post(path, files={"file": ("x.pdf", data)})
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), path
    response = client.http.post("/v1/plan", files={"file": ("x.pdf", pdf(1))}, data={"options": '{"dpi": 7}'})
    assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_options")


def test_a_page_image_lost_from_the_store_is_a_404(stack, s3_bucket) -> None:  # noqa: ANN001
    client = stack.new_client()
    job = client.wait(client.submit(pdf(1, "lost"), "lost.pdf").json()["id"])
    s3, bucket = s3_bucket
    keys = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix="")["Contents"]
            if f"/{job['id']}/pages/" in item["Key"]]
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key} for key in keys]})
    response = client.http.get(f"/v1/jobs/{job['id']}/pages/1/image")
    assert (response.status_code, response.json()["error"]["code"]) == (404, "no_image")
    assert client.http.get(f"/v1/jobs/{job['id']}/pages/2/image").json()["error"]["code"] == "not_found"


def test_the_queue_counts_pages_per_minute_and_sees_the_workers(stack) -> None:  # noqa: ANN001
    client = stack.new_client()
    before = client.http.get("/v1/queue").json()
    job = client.wait(client.submit(pdf(3, "queue"), "queue.pdf").json()["id"])
    assert job["status"] == "succeeded"
    after = client.http.get("/v1/queue").json()
    assert len(after["minutes"]) == 60
    starts = [datetime.fromisoformat(minute["start"]) for minute in after["minutes"]]
    assert all(b - a == timedelta(minutes=1) for a, b in zip(starts, starts[1:]))
    assert starts[-1] <= datetime.fromisoformat(after["now"]) < starts[-1] + timedelta(minutes=1)
    for name in ("queued", "running", "done"):
        assert after["window"][name] >= before["window"][name] + 3, (name, before["window"], after["window"])
        assert after["window"][name] == sum(minute[name] for minute in after["minutes"])
    assert after["pages_per_second"] >= 3 / 300
    alive = [worker for worker in after["workers"] if worker["alive"]]
    assert alive and all(worker["name"].startswith("tessera-") for worker in alive), after["workers"]
    assert any(worker["queues"] == ["cpu", "gpu"] for worker in alive)
    assert after["broker_error"] is None


def test_batches_are_listed_newest_first_for_their_tenant_only(stack) -> None:  # noqa: ANN001
    alice, mallory = stack.new_client(), stack.new_client()
    made = []
    for tag in ("first", "second", "third"):
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as zipped:
            zipped.writestr(f"{tag}.pdf", pdf(1, tag))
            zipped.writestr("bad.txt", b"x")
        response = alice.http.post("/v1/batches", files={"file": (f"{tag}.zip", archive.getvalue())})
        assert response.status_code == 202, response.text
        made.append(response.json()["id"])
    page = alice.http.get("/v1/batches", params={"limit": 2}).json()
    assert [batch["id"] for batch in page["batches"]] == made[:0:-1] and page["next_cursor"]
    rest = alice.http.get("/v1/batches", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [batch["id"] for batch in rest["batches"]] == made[:1] and rest["next_cursor"] is None
    totals = rest["batches"][0]["totals"]
    assert (totals["entries"], totals["jobs"], totals["rejected"]) == (2, 1, 1)
    assert mallory.http.get("/v1/batches").json() == {"batches": [], "next_cursor": None}


def test_the_tile_grid_is_the_engines_when_internvl_read_the_page(stack) -> None:  # noqa: ANN001
    client = stack.new_client()
    job = client.wait(client.submit(pdf(1, "grid"), "grid.pdf", {"max_tiles": 40}).json()["id"])
    planned = client.http.get(f"/v1/jobs/{job['id']}/pages/1/tiles").json()
    assert planned["source"] == "plan" and planned["max_tiles"] == 40
    # The digest engine reports no grid; InternVL stores the one it used in the page's row
    # (workers/infer.py: tile_grid = the result's tiles), as here.
    engine = make_engine(stack.sqlalchemy_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE pages SET tile_grid = :grid WHERE job_id = :job"),
                           {"grid": json.dumps({"grid": [2, 3], "count": 7}), "job": job["id"]})
    engine.dispose()
    used = client.http.get(f"/v1/jobs/{job['id']}/pages/1/tiles").json()
    assert (used["source"], used["grid"], used["tiles"], used["thumbnail"], used["visual_tokens"]) == \
        ("engine", [2, 3], 7, True, 7 * 256)
