"""Log in and out of the console, and trade a username and password for an API token."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from pydantic import BaseModel
from starlette.responses import RedirectResponse, Response

from router.bootstrap import Kefu
from router.web.security import (
    API_TOKEN_MAX_AGE_S,
    SESSION_CSRF_KEY,
    SESSION_USER_KEY,
    CsrfRejected,
    NotAuthenticated,
    authenticate,
    get_kefu,
    issue_api_token,
    verify_csrf,
)
from router.web.templating import render

router = APIRouter()


def _safe_next(target: str) -> str:
    # Only same-site paths: an attacker's ?next=https://evil.example must not turn login into an open redirect.
    return target if target.startswith("/") and not target.startswith("//") else "/console"


@router.get("/login", include_in_schema=False)
def login_form(request: Request, next: str = "/console") -> Response:
    """The login page."""
    return render(request, "login.html", {"next": _safe_next(next), "error": None})


@router.post("/login", include_in_schema=False)
async def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    next: str = Form("/console"),
    kefu: Kefu = Depends(get_kefu),
) -> Response:
    """Check the password and start a session; a wrong login gets the form back with a 401 and no hint which part."""
    try:
        await verify_csrf(request)
    except CsrfRejected:
        return render(request, "login.html", {"next": _safe_next(next), "error": "csrf"}, status_code=403)
    with kefu.uow() as uow:
        user = authenticate(uow.session, username, password) if username and password else None
        user_id = user.id if user else None
    if user_id is None:
        return render(request, "login.html", {"next": _safe_next(next), "error": "credentials"}, status_code=401)
    request.session.clear()  # a fresh session (and CSRF token) at login defeats session fixation
    request.session[SESSION_USER_KEY] = user_id
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout", include_in_schema=False, dependencies=[Depends(verify_csrf)])
def logout(request: Request) -> Response:
    """End the session."""
    request.session.pop(SESSION_USER_KEY, None)
    request.session.pop(SESSION_CSRF_KEY, None)
    return RedirectResponse("/login", status_code=303)


class TokenRequest(BaseModel):
    username: str
    password: str


class TokenResponse(BaseModel):
    token: str
    token_type: str = "bearer"
    expires_in_s: int


@router.post("/api/tokens", response_model=TokenResponse, tags=["auth"])
def create_api_token(body: TokenRequest, kefu: Kefu = Depends(get_kefu)) -> TokenResponse:
    """Exchange a console login for a bearer token (send it as ``Authorization: Bearer …``; valid 30 days)."""
    with kefu.uow() as uow:
        user = authenticate(uow.session, body.username, body.password)
        user_id = user.id if user else None
    if user_id is None:
        raise NotAuthenticated("wrong username or password")
    return TokenResponse(token=issue_api_token(kefu, user_id), expires_in_s=API_TOKEN_MAX_AGE_S)
