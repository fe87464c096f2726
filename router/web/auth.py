"""Log in and out, choose your own password, and trade a username and password for an API token."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from pydantic import BaseModel
from starlette.responses import RedirectResponse, Response

from router.accounts import users
from router.accounts.login import check_login
from router.accounts.login_throttle import LoginLocked
from router.bootstrap import Kefu
from router.crm.models import User
from router.errors import Forbidden, InvalidInput
from router.web.security import (
    CHANGE_PASSWORD_PATH,
    SESSION_CSRF_KEY,
    SESSION_EPOCH_KEY,
    SESSION_USER_KEY,
    CsrfRejected,
    CurrentUser,
    NotAuthenticated,
    api_token_lifetime_s,
    authenticated_user,
    current_user,
    get_kefu,
    issue_api_token,
    start_session,
    verify_csrf,
)
from router.web.templating import render

router = APIRouter()


def _safe_next(target: str) -> str:
    # Only same-site paths: an attacker's ?next=https://evil.example must not turn login into an open redirect.
    return target if target.startswith("/") and not target.startswith("//") else "/console"


def client_address(request: Request) -> str:
    """The caller's IP address as uvicorn saw it (behind a proxy, with ``--proxy-headers``, the forwarded one)."""
    return request.client.host if request.client else "unknown"


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
    context = {"next": _safe_next(next), "error": "credentials"}
    try:
        await verify_csrf(request)
    except CsrfRejected:
        return render(request, "login.html", {**context, "error": "csrf"}, status_code=403)
    if not username or not password:
        return render(request, "login.html", context, status_code=401)
    try:
        user = check_login(kefu, username=username, password=password, ip=client_address(request))
    except LoginLocked as locked:
        response = render(request, "login.html", {**context, "error": "locked", "message": str(locked)}, 429)
        response.headers["Retry-After"] = str(locked.retry_after_s)
        return response
    if user is None:
        return render(request, "login.html", context, status_code=401)
    start_session(request, user)
    if user.must_change_password:
        return RedirectResponse(f"{CHANGE_PASSWORD_PATH}?next={quote(_safe_next(next))}", status_code=303)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout", include_in_schema=False, dependencies=[Depends(verify_csrf)])
def logout(request: Request) -> Response:
    """End the session."""
    for key in (SESSION_USER_KEY, SESSION_EPOCH_KEY, SESSION_CSRF_KEY):
        request.session.pop(key, None)
    return RedirectResponse("/login", status_code=303)


@router.get(CHANGE_PASSWORD_PATH, include_in_schema=False)
def change_password_form(
    request: Request, next: str = "/console", user: CurrentUser = Depends(authenticated_user)
) -> Response:
    """Choose your own password (required before anything else when someone else set it)."""
    return render(request, "change_password.html", {"next": _safe_next(next), "forced": user.must_change_password})


@router.post(CHANGE_PASSWORD_PATH, include_in_schema=False, dependencies=[Depends(verify_csrf)])
def change_password(
    request: Request,
    current_password: str = Form(""),
    new_password: str = Form(""),
    repeat_password: str = Form(""),
    next: str = Form("/console"),
    user: CurrentUser = Depends(authenticated_user),
    kefu: Kefu = Depends(get_kefu),
) -> Response:
    """Replace the password; every other session and token of the user ends, this browser stays logged in."""
    context = {"next": _safe_next(next), "forced": user.must_change_password}
    try:
        if new_password != repeat_password:
            raise InvalidInput("the two new passwords differ")
        with kefu.uow() as uow:
            account = uow.session.get(User, user.id)
            users.choose_password(uow.session, kefu.passwords, account, current_password, new_password)
            uow.commit()
    except (InvalidInput, Forbidden) as error:
        status_code = 403 if isinstance(error, Forbidden) else 422
        return render(request, "change_password.html", {**context, "error": str(error)}, status_code=status_code)
    start_session(request, account)
    return RedirectResponse(_safe_next(next), status_code=303)


class TokenRequest(BaseModel):
    username: str
    password: str


class TokenResponse(BaseModel):
    token: str
    token_type: str = "bearer"
    expires_in_s: int


@router.post("/api/tokens", response_model=TokenResponse, tags=["auth"])
def create_api_token(body: TokenRequest, request: Request, kefu: Kefu = Depends(get_kefu)) -> TokenResponse:
    """Exchange a console login for a bearer token (send it as ``Authorization: Bearer …``).

    Valid for ``KEFU_API_TOKEN_HOURS`` (24 by default) or until revoked. Too many failed attempts answer 429 with
    ``Retry-After``; a user whose password someone else set must first choose their own in the console (403).
    """
    user = check_login(kefu, username=body.username, password=body.password, ip=client_address(request))
    if user is None:
        raise NotAuthenticated("wrong username or password")
    if user.must_change_password:
        raise Forbidden(f"log in to the console and choose your own password first ({CHANGE_PASSWORD_PATH})")
    return TokenResponse(token=issue_api_token(kefu, user), expires_in_s=api_token_lifetime_s(kefu))


@router.post("/api/tokens/revoke", status_code=204, tags=["auth"], dependencies=[Depends(verify_csrf)])
def revoke_api_tokens(user: CurrentUser = Depends(current_user), kefu: Kefu = Depends(get_kefu)) -> Response:
    """Void every bearer token issued to the caller so far, including the one making this call."""
    with kefu.uow() as uow:
        users.revoke_tokens(uow.session, uow.session.get(User, user.id), actor_id=user.id)
        uow.commit()
    return Response(status_code=204)
