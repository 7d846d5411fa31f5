"""Celery tasks: thin, named, ids-only wrappers around the pipeline stages."""

from __future__ import annotations

from tessera.errors import TRANSIENT_ERRORS
from workers.assemble import assemble_job
from workers.celery_app import app
from workers.enqueue import CeleryEnqueuer
from workers.infer import infer_pages
from workers.runtime import get_runtime
from workers.split import split_job

RETRY = {"autoretry_for": TRANSIENT_ERRORS, "retry_backoff": 2, "retry_backoff_max": 60, "max_retries": 8}


@app.task(name="tessera.split", **RETRY)
def split(job_id: str) -> None:
    split_job(get_runtime(), CeleryEnqueuer(app), str(job_id))


@app.task(name="tessera.infer", **RETRY)
def infer(page_ids: list[int]) -> None:
    infer_pages(get_runtime(), CeleryEnqueuer(app), [int(page_id) for page_id in page_ids])


@app.task(name="tessera.assemble", **RETRY)
def assemble(job_id: str) -> None:
    assemble_job(get_runtime(), str(job_id))
