"""`tessera run`: the whole pipeline in one process, no server, no broker.

The same stage functions the workers run, driven by an in-process queue, on
embedded storage in a scratch folder. Inputs and the output layout are `tessera submit`'s
(tessera/bulk/inputs.py, formats.py): `out/a/report.pdf.json` for `scans/a/report.pdf`, so two
same-named documents in different folders never share an output.
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
from tessera.bulk.formats import error_path, output_path, write_atomically
from tessera.bulk.inputs import local_inputs, local_root
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
    """Process every document; write `out/<relative path><suffix>` for each of `formats`.
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
    for item in local_inputs(paths, local_root(paths), skip=out.resolve()):
        failed |= not _run_one(rt, queue, tenant_id, Path(item.source), parsed, out, item.key, formats)
    scratch.cleanup()
    return failed


def _run_one(rt: Runtime, queue: LocalEnqueuer, tenant_id: str, path: Path, options,  # noqa: ANN001
             out: Path, key: str, formats: list[ResultFormat]) -> bool:
    """Process one document into `out/<key><suffix>` for each format, or `out/<key>.error.json`
    (refused at once or failed later alike, so a script finds every outcome in the same place)."""
    with rt.sessions() as session:
        try:
            job, _ = create_job(session, rt.blobs, queue, rt.settings, tenant_id=tenant_id,
                                data=path.read_bytes(), filename=path.name, options=options,
                                idempotency_key=None)
        except TesseraError as exc:
            _write_error(error_path(out, key), exc.code, exc.message)
            console.print(f"[red]{path}: {exc.code}: {exc.message} -> {error_path(out, key)}")
            return False
    queue.drain()
    with rt.sessions() as session:
        job = job_repo.get_job(session, job.id)
    if job.status == "failed":
        _write_error(error_path(out, key), job.error_code, job.error_message)
        console.print(f"{path}: failed ({job.page_count or 0} pages) -> {error_path(out, key)}")
        return False
    for fmt in formats:
        try:
            data = rt.blobs.get(BlobKeys.result(tenant_id, job.id, fmt.stored_as))
        except BlobNotFound:  # a format that could not be built: the job's warnings say why
            console.print(f"[yellow]{path}: no {fmt.name} result")
            continue
        if fmt.name == "csv":
            data = to_csv(json.loads(data)).encode("utf-8")
        write_atomically(output_path(out, key, fmt), data)
    console.print(f"{path}: {job.status} ({job.page_count or 0} pages) -> {out / key}.*")
    return job.status == "succeeded"


def _write_error(path: Path, code: str | None, message: str | None) -> None:
    write_atomically(path, json.dumps({"code": code, "message": message}).encode("utf-8"))
