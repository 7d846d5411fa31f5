"""The command line end to end on real folders, as a user runs it: `tessera run` (one-shot,
no server) and the README's main job, `scripts/demo.sh`, in its short form. Exit codes, the
files written, and rapidocr's text on `samples/` against `samples/truth`."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tessera.synthetic import char_error_rate, label_png, make_pdf, make_truncated_pdf, render_text_page
from tests.utils.tessera_procs import tessera_cmd, tessera_env
from workers.engines.digest import expected_text

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
MAX_CER = 0.02  # per page, whitespace ignored; rapidocr measures 0.000 on every sample page
WIDE = {"COLUMNS": "400"}  # rich wraps console lines at 80 columns without a terminal


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(tessera_cmd(*args), env={**env, **WIDE}, cwd=ROOT, capture_output=True,
                          text=True, timeout=900)


def truth_of(stem: str) -> list[str]:
    pages = sorted((SAMPLES / "truth" / stem).glob("*.txt"), key=lambda path: int(path.stem))
    return [page.read_text(encoding="utf-8") for page in pages]


def assert_reads_like_its_truth(result: Path, stem: str) -> None:
    """`result`: the document's output path without a suffix (out/<input path>)."""
    document = json.loads(Path(f"{result}.json").read_text(encoding="utf-8"))
    truth = truth_of(stem)
    assert [(page["page"], page["status"]) for page in document["pages"]] == \
        [(n, "done") for n in range(1, len(truth) + 1)]
    for page, expected in zip(document["pages"], truth):
        cer = char_error_rate(page["text"], expected)
        assert cer <= MAX_CER, f"{stem} page {page['page']}: CER {cer:.3f}: {page['text']!r}"
    assert Path(f"{result}.md").read_text(encoding="utf-8").count("<!-- page ") == len(truth)


def test_run_on_the_samples_folder_reads_every_page_like_its_truth(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = run(tessera_env({"TESSERA_HOME": str(tmp_path / "home")}), "run", "samples", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    documents = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".pdf", ".png", ".jpg"))
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{p.name}{suffix}" for p in documents
                                                           for suffix in (".json", ".md"))
    for path in documents:
        assert_reads_like_its_truth(out / path.name, path.stem)
        pages = len(truth_of(path.stem))
        assert f"{path}: succeeded ({pages} pages) -> {out / path.name}.*" in proc.stdout


def test_run_exits_1_and_says_why_for_each_document_that_failed(tmp_path: Path) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    (folder / "nested").mkdir(parents=True)
    (folder / "good.png").write_bytes(label_png("good"))
    two = make_pdf([render_text_page([f"page {n}"], size=(300, 120), font_size=20, margin=20) for n in (1, 2)], dpi=72)
    (folder / "nested" / "two.pdf").write_bytes(two)
    (folder / "cut.pdf").write_bytes(make_truncated_pdf(two, 0.3))
    (folder / "notes.txt").write_text("not a document: not picked up from a folder")
    env = tessera_env({"TESSERA_HOME": str(tmp_path / "home"), "TESSERA_ENGINE": "digest"})
    proc = run(env, "run", str(folder), "--out", str(out), "--options", '{"dpi": 72}')
    assert proc.returncode == 1, proc.stdout + proc.stderr
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["cut.pdf.error.json", "good.png.json", "good.png.md", "nested/two.pdf.json",
                       "nested/two.pdf.md"]
    assert json.loads((out / "cut.pdf.error.json").read_text())["code"] == "corrupt_document"
    good = json.loads((out / "good.png.json").read_text())
    assert [p["text"] for p in good["pages"]] == [expected_text(Image.open(io.BytesIO(label_png("good"))))]
    assert [p["status"] for p in json.loads((out / "nested" / "two.pdf.json").read_text())["pages"]] == \
        ["done"] * 2
    assert "corrupt_document" in proc.stdout and "two.pdf: succeeded (2 pages)" in proc.stdout


def test_run_refuses_a_path_that_does_not_exist(tmp_path: Path) -> None:
    proc = run(tessera_env({"TESSERA_HOME": str(tmp_path / "home")}), "run", "missing.pdf", "--out",
               str(tmp_path / "out"))
    assert proc.returncode == 2 and "missing.pdf" in proc.stderr and not (tmp_path / "out").exists()


def test_the_demo_runs_the_main_job_in_its_short_form(tmp_path: Path) -> None:
    """`bash scripts/demo.sh` as the README gives it, on one sample (TESSERA_DEMO_SAMPLES)."""
    env = tessera_env({"TESSERA_HOME": str(tmp_path / "home"), "TESSERA_DEMO_OUT": str(tmp_path / "out"),
                       "TESSERA_DEMO_SAMPLES": "samples/table.png", **WIDE})
    proc = subprocess.run(["bash", "scripts/demo.sh"], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_reads_like_its_truth(tmp_path / "out" / "table.png", "table")
    assert "table.png" in proc.stdout and "succeeded" in proc.stdout
