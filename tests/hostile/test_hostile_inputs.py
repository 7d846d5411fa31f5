"""Hostile and malformed inputs (tests/data/hostile/corpus.py) against real `tessera serve
--no-worker` + `tessera worker` processes: each must end in a stable error code or a correct
result (never a 5xx, never a job left unfinished), while good documents sent alongside by
another tenant finish correctly.

Everything is sent first, then awaited together, so the good documents really share the
workers with the hostile ones. `test_summary` prints the table input -> outcome.
"""

from __future__ import annotations

import io
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image, ImageSequence

from tests.data.hostile import corpus
from tests.security.stack import BulkStack
from tests.utils.tessera_procs import FINAL
from workers.engines.digest import expected_text

pytestmark = pytest.mark.slow
PDF = corpus.text_pdf()
MiB = 2**20
Send = Callable[[httpx.Client], httpx.Response]
Check = Callable[[httpx.Client, dict[str, Any]], None]


@dataclass
class Case:
    name: str
    send: Send
    expect: str
    check: Check | None = None


# ---------------------------------------------------------------- how each input is sent


def job(data: bytes, filename: str = "document.pdf", options: dict | None = None) -> Send:
    form = {"options": json.dumps(options)} if options is not None else None
    return lambda client: client.post("/v1/jobs", files={"file": (filename, data)}, data=form)


def batch(data: bytes, filename: str = "documents.zip") -> Send:
    return lambda client: client.post("/v1/batches", files={"file": (filename, data)})


def batch_json(body: Any) -> Send:
    return lambda client: client.post("/v1/batches", json=body)


def raw_multipart(path: str, filename: bytes, data: bytes, fields: dict[bytes, bytes] | None = None) -> Send:
    """A multipart body written byte by byte, so the file name can be anything at all."""
    boundary = b"tessera-hostile-boundary"
    body = b"".join(b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (boundary, k, v)
                    for k, v in (fields or {}).items())
    body += (b'--%s\r\nContent-Disposition: form-data; name="file"; filename="%s"\r\n'
             b"Content-Type: application/octet-stream\r\n\r\n" % (boundary, filename)) + data
    body += b"\r\n--%s--\r\n" % boundary
    headers = {"Content-Type": "multipart/form-data; boundary=" + boundary.decode()}
    return lambda client: client.post(path, content=body, headers=headers)


def raw(method: str, path: str, **kwargs: Any) -> Send:
    return lambda client: client.request(method, path, **kwargs)


# ---------------------------------------------------------------- correctness checks


def page_texts(client: httpx.Client, job_id: str, pages: int) -> list[str]:
    return [client.get(f"/v1/jobs/{job_id}/pages/{n}").json()["text"] for n in range(1, pages + 1)]


def same_pixels(*images: Image.Image) -> Check:
    """The stored pages are exactly these images (the digest engine hashes the RGB pixels)."""
    def check(client: httpx.Client, job: dict[str, Any]) -> None:
        assert page_texts(client, job["id"], len(images)) == [expected_text(im) for im in images]
    return check


def tiff_frames() -> list[Image.Image]:
    with Image.open(io.BytesIO(corpus.multipage_tiff())) as tiff:
        return [frame.convert("RGB") for frame in ImageSequence.Iterator(tiff)]


def png16_expected() -> Image.Image:
    values = np.array([(x * 1024) & 0xFFFF for x in range(64 * 48)], dtype=np.uint16).reshape(48, 64)
    return Image.fromarray((values >> 8).astype(np.uint8), "L")


def display_name_is_clean(client: httpx.Client, job: dict[str, Any]) -> None:
    name = job["filename"] or ""
    assert name.isprintable() and "/" not in name and len(name) <= 255, repr(name)


# ---------------------------------------------------------------- the corpus


def cases() -> list[Case]:
    return [
        Case("empty file", job(b""), "422 empty_document"),
        Case("truncated PDF", job(corpus.truncated_pdf()), "422 corrupt_document"),
        Case("HTML named .pdf", job(b"<html><body>hello</body></html>", "invoice.pdf"), "415 unsupported_media_type"),
        Case("zero-page PDF", job(corpus.zero_page_pdf()), "422 corrupt_document"),
        Case("10,000-page PDF (one shared content stream)", job(corpus.many_page_pdf()), "422 too_many_pages"),
        Case("200-inch page", job(corpus.one_page_pdf(b"[0 0 14400 14400]")), "422 image_too_large"),
        Case("zero-size MediaBox", job(corpus.one_page_pdf(b"[0 0 0 0]")), "202 -> succeeded (1 p)"),
        Case("page tree that loops", job(corpus.page_tree_loop_pdf()), "202 -> succeeded (2 p)"),
        Case("image XObject claiming 30000x30000 px", job(corpus.image_bomb_pdf()), "202 -> succeeded (1 p)"),
        Case("PDF with a JavaScript OpenAction", job(corpus.javascript_pdf()), "202 -> succeeded (1 p)"),
        Case("PDF with a broken (recoverable) xref", job(corpus.one_page_pdf(broken_xref=True)),
             "202 -> succeeded (1 p)"),
        Case("encrypted PDF", job(corpus.encrypted_pdf()), "422 encrypted_pdf"),
        Case("polyglot: HTML with script, then a PDF", job(corpus.polyglot_html_pdf(PDF), "page.html"),
             "202 -> succeeded (1 p)"),
        Case("polyglot: PDF with a zip appended", job(corpus.pdf_zip_polyglot(PDF)), "202 -> succeeded (1 p)"),
        Case("PNG decompression bomb (40000x40000, 190 KB)", job(corpus.png_bomb(), "bomb.png"),
             "422 image_too_large"),
        Case("JPEG header claiming 65000x65000", job(corpus.jpeg_huge_header(), "huge.jpg"), "422 image_too_large"),
        Case("JPEG with truncated data", job(corpus.truncated_jpeg(), "cut.jpg"), "202 -> failed corrupt_document"),
        Case("multi-page TIFF", job(corpus.multipage_tiff(), "scan.tiff"), "202 -> succeeded (3 p)",
             same_pixels(*tiff_frames())),
        Case("CMYK JPEG", job(corpus.cmyk_jpeg(), "cmyk.jpg"), "202 -> succeeded (1 p)",
             same_pixels(Image.new("RGB", (64, 48), (255, 0, 0)))),
        Case("16-bit greyscale PNG", job(corpus.png_16bit(), "deep.png"), "202 -> succeeded (1 p)",
             same_pixels(png16_expected())),
        Case("animated GIF", job(corpus.animated_gif(), "anim.gif"), "415 unsupported_media_type"),
        Case("WebP image", job(corpus.webp_image(), "photo.webp"), "415 unsupported_media_type"),
        Case("1x1 image", job(corpus.tiny_png(), "dot.png"), "202 -> succeeded (1 p)",
             same_pixels(Image.new("RGB", (1, 1), "black"))),
        Case("100000x1 image", job(corpus.long_strip_png(), "strip.png"), "202 -> succeeded (1 p)",
             same_pixels(Image.new("RGB", (100_000, 1), "black"))),
        Case("invalid UTF-8 file name", raw_multipart("/v1/jobs", b"\xff\xfe\xc3\x28bad.pdf", PDF),
             "202 -> succeeded (1 p)", display_name_is_clean),
        Case("control characters in the file name", raw_multipart("/v1/jobs", b"\x1b[31mred\x07\x7f.pdf", PDF),
             "202 -> succeeded (1 p)", display_name_is_clean),
        Case("1,000-character file name", job(PDF, "a" * 1_000 + ".pdf"), "202 -> succeeded (1 p)",
             display_name_is_clean),
        Case("10,000-character file name (multipart header over its limit)", job(PDF, "a" * 10_000 + ".pdf"),
             "400 bad_request"),
        Case("path traversal in the file name", job(PDF, "../../../etc/passwd"), "202 -> succeeded (1 p)",
             display_name_is_clean),
        Case("options field of 2 MiB", job(PDF, options={"pages": "1", "x": "y" * (2 * MiB)}),
             "400 bad_request"),
        Case("options that are not JSON", raw_multipart("/v1/jobs", b"a.pdf", PDF, {b"options": b"{nope"}),
             "422 invalid_options"),
        Case("page range past the end", job(PDF, options={"pages": "1-99999999999999999999"}), "422 invalid_options"),
        Case("multipart without a file", raw("POST", "/v1/jobs", files={"options": (None, "{}")}),
             "422 invalid_request"),
        Case("a urlencoded form instead of multipart", raw("POST", "/v1/jobs", data={"options": "{}"}),
             "415 unsupported_media_type"),
        Case("oversized JSON body (2 MiB) to /v1/batches",
             raw("POST", "/v1/batches", content=b" " * (2 * MiB), headers={"Content-Type": "application/json"}),
             "413 payload_too_large"),
        Case("job id with path traversal", raw("GET", "/v1/jobs/..%2F..%2Fetc%2Fpasswd"), "404 not_found"),
        Case("job id with SQL", raw("GET", "/v1/jobs/' OR '1'='1"), "404 not_found"),
        Case("zip bomb: one entry declaring 30 MiB", batch(corpus.zip_bomb(30 * MiB)),
             "202 -> batch: entry_too_large x1"),
        Case("zip bomb: headers lie (1000 B for 30 MiB)", batch(corpus.zip_bomb_lying(30 * MiB)),
             "202 -> batch: corrupt_archive x1"),
        Case("zip bomb: 3 x 19 MiB, over the 50 MiB total",
             batch(corpus.zip_of([(f"{n}.pdf", b"\x00" * (19 * MiB)) for n in range(3)])), "413 archive_too_large"),
        Case("tar.gz bomb (60 MiB of zeros)", batch(corpus.tar_gz_bomb(60 * MiB), "bomb.tar.gz"),
             "413 archive_too_large"),
        Case("zip with ../ and absolute names", batch(corpus.zip_of(
            [("ok.pdf", PDF), ("../../evil.pdf", PDF), ("/etc/evil.pdf", PDF)])),
            "202 -> batch: succeeded x1, unsafe_archive_entry x2"),
        Case("nested zips, 3 deep", batch(corpus.nested_zips(PDF, 3)),
             "202 -> batch: nested_archive_too_deep x1, succeeded x2"),
        Case("symlink in tar", batch(corpus.tar_of([("ok.pdf", PDF), corpus.tar_link("link.pdf", "/etc/passwd")]),
                                     "links.tar"), "202 -> batch: succeeded x1, unsafe_archive_entry x1"),
        Case("absolute path in tar", batch(corpus.tar_of([("/etc/abs.pdf", PDF)]), "abs.tar"),
             "202 -> batch: unsafe_archive_entry x1"),
        Case("hard link and device file in tar", batch(corpus.tar_of(
            [corpus.tar_link("hard.pdf", "x.pdf", b"1"), corpus.tar_device("dev/null")]), "dev.tar"),
            "202 -> batch: unsafe_archive_entry x2"),
        Case("zip with 101 entries (limit 100)", batch(corpus.zip_of([(f"{n}.pdf", b"x") for n in range(101)])),
             "422 too_many_entries"),
        Case("zip listing 5,000 directory records", batch(corpus.zip_of([(f"d{n}/", b"") for n in range(5000)])),
             "422 too_many_entries"),
        Case("corrupt zip", batch(b"PK\x03\x04" + b"\xff" * 200), "422 corrupt_archive"),
        Case("empty zip", batch(corpus.zip_of([])), "422 empty_batch"),
        Case("PDF sent as an archive", batch(PDF, "docs.zip"), "415 unsupported_media_type"),
        Case("sources: file://, gopher://, the blob bucket", batch_json({"sources": [
            {"url": "file:///etc/passwd"}, {"url": "gopher://127.0.0.1:70/"},
            {"s3_uri": "s3://tessera-test/other-tenant/job/input"}]}),
            "202 -> batch: source_not_allowed x3"),
    ]


CASES = cases()


# ---------------------------------------------------------------- running them all at once


@pytest.fixture(scope="module")
def run(hostile_stack: BulkStack) -> dict[str, Any]:
    client, bystander = hostile_stack.client("hostile"), hostile_stack.client("bystander")
    started = time.monotonic()
    good = {"first.pdf": bystander.post("/v1/jobs", files={"file": ("first.pdf", PDF)}).json()["id"]}
    responses = {case.name: case.send(client) for case in CASES}
    good["last.png"] = bystander.post("/v1/jobs", files={"file": ("last.png", corpus.tiny_png())}).json()["id"]
    jobs = {name: r.json()["id"] for name, r in responses.items()
            if r.status_code in (200, 202) and r.request.url.path == "/v1/jobs"}
    batches = {name: r.json()["id"] for name, r in responses.items()
               if r.status_code in (200, 202) and r.request.url.path == "/v1/batches"}
    finished_jobs = wait_all(client, jobs, batches, bystander, good)
    outcomes = {}
    for name, response in responses.items():
        if name in jobs:
            outcomes[name] = job_outcome(finished_jobs[jobs[name]])
        elif name in batches:
            outcomes[name] = batch_outcome(client.get(f"/v1/batches/{batches[name]}").json())
        else:
            outcomes[name] = f"{response.status_code} {error_code(response)}"
    return {"client": client, "bystander": bystander, "outcomes": outcomes, "jobs": finished_jobs,
            "job_ids": jobs, "good": good, "seconds": time.monotonic() - started}


def error_code(response: httpx.Response) -> str:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return f"(no error body: {response.text[:80]!r})"


def wait_all(client: httpx.Client, jobs: dict[str, str], batches: dict[str, str], bystander: httpx.Client,
             good: dict[str, str], timeout: float = 100.0) -> dict[str, dict[str, Any]]:
    """Every job (single, inside a batch, and the bystander's) until final."""
    deadline, finished = time.monotonic() + timeout, {}
    owners = {job_id: client for job_id in jobs.values()} | {job_id: bystander for job_id in good.values()}
    for batch_id in batches.values():
        for entry in client.get(f"/v1/batches/{batch_id}").json()["entries"]:
            if entry["job_id"]:
                owners[entry["job_id"]] = client
    while len(finished) < len(owners):
        for job_id, owner in owners.items():
            if job_id not in finished:
                body = owner.get(f"/v1/jobs/{job_id}").json()
                if body["status"] in FINAL:
                    finished[job_id] = body
        if time.monotonic() > deadline:
            open_jobs = {j: owner.get(f"/v1/jobs/{j}").json()["status"] for j, owner in owners.items()
                         if j not in finished}
            pytest.fail(f"jobs left unfinished after {timeout:.0f} s: {open_jobs}")
        time.sleep(0.3)
    return finished


def job_outcome(job: dict[str, Any]) -> str:
    if job["status"] in ("succeeded", "partially_succeeded"):
        return f"202 -> {job['status']} ({job['progress']['pages_total']} p)"
    return f"202 -> {job['status']} {job['error']['code'] if job['error'] else ''}".rstrip()


def batch_outcome(batch: dict[str, Any]) -> str:
    counts = Counter(entry["error"]["code"] if entry["status"] == "rejected" else entry["status"]
                     for entry in batch["entries"])
    return "202 -> batch: " + ", ".join(f"{key} x{value}" for key, value in sorted(counts.items()))


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_input(run: dict[str, Any], case: Case) -> None:
    outcome = run["outcomes"][case.name]
    assert not outcome.startswith("5"), f"{case.name}: server error {outcome}"
    assert outcome == case.expect
    if case.check is not None:
        case.check(run["client"], run["jobs"][run["job_ids"][case.name]])


def test_good_documents_alongside_are_unharmed(run: dict[str, Any]) -> None:
    bystander, jobs = run["bystander"], run["jobs"]
    first, last = jobs[run["good"]["first.pdf"]], jobs[run["good"]["last.png"]]
    assert first["status"] == "succeeded" and last["status"] == "succeeded"
    assert page_texts(bystander, first["id"], 1)[0].endswith("size:900x300")
    assert page_texts(bystander, last["id"], 1) == [expected_text(Image.new("RGB", (1, 1), "black"))]


def test_summary(run: dict[str, Any]) -> None:
    outcomes = run["outcomes"]
    width = max(map(len, outcomes))
    lines = [f"{'input'.ljust(width)}  outcome", f"{'-' * width}  {'-' * 40}"]
    lines += [f"{name.ljust(width)}  {outcome}" for name, outcome in outcomes.items()]
    print("\n" + "\n".join(lines) + f"\n{len(outcomes)} hostile inputs, {run['seconds']:.1f} s "
          "from the first submission to the last final state")
    assert len(outcomes) >= 25
    assert all(job["status"] in FINAL for job in run["jobs"].values())
    assert not [name for name, outcome in outcomes.items() if outcome.startswith("5")]
