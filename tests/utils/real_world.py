"""Send the real-world cases (`tests/data/real-world/expected.json`) to a running Tessera and judge
each result against what the file says is right: status, page count, page geometry, lines read,
hidden text absent, order, names.

Used by the tests (tests/real_world/) and by hand, to see a whole run at once:

    python -m tests.utils.real_world --server http://127.0.0.1:8000 --key tsk_... [case ...]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.utils.case_matching import check_page

CASES_DIR = Path(__file__).resolve().parents[1] / "data" / "real-world"  # handed to us (issue 9)
MORE_CASES_DIR = CASES_DIR.parent / "real_world_more"  # our own, of the same kinds
FINAL = {"succeeded", "partially_succeeded", "failed", "cancelled"}
_SIZE = re.compile(r"(\d+)x(\d+) px")


@dataclass
class Outcome:
    """One case's run: what came back and everything wrong with it."""

    name: str
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    pages: list[dict[str, Any]] = field(default_factory=list)
    job: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def load_cases(folder: Path = CASES_DIR) -> list[dict[str, Any]]:
    return json.loads((folder / "expected.json").read_text(encoding="utf-8"))["cases"]


def run_case(http: httpx.Client, case: dict[str, Any], folder: Path = CASES_DIR,
             timeout: float = 600.0) -> Outcome:
    started, outcome = time.monotonic(), Outcome(case["name"])
    data, expected = (folder / case["file"]).read_bytes(), case["result"]
    response = _send(http, case, data)
    if response.status_code != expected["http"]:
        outcome.problems.append(f"HTTP {response.status_code}, expected {expected['http']}: "
                                f"{response.text[:300]}")
        return outcome
    if "batch_entries" in expected:
        _judge_batch(http, response.json(), expected["batch_entries"], outcome, timeout)
    else:
        _judge_job(http, wait_job(http, response.json()["id"], timeout), expected, outcome)
    outcome.seconds = time.monotonic() - started
    return outcome


def _send(http: httpx.Client, case: dict[str, Any], data: bytes) -> httpx.Response:
    """As the case's `send` says: a batch, a part with a Content-Disposition given byte for byte
    (`disposition`, or the handed cases' filename* form), or a plain upload; `options` if any."""
    form = {"options": json.dumps(case["options"])} if "options" in case else None
    if case["send"].startswith("POST /v1/batches"):
        return http.post("/v1/batches", files={"file": (case["file"], data, "application/octet-stream")})
    disposition = case.get("disposition")
    if disposition is None and "filename*=" in case["send"]:
        disposition = re.search(r"Content-Disposition: (form-data; name=\"file\"; filename\*=\S+)",
                                case["send"]).group(1)
    if disposition is not None:
        return post_raw_part(http, "/v1/jobs", disposition, data)
    return http.post("/v1/jobs", files={"file": (case["file"], data, "application/octet-stream")}, data=form)


def post_raw_part(http: httpx.Client, path: str, disposition: str, data: bytes) -> httpx.Response:
    """A multipart/form-data POST with one part whose Content-Disposition is sent byte for byte
    (HTTP clients rewrite file names; these cases are about how a name arrives)."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode("utf-8") + data + \
        f"\r\n--{boundary}--\r\n".encode()
    return http.post(path, content=body,
                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})


def wait_job(http: httpx.Client, job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = http.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in FINAL:
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job['status']} after {timeout:.0f} s")
        time.sleep(0.3)


def _judge_job(http: httpx.Client, job: dict[str, Any], expected: dict[str, Any], outcome: Outcome) -> None:
    outcome.job = job
    if job["status"] != expected["status"]:
        outcome.problems.append(f"status {job['status']} ({job.get('error')}), expected {expected['status']}")
    if "job_name" in expected and job.get("filename") != expected["job_name"]:
        outcome.problems.append(f"job named {job.get('filename')!r}, expected {expected['job_name']!r}")
    pages = http.get(f"/v1/jobs/{job['id']}/pages", params={"limit": 200}).json().get("pages", [])
    if "pages" in expected and len(pages) != expected["pages"]:
        outcome.problems.append(f"{len(pages)} pages, expected {expected['pages']}")
    for number in range(1, len(pages) + 1):
        page = http.get(f"/v1/jobs/{job['id']}/pages/{number}").json()
        outcome.pages.append(page)
        outcome.problems += [f"page {number}: {p}" for p in _page_problems(page, expected, str(number))]


def _page_problems(page: dict[str, Any], expected: dict[str, Any], key: str) -> list[str]:
    problems = _geometry_problems(page, expected.get("page_geometry", {}).get(key))
    verdict = check_page(page.get("text") or "", expected.get("must_contain", {}).get(key, []),
                         expected.get("must_not_contain", {}).get(key, []),
                         expected.get("in_order", {}).get(key, []))
    return problems + verdict.problems


def _geometry_problems(page: dict[str, Any], geometry: str | None) -> list[str]:
    if not geometry:
        return []
    width, height, problems = page["width"], page["height"], []
    size = _SIZE.search(geometry)
    if size and (width, height) != (int(size.group(1)), int(size.group(2))):
        problems.append(f"{width}x{height} px, expected {size.group(1)}x{size.group(2)}")
    if geometry.startswith("portrait") and width > height:
        problems.append(f"landscape {width}x{height}, expected portrait")
    return problems


def _judge_batch(http: httpx.Client, batch: dict[str, Any], entries: list[dict[str, Any]],
                 outcome: Outcome, timeout: float) -> None:
    got = batch.get("entries", [])
    names = [entry.get("name") for entry in got]
    if names != [entry["name"] for entry in entries]:
        outcome.problems.append(f"entries named {names}, expected {[e['name'] for e in entries]}")
    for entry, want in zip(got, entries):
        if not entry.get("job_id"):
            outcome.problems.append(f"entry {entry.get('name')!r} refused: {entry.get('error')}")
            continue
        job = wait_job(http, entry["job_id"], timeout)
        if job["status"] != want["status"]:
            outcome.problems.append(f"entry {want['name']}: {job['status']} ({job.get('error')})")
        if job.get("filename") != want["name"]:
            outcome.problems.append(f"job named {job.get('filename')!r}, expected {want['name']!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default="http://127.0.0.1:8000")
    parser.add_argument("--key", required=True)
    parser.add_argument("--folder", type=Path, default=CASES_DIR)
    parser.add_argument("cases", nargs="*", help="case names (default: all)")
    args = parser.parse_args(argv)
    http = httpx.Client(base_url=args.server, timeout=120, headers={"Authorization": f"Bearer {args.key}"})
    failed = 0
    for case in load_cases(args.folder):
        if args.cases and case["name"] not in args.cases:
            continue
        outcome = run_case(http, case, args.folder)
        failed += not outcome.ok
        print(f"{'PASS' if outcome.ok else 'FAIL'} {case['name']:<26} {outcome.seconds:6.1f} s")
        for problem in outcome.problems[:8]:
            print(f"     - {problem[:200]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
