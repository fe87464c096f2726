"""Who is calling: session or API-token login, role checks and CSRF protection, as FastAPI dependencies."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fastapi import Depends, Request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from router.bootstrap import Kefu
from router.crm.models import Agent, Role, User
from router.crm.passwords import verify_password
from router.crm.unit_of_work import UnitOfWork
from router.errors import Forbidden

SESSION_USER_KEY = "user_id"
SESSION_CSRF_KEY = "csrf"
CSRF_FORM_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
API_TOKEN_MAX_AGE_S = 30 * 24 * 3600
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class NotAuthenticated(Exception):
    """No valid session or token: pages redirect to the login form, the API answers 401."""


class CsrfRejected(Exception):
    """A state-changing browser request without the session's CSRF token (HTTP 403)."""


@dataclass(frozen=True)
class CurrentUser:
    """The logged-in person as the web layer needs them, detached from any database session."""

    id: int
    username: str
    display_name: str
    role: Role
    agent_id: int | None
    team_ids: frozenset[int]
    presence: str | None = None
    via_token: bool = False

    @property
    def is_supervisor(self) -> bool:
        """Supervisors and admins see every team's tickets."""
        return self.role in (Role.supervisor, Role.admin)


def get_kefu(request: Request) -> Kefu:
    """The process's kefu, set on the app by ``create_app``."""
    return request.app.state.kefu


def get_uow(kefu: Kefu = Depends(get_kefu)) -> Iterator[UnitOfWork]:
    """One unit of work per request; handlers commit what they mean to keep."""
    with kefu.uow() as uow:
        yield uow


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this username and password, or None (same answer for unknown user and bad password)."""
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None or not user.active or not verify_password(user.password_hash, password):
        return None
    return user


def load_current_user(session: Session, user_id: int, via_token: bool = False) -> CurrentUser | None:
    """The web layer's view of user ``user_id`` with their agent and teams, or None if gone or deactivated."""
    user = session.scalar(
        select(User).where(User.id == user_id).options(selectinload(User.agent).selectinload(Agent.teams))
    )
    if user is None or not user.active:
        return None
    agent = user.agent
    return CurrentUser(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=Role(user.role),
        agent_id=agent.id if agent else None,
        team_ids=frozenset(team.id for team in agent.teams) if agent else frozenset(),
        presence=agent.presence.value if agent else None,
        via_token=via_token,
    )


def _token_serializer(kefu: Kefu) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(kefu.settings.secret_key, salt="kefu-api-token")


def issue_api_token(kefu: Kefu, user_id: int) -> str:
    """A signed bearer token for integrations; valid 30 days, void once the user is deactivated."""
    return _token_serializer(kefu).dumps({"uid": user_id})


def _user_id_from_token(kefu: Kefu, token: str) -> int | None:
    try:
        payload = _token_serializer(kefu).loads(token, max_age=API_TOKEN_MAX_AGE_S)
    except (BadSignature, SignatureExpired):
        return None
    user_id = payload.get("uid") if isinstance(payload, dict) else None
    return user_id if isinstance(user_id, int) else None


def csrf_token(request: Request) -> str:
    """The session's CSRF token (made on first use); every form and browser API call must send it back."""
    token = request.session.get(SESSION_CSRF_KEY)
    if not token:
        token = secrets.token_urlsafe(32)
        request.session[SESSION_CSRF_KEY] = token
    return token


async def verify_csrf(request: Request) -> None:
    """Reject a cookie-authenticated state change that does not carry the session's CSRF token."""
    if request.method in _SAFE_METHODS or request.headers.get("authorization", "").lower().startswith("bearer "):
        return  # a bearer token is never sent by a browser on its own, so it cannot be forged cross-site
    expected = request.session.get(SESSION_CSRF_KEY, "")
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        sent = str((await request.form()).get(CSRF_FORM_FIELD, ""))
    if not expected or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise CsrfRejected("missing or wrong CSRF token; reload the page and try again")


def current_user(request: Request, kefu: Kefu = Depends(get_kefu)) -> CurrentUser:
    """The caller, from a bearer token or the session cookie; raises NotAuthenticated otherwise."""
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        user_id, via_token = _user_id_from_token(kefu, authorization[7:].strip()), True
    else:
        user_id, via_token = request.session.get(SESSION_USER_KEY), False
    if not isinstance(user_id, int):
        raise NotAuthenticated("log in first")
    with kefu.uow() as uow:
        user = load_current_user(uow.session, user_id, via_token=via_token)
    if user is None:
        request.session.pop(SESSION_USER_KEY, None)
        raise NotAuthenticated("this account no longer exists or was deactivated")
    request.state.user = user  # the page layout shows who is logged in
    return user


def require_role(*roles: str) -> Callable[..., CurrentUser]:
    """A dependency admitting only users with one of ``roles`` (403 for everyone else)."""
    allowed = frozenset(Role(role) for role in roles)

    def dependency(user: CurrentUser = Depends(current_user)) -> CurrentUser:
        if user.role not in allowed:
            raise Forbidden(f"this page is for {', '.join(sorted(role.value for role in allowed))} only")
        return user

    return dependency
