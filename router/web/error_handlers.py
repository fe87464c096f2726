"""Turn service-layer errors into HTTP answers: JSON under ``/api``, a bilingual page everywhere else."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, RedirectResponse, Response

from router.accounts.login_throttle import LoginLocked
from router.errors import Conflict, Forbidden, InvalidInput, KefuError, NotFound
from router.web.security import CHANGE_PASSWORD_PATH, CsrfRejected, NotAuthenticated, PasswordChangeRequired
from router.web.templating import render

_STATUS_BY_ERROR: dict[type[Exception], int] = {
    NotFound: 404,
    Conflict: 409,
    Forbidden: 403,
    InvalidInput: 422,
    CsrfRejected: 403,
    NotAuthenticated: 401,
    PasswordChangeRequired: 403,
    LoginLocked: 429,
}


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api") or "application/json" in request.headers.get("accept", "")


def error_response(request: Request, status_code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The one shape of every error: ``{"error": ..., "status": ...}`` for the API, an error page for people."""
    if _wants_json(request):
        if status_code == 401:
            headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
        return JSONResponse({"error": message, "status": status_code}, status_code=status_code, headers=headers)
    response = render(request, "error.html", {"status_code": status_code, "message": message}, status_code)
    response.headers.update(headers or {})
    return response


async def _kefu_error(request: Request, error: Exception) -> Response:
    status_code = next((code for kind, code in _STATUS_BY_ERROR.items() if isinstance(error, kind)), 400)
    if isinstance(error, NotAuthenticated) and not _wants_json(request):
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    if isinstance(error, PasswordChangeRequired) and not _wants_json(request):
        return RedirectResponse(f"{CHANGE_PASSWORD_PATH}?next={request.url.path}", status_code=303)
    headers = {"Retry-After": str(error.retry_after_s)} if isinstance(error, LoginLocked) else None
    return error_response(request, status_code, str(error) or "request refused", headers)


async def _stale(request: Request, _error: Exception) -> Response:
    # The ticket's version moved between reading and writing: someone else changed it first.
    return error_response(request, 409, "someone else changed this ticket at the same time; reload and try again")


async def _validation(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    details = "; ".join(
        f"{'.'.join(str(part) for part in item['loc'][1:]) or 'body'}: {item['msg']}" for item in error.errors()
    )
    return error_response(request, 422, f"invalid input: {details}")


async def _http(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    return error_response(request, error.status_code, str(error.detail))


def install_error_handlers(app: FastAPI) -> None:
    """Register every mapping on ``app``."""
    for kind in (KefuError, CsrfRejected, NotAuthenticated, PasswordChangeRequired):
        app.add_exception_handler(kind, _kefu_error)
    app.add_exception_handler(StaleDataError, _stale)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
