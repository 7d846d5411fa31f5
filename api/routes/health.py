"""Liveness and readiness. /readyz checks every dependency a request needs."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from storage.db import ping

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


UNREADY = {"description": "`status: unready`: a dependency did not answer; `checks` names it"}


@router.get("/readyz", responses={503: UNREADY})
async def readyz(request: Request) -> JSONResponse:
    checks = await run_in_threadpool(_checks, request)
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ready" if ready else "unready", "checks": checks},
                        status_code=200 if ready else 503)


def _checks(request: Request) -> dict[str, str]:
    state = request.app.state
    probes = {
        "database": lambda: ping(state.runtime.db),
        "blob_store": state.runtime.blobs.ping,
        "broker": lambda: state.celery.connection_for_write().ensure_connection(max_retries=1, timeout=3),
    }
    if getattr(state, "worker_supervisor", None) is not None:
        probes["worker"] = state.worker_supervisor.check
    results = {}
    for name, probe in probes.items():
        try:
            probe()
            results[name] = "ok"
        except Exception as exc:  # noqa: BLE001 (report any failure as not ready)
            results[name] = f"error: {type(exc).__name__}: {str(exc)[:200]}"
    return results
