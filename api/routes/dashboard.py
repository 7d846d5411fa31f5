"""GET /: the operator dashboard, one static HTML page with a little vanilla JS (api/static/).

The page asks for an API key (kept in the browser's localStorage) and talks to /v1 with it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
router = APIRouter(tags=["dashboard"])
# The page runs only its own script and talks only to this server.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "connect-src 'self'; img-src 'self' data: blob:; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@router.get("/", response_class=HTMLResponse, summary="Dashboard (HTML page)",
            responses={200: {"content": {"text/html": {}}, "description": "the dashboard page"}})
def dashboard() -> FileResponse:
    """Jobs with status and progress, refreshed every few seconds; click one for its pages."""
    return FileResponse(STATIC_DIR / "dashboard.html", media_type="text/html; charset=utf-8",
                        headers=SECURITY_HEADERS)


def static_files() -> StaticFiles:
    """Mounted at /static: the dashboard's script and style sheet."""
    return StaticFiles(directory=STATIC_DIR)
