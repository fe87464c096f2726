"""Admin page for console accounts: list, add, change role, disable/enable, reset password, revoke tokens."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from sqlalchemy import select
from starlette.responses import HTMLResponse, RedirectResponse

from router.accounts import users
from router.bootstrap import Kefu
from router.crm.models import Role, Team, User
from router.crm.unit_of_work import UnitOfWork
from router.errors import NotFound
from router.web.security import CurrentUser, get_kefu, require_role, verify_csrf
from router.web.templating import render

admin_user = require_role(Role.admin.value)
router = APIRouter(
    prefix="/admin/users", include_in_schema=False, dependencies=[Depends(admin_user), Depends(verify_csrf)]
)


def _page(request: Request, uow: UnitOfWork, **context: object) -> HTMLResponse:
    teams = uow.session.scalars(select(Team).order_by(Team.name)).all()
    response = render(
        request,
        "admin_users.html",
        {"users": users.list_users(uow.session), "teams": teams, "roles": [role.value for role in Role], **context},
    )
    # The page may carry a one-time password: no cache or history copy of it.
    response.headers["Cache-Control"] = "no-store"
    return response


def _user(uow: UnitOfWork, user_id: int) -> User:
    user = uow.session.get(User, user_id)
    if user is None:
        raise NotFound(f"no user {user_id}")
    return user


def _done(notice: str) -> RedirectResponse:
    return RedirectResponse(f"/admin/users?notice={quote(notice)}", status_code=303)


@router.get("", response_class=HTMLResponse)
def users_page(request: Request, notice: str = "", kefu: Kefu = Depends(get_kefu)) -> HTMLResponse:
    """Every account with its role, state and teams, and a form to add one."""
    with kefu.reader() as reader:
        return _page(request, reader, notice=notice)


@router.post("", response_class=HTMLResponse)
async def add_user(
    request: Request,
    username: str = Form(""),
    display_name: str = Form(""),
    role: str = Form(Role.agent.value),
    admin: CurrentUser = Depends(admin_user),
    kefu: Kefu = Depends(get_kefu),
) -> HTMLResponse:
    """Create the account and show its first password once; the new user must change it at first login."""
    teams = [str(team) for team in (await request.form()).getlist("teams")]
    with kefu.uow() as uow:
        user, password = users.add_user(
            uow.session, kefu.passwords, username, display_name, role, teams=teams, actor_id=admin.id
        )
        uow.commit()
        return _page(request, uow, new_password={"username": user.username, "password": password})


@router.post("/{user_id}/password", response_class=HTMLResponse)
def reset_password(
    request: Request, user_id: int, admin: CurrentUser = Depends(admin_user), kefu: Kefu = Depends(get_kefu)
) -> HTMLResponse:
    """Give the user a new generated password, shown once; their sessions and tokens end."""
    with kefu.uow() as uow:
        user = _user(uow, user_id)
        password = users.assign_password(uow.session, kefu.passwords, user, actor_id=admin.id)
        uow.commit()
        return _page(request, uow, new_password={"username": user.username, "password": password})


@router.post("/{user_id}/role")
def change_role(
    user_id: int, role: str = Form(""), admin: CurrentUser = Depends(admin_user), kefu: Kefu = Depends(get_kefu)
) -> RedirectResponse:
    """Make the user an agent, supervisor or admin."""
    with kefu.uow() as uow:
        user = _user(uow, user_id)
        users.set_role(uow.session, user, role, actor_id=admin.id)
        uow.commit()
    return _done(f"{user.username}: {role}")


# Switches that need nothing but the account: what each does and the notice the page shows after it.
ACCOUNT_SWITCHES: dict[str, tuple[Callable[..., None], str]] = {
    "disable": (users.disable, "已停用 disabled: their sessions and API tokens no longer work"),
    "enable": (users.enable, "已启用 enabled"),
    "revoke-tokens": (users.revoke_tokens, "API 令牌已吊销 API tokens revoked"),
}


@router.post("/{user_id}/{switch}")
def switch_account(
    user_id: int, switch: str, admin: CurrentUser = Depends(admin_user), kefu: Kefu = Depends(get_kefu)
) -> RedirectResponse:
    """Disable (sessions and tokens end at their next request), enable, or revoke the user's API tokens."""
    if switch not in ACCOUNT_SWITCHES:
        raise NotFound(f"no account action {switch!r}")
    change, notice = ACCOUNT_SWITCHES[switch]
    with kefu.uow() as uow:
        user = _user(uow, user_id)
        change(uow.session, user, actor_id=admin.id)
        uow.commit()
    return _done(f"{user.username} {notice}")
