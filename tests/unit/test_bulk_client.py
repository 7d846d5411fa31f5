"""The bulk client's parts that need no server: result layout, input discovery, S3 keys as
paths, idempotency keys, Retry-After, the manifest's resume rules, progress and its displays.
The whole client against a real stack: tests/api/test_bulk_submit.py."""

from __future__ import annotations

import io
import time
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from tessera.bulk import manifest as states
from tessera.bulk.formats import output_path
from tessera.formats import RESULT_FORMATS, parse_formats
from tessera.bulk.inputs import Input, local_inputs, local_root, safe_key
from tessera.bulk.manifest import Manifest
from tessera.bulk.progress import PageRate, PlainDisplay, RichDisplay, Snapshot, eta
from tessera.bulk.run import idempotency_key
from tessera.client import MAX_WAIT_S, retry_after


def test_formats_and_where_results_land(tmp_path: Path) -> None:
    assert [f.name for f in parse_formats(" Markdown,json,markdown ")] == ["markdown", "json"]
    with pytest.raises(ValueError, match="choose from json, markdown, csv"):
        parse_formats("json,docx")
    assert output_path(tmp_path, "a/report.pdf", RESULT_FORMATS["json"]) == tmp_path / "a/report.pdf.json"
    assert output_path(tmp_path, "a/report.pdf", RESULT_FORMATS["markdown"]) == tmp_path / "a/report.pdf.md"


def test_inputs_mirror_the_tree_under_their_common_folder(tmp_path: Path) -> None:
    for name in ("scans/a/report.pdf", "scans/b/report.PDF", "scans/b/notes.txt", "scans/out/x.pdf",
                 "other/photo.jpg", "other/odd.bin"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert local_root([tmp_path / "scans"]) == tmp_path / "scans"
    assert local_root([tmp_path / "scans" / "a", tmp_path / "other" / "odd.bin"]) == tmp_path
    keys = [i.key for i in local_inputs([tmp_path / "scans"], tmp_path / "scans",
                                        skip=(tmp_path / "scans" / "out").resolve())]
    assert keys == ["a/report.pdf", "b/report.PDF"]  # by suffix, sorted, the output folder skipped
    keys = [i.key for i in local_inputs([tmp_path / "scans" / "a", tmp_path / "other" / "odd.bin"],
                                        tmp_path)]
    assert keys == ["scans/a/report.pdf", "other/odd.bin"]  # a file named on the command line is kept
    with pytest.raises(ValueError, match="use another --out"):
        list(local_inputs([tmp_path / "other"], tmp_path / "scans"))


@pytest.mark.parametrize(("key", "path"), [
    ("a/b.pdf", "a/b.pdf"), ("/a/b.pdf", "a/b.pdf"), ("a//b.pdf", "a/%/b.pdf"),
    ("../../etc/passwd", "%2E%2E/%2E%2E/etc/passwd"), ("a/./b", "a/%2E/b"), ("%2E/x", "%252E/x"),
])
def test_s3_keys_become_paths_inside_the_output_folder(key: str, path: str) -> None:
    assert safe_key(key) == path
    assert not any(part in ("", ".", "..") for part in Path(path).parts)


def test_idempotency_keys_follow_content_options_and_attempt() -> None:
    key = idempotency_key("abc", {"pages": "1", "max_tiles": 4}, 0)
    assert key == idempotency_key("abc", {"max_tiles": 4, "pages": "1"}, 0) and len(key) <= 255
    assert len({key, idempotency_key("abd", {"pages": "1", "max_tiles": 4}, 0),
                idempotency_key("abc", {"pages": "2", "max_tiles": 4}, 0),
                idempotency_key("abc", {"pages": "1", "max_tiles": 4}, 1)}) == 4


def test_retry_after_reads_seconds_and_dates() -> None:
    def after(value: str | None) -> float:
        headers = {} if value is None else {"Retry-After": value}
        return retry_after(httpx.Response(429, headers=headers))

    assert after("3") == 3.0 and after(None) == 5.0 and after("soon") == 5.0
    assert after("999999") == MAX_WAIT_S and after("-4") == 0.0
    in_ten = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 10))
    assert 8 <= after(in_ten) <= 11


def test_the_manifest_resumes_and_retries(tmp_path: Path) -> None:
    manifest = Manifest(tmp_path)
    first = [Input("a.pdf", "/x/a.pdf", 10, 1), Input("b.pdf", "/x/b.pdf", 20, 1)]
    assert manifest.record_inputs(first) == 2
    manifest.update("a.pdf", state=states.DONE, job_id="j1", job_status="succeeded", pages_total=3,
                    pages_done=3)
    manifest.update("b.pdf", state=states.FAILED, job_id="j2", error_code="corrupt_document")
    manifest.close()

    again = Manifest(tmp_path)  # the next run: a.pdf untouched, b.pdf rewritten
    again.record_inputs([Input("a.pdf", "/x/a.pdf", 10, 1), Input("b.pdf", "/x/b.pdf", 21, 2)])
    rows = {d.key: d for state in (states.DONE, states.PENDING) for d in again.documents(state)}
    assert (rows["a.pdf"].state, rows["a.pdf"].job_id) == (states.DONE, "j1")
    assert (rows["b.pdf"].state, rows["b.pdf"].job_id, rows["b.pdf"].error_code) == (states.PENDING, None, None)
    again.update("b.pdf", state=states.FAILED, error_code="corrupt_document")
    assert again.retry_failed() == 1
    retried = next(again.documents(states.PENDING))
    assert (retried.key, retried.attempt) == ("b.pdf", 1)
    assert again.totals() == {states.DONE: 1, "job:succeeded": 1, states.PENDING: 1}
    assert again.pages() == (3, 3, 1, 1)
    again.check_meta("root", "/x", "the inputs under")
    with pytest.raises(ValueError, match="use another --out"):
        again.check_meta("root", "/y", "the inputs under")


def test_progress_figures() -> None:
    snapshot = Snapshot(documents=10, finished=4, failed=1, pages_known=40, pages_done=20,
                        counted_documents=4, uncounted_documents=6, failures={"corrupt_document": 1})
    assert snapshot.pages_estimate == (100, True)  # 6 documents more at 10 pages each
    rate = PageRate()
    rate.add(0, now=0.0)
    rate.add(20, now=10.0)
    assert rate.per_second() == 2.0 and eta(snapshot, 2.0) == "0:00:40"
    assert eta(snapshot, 0.0) == "-"


def test_displays_show_documents_pages_rate_and_failures() -> None:
    snapshot = Snapshot(documents=10, finished=4, failed=2, pages_known=40, pages_done=20,
                        counted_documents=4, failures={"corrupt_document": 2}, requests=17)
    out = io.StringIO()
    plain = PlainDisplay(Console(file=out, width=300), interval=0)
    plain.update(snapshot)
    assert out.getvalue().strip() == ("documents 4/10 (2 failed) | pages 20/40 | 0.0 pages/s | ETA - | "
                                      "failed: corrupt_document=2")
    screen = io.StringIO()
    rich = RichDisplay(Console(file=screen, force_terminal=True, width=120))
    rich.close(snapshot)
    shown = screen.getvalue()
    assert "documents" in shown and "4/10" in shown and "20/40" in shown and "pages/s" in shown
    assert "failures: corrupt_document=2" in shown and "requests: 17" in shown
