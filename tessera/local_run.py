"""`tessera run`: the whole pipeline in one process, no server, no broker.

The same stage functions the workers run, driven by an in-process queue, on
embedded storage in a scratch folder.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from rich.console import Console

from api.charts_csv import to_csv
from api.submission import create_job, parse_options
from storage import jobs as job_repo
from storage.blobs import BlobKeys, BlobNotFound
from storage.migrate import upgrade
from storage.tenants import get_or_create_tenant
from tessera.client import expand_paths
from tessera.config import Settings
from tessera.errors import TesseraError
from tessera.formats import ResultFormat
from workers.assemble import assemble_job
from workers.enqueue import ASSEMBLE, INFER, SPLIT, LocalEnqueuer
from workers.infer import infer_pages
from workers.runtime import Runtime
from workers.split import split_job

console = Console()


def run_locally(settings: Settings, paths: list[Path], out: Path, options: str | None,
                formats: list[ResultFormat]) -> bool:
    """Process every document; write `out/<document stem>/result<suffix>` for each of `formats`.
    True if any document failed."""
    scratch = tempfile.TemporaryDirectory(prefix="tessera-run-")
    local = settings.model_copy(update={"home": Path(scratch.name), "database_url": None,
                                        "broker_url": None, "s3_bucket": None, "s3_endpoint_url": None})
    upgrade(local.sqlalchemy_url)
    rt = Runtime(local)
    queue = LocalEnqueuer({})
    queue.handlers = {SPLIT: lambda job_id: split_job(rt, queue, job_id),
                      INFER: lambda page_ids: infer_pages(rt, queue, page_ids),
                      ASSEMBLE: lambda job_id: assemble_job(rt, job_id)}
    parsed = parse_options(options)
    failed = False
    with rt.sessions() as session:
        tenant_id = get_or_create_tenant(session, "local").id
        session.commit()
    for path in expand_paths(paths):
        failed |= not _run_one(rt, queue, tenant_id, path, parsed, out, formats)
    scratch.cleanup()
    return failed


def _run_one(rt: Runtime, queue: LocalEnqueuer, tenant_id: str, path: Path, options, out: Path,  # noqa: ANN001
             formats: list[ResultFormat]) -> bool:
    """Process one document into out/<stem>/: result<suffix> for each of `formats`, or error.json
    (refused at once or failed later alike, so a script finds every outcome in the same place)."""
    folder = out / path.stem
    with rt.sessions() as session:
        try:
            job, _ = create_job(session, rt.blobs, queue, rt.settings, tenant_id=tenant_id,
                                data=path.read_bytes(), filename=path.name, options=options,
                                idempotency_key=None)
        except TesseraError as exc:
            _write_error(folder, exc.code, exc.message)
            console.print(f"[red]{path}: {exc.code}: {exc.message} -> {folder}")
            return False
    queue.drain()
    with rt.sessions() as session:
        job = job_repo.get_job(session, job.id)
    if job.status != "failed":
        folder.mkdir(parents=True, exist_ok=True)
        for fmt in formats:
            try:
                data = rt.blobs.get(BlobKeys.result(tenant_id, job.id, fmt.stored_as))
            except BlobNotFound:  # a format that could not be built: the job's warnings say why
                console.print(f"[yellow]{path}: no {fmt.name} result")
                continue
            if fmt.name == "csv":
                data = to_csv(json.loads(data)).encode("utf-8")
            (folder / f"result{fmt.suffix}").write_bytes(data)
    else:
        _write_error(folder, job.error_code, job.error_message)
    console.print(f"{path}: {job.status} ({job.page_count or 0} pages) -> {folder}")
    return job.status == "succeeded"


def _write_error(folder: Path, code: str | None, message: str | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "error.json").write_text(json.dumps({"code": code, "message": message}))
