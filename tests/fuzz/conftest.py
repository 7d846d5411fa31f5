"""One real `tessera serve` for the fuzz tests: embedded defaults (SQLite, local blob folder,
filesystem queue) with its built-in worker on the digest engine, so submitted jobs finish.

Started once for tests/fuzz (both the schemathesis run and the regression tests use it) and
stopped with the package. Before handing it out, the fixture makes a few real objects the fuzzer
can name in path parameters: finished jobs (read-only routes), jobs only DELETE gets, and a batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.fuzz.samples import image, small_pdf, tar_gz_of, zip_of
from tests.utils.tessera_procs import ApiClient, Server, create_api_key, tessera_env

FUZZ_STATS = "schemathesis_responses"  # recorded by test_openapi_fuzz.py: {operation: {status: n}}
FUZZ_ENV = {
    "TESSERA_ENGINE": "digest",
    # Fuzzed batch sources and webhooks name hosts that cannot be reached from CI: fail fast.
    "TESSERA_URL_FETCH_TIMEOUT_S": "3",
    "TESSERA_WEBHOOK_TIMEOUT_S": "2",
}


@dataclass
class FuzzApi:
    server: Server
    env: dict[str, str]
    api_key: str
    client: ApiClient
    job_ids: list[str] = field(default_factory=list)  # finished jobs, for all job routes but DELETE
    deletable_job_ids: list[str] = field(default_factory=list)  # finished jobs, for DELETE only
    batch_ids: list[str] = field(default_factory=list)
    documents: list[bytes] = field(default_factory=list)  # real files for POST /v1/jobs
    archives: list[bytes] = field(default_factory=list)  # real archives for POST /v1/batches

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def new_client(self, tenant: str) -> ApiClient:
        """A client with a key of another tenant (its own jobs, none of the fuzzer's)."""
        return self.server.client(create_api_key(self.env, tenant))


def _samples(api: FuzzApi) -> None:
    """Small valid inputs the fuzzer may send in place of the random bytes it makes for `file`,
    so submissions get past the type check and the fuzzed options reach the document checks."""
    api.documents += [small_pdf(1, "f1"), small_pdf(3, "f3"), image("PNG", "png"),
                      image("JPEG", "jpg"), image("TIFF", "tif")]
    api.archives += [zip_of({"a.pdf": small_pdf(2, "za"), "b.png": image("PNG", "zb")}),
                     tar_gz_of({"c.pdf": small_pdf(1, "tc"), "d.bin": b"\x00" * 10})]


def _seed(api: FuzzApi) -> None:
    client = api.client
    submitted = []
    for index, (pages, options) in enumerate([(2, {"tasks": ["ocr", "charts"]}), (1, None),
                                              (3, {"pages": "1,3", "priority": "high"})]):
        response = client.submit(small_pdf(pages, f"s{index}"), f"seed-{index}.pdf", options)
        assert response.status_code == 202, response.text
        submitted.append(response.json()["id"])
    for index in range(2):
        response = client.submit(small_pdf(1, f"d{index}"), f"delete-{index}.pdf")
        assert response.status_code == 202, response.text
        api.deletable_job_ids.append(response.json()["id"])
    archive = zip_of({"a.pdf": small_pdf(1, "ba"), "b.pdf": small_pdf(2, "bb"),
                    "notes.txt": b"not a document"})
    response = client.http.post("/v1/batches", files={"file": ("docs.zip", archive)},
                                data={"options": json.dumps({"tasks": ["ocr"]})})
    assert response.status_code == 202, response.text
    batch = response.json()
    api.batch_ids.append(batch["id"])
    submitted += [entry["job_id"] for entry in batch["entries"] if entry["job_id"]]
    # Finished before fuzzing starts, so an events stream on them ends at once.
    for job_id in submitted + api.deletable_job_ids:
        client.wait(job_id, timeout=60)
    api.job_ids.extend(submitted)


@pytest.fixture(scope="package")
def fuzz_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzApi]:
    home = tmp_path_factory.mktemp("fuzz-home")
    env = tessera_env({**FUZZ_ENV, "TESSERA_HOME": str(home)})
    server = Server(env, home / "serve.log").start()
    api = None
    try:
        key = create_api_key(env, "fuzz")
        api = FuzzApi(server=server, env=env, api_key=key, client=server.client(key))
        _seed(api)
        _samples(api)
        yield api
    finally:
        if api is not None:
            api.client.http.close()
        server.stop()


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001
    """One line per fuzzed operation: how many cases, and the statuses they got."""
    reports = [r for key in ("passed", "failed") for r in terminalreporter.stats.get(key, [])]
    stats = next((dict(r.user_properties)[FUZZ_STATS] for r in reports
                  if FUZZ_STATS in dict(getattr(r, "user_properties", ()))), None)
    if not stats:
        return
    total = sum(sum(statuses.values()) for statuses in stats.values())
    terminalreporter.write_sep("-", f"schemathesis: {total} cases over {len(stats)} operations")
    for label, statuses in sorted(stats.items()):
        counts = " ".join(f"{status}:{n}" for status, n in sorted(statuses.items()))
        terminalreporter.write_line(f"{sum(statuses.values()):5d}  {label}  ({counts})")
