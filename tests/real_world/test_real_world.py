"""Real-world documents through the real service, judged against their known right results.

`tests/data/real-world/` holds the cases handed to us (issue 9: each one a kind of document
Tessera once got silently wrong), `tests/data/real_world_more/` our own inputs of the same kinds
(other tags, boxes, page trees, code pages, sizes; made by its make_cases.py). Both go through a
real `tessera serve` on its embedded defaults: poppler renders, the real rapidocr engine reads,
in the in-process worker. tests/utils/real_world.py sends each as its `send` says and checks what
`expected.json` says is right: status, page count and geometry, every required line (character
error rate per page at most 1%, every number exact), hidden text absent, order, names.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.utils.real_world import CASES_DIR, MORE_CASES_DIR, load_cases, run_case
from tests.utils.tessera_procs import Server, create_api_key, tessera_env

pytestmark = pytest.mark.slow
CASES = [(CASES_DIR, case) for case in load_cases(CASES_DIR)] + \
        [(MORE_CASES_DIR, case) for case in load_cases(MORE_CASES_DIR)]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    home = tmp_path_factory.mktemp("real-world")
    env = tessera_env({"TESSERA_HOME": str(home)})
    key = create_api_key(env, "real-world")
    server = Server(env, home / "serve.log").start()
    with httpx.Client(base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {key}"}) as http:
        yield http
    server.stop()


@pytest.mark.parametrize(("folder", "case"), CASES,
                         ids=[f"{folder.name}/{case['name']}" for folder, case in CASES])
def test_real_world_document_comes_out_right(service: httpx.Client, folder: Path, case: dict) -> None:
    outcome = run_case(service, case, folder, timeout=280)
    assert outcome.ok, f"{case['fault_kind']}\n" + "\n".join(outcome.problems)


def test_every_page_result_says_what_was_done_to_it(service: httpx.Client) -> None:
    """The duplex back: rendered from its CropBox at 200 dpi, turned 180 degrees by orientation
    detection, read at its own resolution; all of it in the page's result."""
    [case] = [c for c in load_cases(CASES_DIR) if c["name"] == "duplex_back_upside_down"]
    outcome = run_case(service, case, CASES_DIR, timeout=280)
    assert outcome.ok, outcome.problems
    front, back = outcome.pages
    assert (front["rotation"], back["rotation"]) == (0, 180)
    assert back["render"]["orientation"]["decided"] and back["render"]["orientation"]["rotate"] == 180
    assert back["render"] | {"orientation": None} == {
        "source": "pdf", "box": "CropBox", "box_pt": [0.0, 0.0, 612.0, 792.0], "dpi": 200, "pdf_rotate": 0,
        "scan_ppi": 150.0, "rotation": 180, "orientation": None}
    assert back["recognition"] == {"width": 1700, "height": 2200, "scale": 1.0, "strips": 1}
    assert "\n".join(line["text"] for line in back["lines"]) == back["text"]
    result = service.get(f"/v1/jobs/{outcome.job['id']}/result").json()
    assert [page["rotation"] for page in result["pages"]] == [0, 180]  # the document result says it too
