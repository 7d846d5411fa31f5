"""Archive outputs on the real path: a real `tessera serve` (embedded defaults) renders with poppler,
reads with the real rapidocr engine in its worker and stores pages and results; the test reads
back line boxes, txt, hOCR and the searchable PDF and checks them against the stored page images,
the input's page sizes and the field's own tools (pdftotext, hocr-tools, hocr-spec).

Three documents, small so that recognition stays a few seconds:
- a two-page PDF, English then Chinese, on pages of different sizes (rendered at 200 dpi);
- a bilevel scan (a PNG tagged 300 dpi by its pHYs chunk);
- a photographed page (a JPEG without a resolution tag).
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pikepdf
import pytest
from PIL import Image

from tessera.synthetic import char_error_rate, make_pdf, photo_scan, render_text_page
from tests.utils.archive_checks import (
    hocr_lines,
    hocr_problems,
    pdf_image_filters,
    pdf_page_sizes,
    pdf_search,
    pdf_text,
    pdf_word_boxes,
)
from tests.utils.tessera_procs import Server, create_api_key, run_cli, tessera_env
from workers.engines.base import PageInput
from workers.engines.rapidocr_engine import RapidOcrEngine
from workers.engines.strips import DET_MIN_SIDE

pytestmark = pytest.mark.slow
ENGLISH = ["Harbour ledger, spring 1911", "Wind north-east, force 6, rain", "Lamp lit at 19:42 and kept"]
CHINESE = ["北方仓库季度报告", "请于周五之前提交"]
SCAN = ["Invoice 20-4471 paid in full", "Received with thanks, 3 May"]
PHOTO = ["Dear Ada, the parcel arrived", "safely on Tuesday morning."]
SCAN_DPI = 300


def _png(image: Image.Image, dpi: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG", dpi=(dpi, dpi))
    return out.getvalue()


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92)
    return out.getvalue()


DOCUMENTS = {
    "report.pdf": make_pdf([render_text_page(ENGLISH, size=(1100, 560), font_size=34),
                            render_text_page(CHINESE, size=(760, 520), font_size=40, lang="zh")]),
    "scan.png": _png(render_text_page(SCAN, size=(1250, 420), font_size=40)
                     .point(lambda v: 0 if v < 160 else 255), SCAN_DPI),
    "photo.jpg": _jpeg(photo_scan(render_text_page(PHOTO, size=(1000, 420), font_size=38), seed=3)),
}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, Path]]:
    home = tmp_path_factory.mktemp("archive")
    env = tessera_env({"TESSERA_HOME": str(home)})
    key = create_api_key(env, "archive")
    server = Server(env, home / "serve.log").start()
    with httpx.Client(base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {key}"}) as http:
        yield http, home
    server.stop()


@pytest.fixture(scope="module")
def jobs(service) -> dict[str, dict]:  # noqa: ANN001
    """Each document's job once it has ended, with its pages (PageOut) and stored page images."""
    http, home = service
    ids = {name: http.post("/v1/jobs", files={"file": (name, data)}).json()["id"]
           for name, data in DOCUMENTS.items()}
    done = {}
    for name, job_id in ids.items():
        job = _wait(http, job_id)
        assert job["status"] == "succeeded", job
        pages = [http.get(f"/v1/jobs/{job_id}/pages/{n}").json() for n in range(1, job["page_count"] + 1)]
        images = [home / "blobs" / path for path in
                  sorted(p.relative_to(home / "blobs") for p in (home / "blobs").glob(f"*/{job_id}/pages/*.png"))]
        done[name] = {"id": job_id, "pages": pages, "images": images}
    return done


def _wait(http: httpx.Client, job_id: str, timeout: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = http.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "partially_succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not end in {timeout} s")


def _result(service, job_id: str, fmt: str) -> bytes:  # noqa: ANN001
    response = service[0].get(f"/v1/jobs/{job_id}/result", params={"format": fmt})
    assert response.status_code == 200, response.text
    return response.content


def test_each_line_box_lies_in_its_page_and_reads_its_line(jobs) -> None:  # noqa: ANN001
    """Cropped from the stored page image and recognised alone, a line's box reads the line
    (within a punctuation mark: recognising a crop alone is not bit-for-bit the page's reading)."""
    engine = RapidOcrEngine(threads=2)
    for name in ("report.pdf", "scan.png"):
        for page, path in zip(jobs[name]["pages"], jobs[name]["images"], strict=True):
            assert page["positioned"] is True and page["lines"], (name, page["page"])
            assert "\n".join(line["text"] for line in page["lines"]) == page["text"]
            image = Image.open(path).convert("RGB")
            assert image.size == (page["width"], page["height"])
            for line in page["lines"]:
                x0, y0, x1, y1 = line["bbox"]
                assert 0 <= x0 < x1 <= page["width"] and 0 <= y0 < y1 <= page["height"], line
                assert 0 < line["confidence"] <= 1
                # the line alone on white, on a canvas the detector need not enlarge
                crop = Image.new("RGB", (max(x1 - x0 + 40, DET_MIN_SIDE), max(y1 - y0 + 40, DET_MIN_SIDE)), "white")
                crop.paste(image.crop((x0, y0, x1, y1)), (20, 20))
                [alone] = engine.process([PageInput(image=crop)])
                # a box that cut a word off would lose more than a punctuation mark's worth
                assert char_error_rate(alone.text, line["text"]) <= 0.1, (name, line, alone.text)


def test_the_text_is_what_the_documents_say(jobs) -> None:  # noqa: ANN001
    truth = {"report.pdf": [ENGLISH, CHINESE], "scan.png": [SCAN], "photo.jpg": [PHOTO]}
    for name, pages in truth.items():
        for page, lines in zip(jobs[name]["pages"], pages, strict=True):
            assert char_error_rate(page["text"], "\n".join(lines)) <= 0.01, (name, page["text"])


def test_txt_and_hocr_give_back_every_page_and_line(service, jobs) -> None:  # noqa: ANN001
    for name, job in jobs.items():
        txt = _result(service, job["id"], "txt").decode()
        assert txt.split("\f") == [page["text"] + "\n" for page in job["pages"]], name
        hocr = _result(service, job["id"], "hocr")
        assert hocr_problems(hocr, overlap=False) == [], name
        assert hocr_lines(hocr) == [line["text"] for page in job["pages"] for line in page["lines"]]
        for page in job["pages"]:
            alone = service[0].get(f"/v1/jobs/{job['id']}/pages/{page['page']}", params={"format": "hocr"})
            assert hocr_problems(alone.content) == [], (name, page["page"])
            first = page["lines"][0]
            x0, y0, x1, y1 = first["bbox"]
            wconf = round(100 * first["confidence"])
            assert f'title="bbox {x0} {y0} {x1} {y1}; x_wconf {wconf}">' in alone.text
    report = _result(service, jobs["report.pdf"]["id"], "hocr").decode()
    assert 'title="bbox 0 0 1100 560; ppageno 0; scan_res 200 200"' in report
    scan = _result(service, jobs["scan.png"]["id"], "hocr").decode()
    assert 'title="bbox 0 0 1250 420; ppageno 0; scan_res 300 300"' in scan


def test_the_searchable_pdf(service, jobs) -> None:  # noqa: ANN001
    pdfs = {name: _result(service, job["id"], "pdf") for name, job in jobs.items()}
    with pikepdf.open(io.BytesIO(DOCUMENTS["report.pdf"])) as source:
        input_sizes = [(float(p.cropbox[2] - p.cropbox[0]), float(p.cropbox[3] - p.cropbox[1]))
                       for p in source.pages]
    assert pdf_page_sizes(pdfs["report.pdf"]) == pytest.approx(input_sizes, abs=0.01)
    assert pdf_page_sizes(pdfs["scan.png"]) == pytest.approx([(1250 * 72 / SCAN_DPI, 420 * 72 / SCAN_DPI)])
    photo = jobs["photo.jpg"]["pages"][0]  # no resolution tag: 200 dpi assumed
    assert pdf_page_sizes(pdfs["photo.jpg"]) == pytest.approx([(photo["width"] * 0.36, photo["height"] * 0.36)])
    assert pdf_image_filters(pdfs["report.pdf"]) == ["/FlateDecode"] * 2  # grey, lossless
    assert pdf_image_filters(pdfs["scan.png"]) == ["/CCITTFaxDecode"]  # bilevel, lossless
    assert pdf_image_filters(pdfs["photo.jpg"]) == ["/DCTDecode"]  # a photograph
    for name, job in jobs.items():
        stored = sum(path.stat().st_size for path in job["images"])
        assert len(pdfs[name]) <= 1.5 * stored, (name, len(pdfs[name]), stored)
        for page in job["pages"]:
            assert char_error_rate(pdf_text(pdfs[name], page["page"]), page["text"]) <= 0.01
            assert pdf_search(pdfs[name], page["lines"][-1]["text"]) == [page["page"]]
    assert pdf_search(pdfs["report.pdf"], jobs["report.pdf"]["pages"][1]["lines"][0]["text"]) == [2]
    _lines_lie_on_their_boxes(pdfs["report.pdf"], jobs["report.pdf"]["pages"][0], dpi=200)
    _lines_lie_on_their_boxes(pdfs["scan.png"], jobs["scan.png"]["pages"][0], dpi=SCAN_DPI)


def _lines_lie_on_their_boxes(pdf: bytes, page: dict, dpi: int) -> None:
    """pdftotext's words of each line sit inside the line's box (pixels turned into points)."""
    words = pdf_word_boxes(pdf, page["page"])
    for line in page["lines"]:
        x0, y0, x1, y1 = (v * 72 / dpi for v in line["bbox"])
        inside = [w for w in words if y0 <= (w[2] + w[4]) / 2 <= y1]
        assert " ".join(w[0] for w in inside) == line["text"]
        assert min(w[1] for w in inside) == pytest.approx(x0, abs=2)
        assert max(w[3] for w in inside) == pytest.approx(x1, abs=2)


def test_tessera_run_writes_the_formats_asked_for(tmp_path: Path, jobs) -> None:  # noqa: ANN001
    source = tmp_path / "scan.png"
    source.write_bytes(DOCUMENTS["scan.png"])
    env = tessera_env({"TESSERA_HOME": str(tmp_path / "home")})
    run_cli(env, "run", str(source), "--out", str(tmp_path / "out"), "--format", "pdf,hocr,txt")
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["scan.png.hocr", "scan.png.pdf", "scan.png.txt"]
    assert (out / "scan.png.txt").read_text() == jobs["scan.png"]["pages"][0]["text"] + "\n"
    assert hocr_problems((out / "scan.png.hocr").read_bytes()) == []
    assert pdf_search((out / "scan.png.pdf").read_bytes(), SCAN[0]) == [1]
    assert np.isclose(pdf_page_sizes((out / "scan.png.pdf").read_bytes())[0][0], 300.0)
