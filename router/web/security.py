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
from router.crm.unit_of_work import ReadOnlyUnitOfWork, UnitOfWork
from router.errors import Forbidden

SESSION_USER_KEY = "user_id"
SESSION_EPOCH_KEY = "epoch"
SESSION_CSRF_KEY = "csrf"
CSRF_FORM_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
CHANGE_PASSWORD_PATH = "/account/password"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class NotAuthenticated(Exception):
    """No valid session or token: pages redirect to the login form, the API answers 401."""


class CsrfRejected(Exception):
    """A state-changing browser request without the session's CSRF token (HTTP 403)."""


class PasswordChangeRequired(Exception):
    """Someone else set this user's password: pages send them to choose their own, the API answers 403."""


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
    must_change_password: bool = False

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


def get_reader(kefu: Kefu = Depends(get_kefu)) -> Iterator[ReadOnlyUnitOfWork]:
    """One read-only unit of work for a request that only reads: it never takes (or waits for) the write lock."""
    with kefu.reader() as reader:
        yield reader


@dataclass(frozen=True)
class Credential:
    """Who a cookie or token says the caller is, and the revocation counter it was issued under."""

    user_id: int
    counter: int
    via_token: bool


def load_current_user(session: Session, credential: Credential) -> CurrentUser | None:
    """The web layer's view of the credential's user with agent and teams; None if gone, disabled or revoked."""
    user = session.scalar(
        select(User).where(User.id == credential.user_id).options(selectinload(User.agent).selectinload(Agent.teams))
    )
    if user is None or not user.active:
        return None
    if credential.counter != (user.token_version if credential.via_token else user.session_epoch):
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
        via_token=credential.via_token,
        must_change_password=user.must_change_password,
    )


def start_session(request: Request, user: User) -> None:
    """Log ``user`` into this browser with a fresh session (and CSRF token), which defeats session fixation."""
    request.session.clear()
    request.session[SESSION_USER_KEY] = user.id
    request.session[SESSION_EPOCH_KEY] = user.session_epoch


def _token_serializer(kefu: Kefu) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(kefu.secret_key, salt="kefu-api-token")


def api_token_lifetime_s(kefu: Kefu) -> int:
    """How long a bearer token is valid (``KEFU_API_TOKEN_HOURS``)."""
    return kefu.settings.api_token_hours * 3600


def issue_api_token(kefu: Kefu, user: User) -> str:
    """A signed bearer token for integrations; void when it expires, the user is disabled or their tokens revoked."""
    return _token_serializer(kefu).dumps({"uid": user.id, "tv": user.token_version})


def _token_credential(kefu: Kefu, token: str) -> Credential | None:
    try:
        payload = _token_serializer(kefu).loads(token, max_age=api_token_lifetime_s(kefu))
    except (BadSignature, SignatureExpired):
        return None
    if not isinstance(payload, dict):
        return None
    user_id, version = payload.get("uid"), payload.get("tv")
    if not isinstance(user_id, int) or not isinstance(version, int):
        return None
    return Credential(user_id=user_id, counter=version, via_token=True)


def _session_credential(request: Request) -> Credential | None:
    user_id, epoch = request.session.get(SESSION_USER_KEY), request.session.get(SESSION_EPOCH_KEY)
    if not isinstance(user_id, int) or not isinstance(epoch, int):
        return None
    return Credential(user_id=user_id, counter=epoch, via_token=False)


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


def authenticated_user(request: Request, kefu: Kefu = Depends(get_kefu)) -> CurrentUser:
    """The caller, from a bearer token or the session cookie, even one who must still change their password."""
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        credential = _token_credential(kefu, authorization[7:].strip())
    else:
        credential = _session_credential(request)
    if credential is None:
        raise NotAuthenticated("log in first")
    with kefu.reader() as reader:
        user = load_current_user(reader.session, credential)
    if user is None:
        request.session.pop(SESSION_USER_KEY, None)
        raise NotAuthenticated("this login was revoked or the account disabled; log in again")
    request.state.user = user  # the page layout shows who is logged in
    return user


def current_user(user: CurrentUser = Depends(authenticated_user)) -> CurrentUser:
    """The caller, who has chosen their own password; raises NotAuthenticated or PasswordChangeRequired otherwise."""
    if user.must_change_password:
        raise PasswordChangeRequired(f"choose your own password first at {CHANGE_PASSWORD_PATH}")
    return user


def require_role(*roles: str) -> Callable[..., CurrentUser]:
    """A dependency admitting only users with one of ``roles`` (403 for everyone else)."""
    allowed = frozenset(Role(role) for role in roles)

    def dependency(user: CurrentUser = Depends(current_user)) -> CurrentUser:
        if user.role not in allowed:
            raise Forbidden(f"this page is for {', '.join(sorted(role.value for role in allowed))} only")
        return user

    return dependency
