"""The one place errors become HTTP responses: `{"error": {"code", "message"}}`."""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tessera.errors import TRANSIENT_ERRORS, TesseraError

log = structlog.get_logger(__name__)
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed",
              413: "payload_too_large", 415: "unsupported_media_type", 429: "rate_limited"}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TesseraError)
    async def _tessera(_: Request, exc: TesseraError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
        return error_response(exc.http_status, exc.code, exc.message, headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", _describe(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    async def _dependency_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("api.dependency_down", path=request.url.path, error=repr(exc)[:300])
        return error_response(503, "service_unavailable", "a dependency (database, blob store or "
                              "queue) is briefly unavailable; retry shortly", {"Retry-After": "5"})

    # Handled by type, not in the catch-all below: Starlette re-raises whatever reaches the
    # catch-all after answering, and uvicorn then resets the client's keep-alive connection.
    for kind in TRANSIENT_ERRORS:
        if not issubclass(kind, TesseraError):
            app.add_exception_handler(kind, _dependency_down)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, TRANSIENT_ERRORS):  # raised outside the routes (a middleware)
            return await _dependency_down(request, exc)
        log.exception("api.unhandled", path=request.url.path)
        return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")


def _describe(errors: list[dict]) -> str:
    parts = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body",))
        parts.append(f"{where}: {error.get('msg', 'invalid')}" if where else error.get("msg", "invalid"))
    return "; ".join(parts) or "invalid request"
