"""Console accounts: add users, set and choose passwords, roles, disable/enable, revoke sessions and tokens."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from router.crm.models import Agent, AuditEntry, PasswordOrigin, Presence, Role, Team, User
from router.crm.passwords import Passwords, generate_password
from router.errors import Conflict, Forbidden, InvalidInput, NotFound
from router.routing.presence import set_presence

MIN_PASSWORD_LENGTH = 10
# argon2 hashes any length at the same cost, but nobody types more; a megabyte "password" is an attack.
MAX_PASSWORD_LENGTH = 256
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


def check_new_password(password: str, username: str) -> None:
    """Refuse a password that is too short, too long, or the username itself."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"a password may have at most {MAX_PASSWORD_LENGTH} characters")
    if password.strip().lower() == username.strip().lower():
        raise InvalidInput("the password must not be the username")


def get_user(session: Session, username: str) -> User:
    """The user called ``username`` (any state), or NotFound."""
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        raise NotFound(f"no user {username.strip()!r}")
    return user


def list_users(session: Session) -> Sequence[User]:
    """Every user with their agent profile and teams, admins first, then by username."""
    order = {Role.admin: 0, Role.supervisor: 1, Role.agent: 2}
    users = session.scalars(select(User).options(selectinload(User.agent).selectinload(Agent.teams))).all()
    return sorted(users, key=lambda user: (order[Role(user.role)], user.username))


def _audit(session: Session, actor_id: int | None, action: str, user: User, **data: object) -> None:
    session.add(AuditEntry(actor_user_id=actor_id, action=action, target=f"user:{user.username}", data=data))


def _revoke_everything(user: User) -> None:
    user.session_epoch += 1
    user.token_version += 1


def add_user(
    session: Session,
    passwords: Passwords,
    username: str,
    display_name: str,
    role: Role | str,
    *,
    teams: Sequence[str] = (),
    actor_id: int | None = None,
) -> tuple[User, str]:
    """Create an active user with a generated password they must change at first login; returns both."""
    username = username.strip()
    if not USERNAME.fullmatch(username):
        raise InvalidInput("a username is 1-64 letters, digits or . _ @ - (starting with a letter or digit)")
    if session.scalar(select(func.count(User.id)).where(func.lower(User.username) == username.lower())):
        raise Conflict(f"the username {username!r} is taken")
    role = _role(role)
    password = generate_password()
    user = User(
        username=username,
        display_name=display_name.strip()[:128] or username,
        role=role,
        password_hash=passwords.hash(password),
        password_origin=PasswordOrigin.assigned,
    )
    session.add(user)
    if role is Role.agent:
        session.add(Agent(user=user, teams=_teams(session, teams)))
    elif teams:
        raise InvalidInput("only agents belong to teams")
    session.flush()
    _audit(session, actor_id, "user.add", user, role=role.value, teams=list(teams))
    return user, password


def _role(role: Role | str) -> Role:
    try:
        return Role(role)
    except ValueError as error:
        raise InvalidInput(f"unknown role {role!r}; use agent, supervisor or admin") from error


def _teams(session: Session, names: Sequence[str]) -> list[Team]:
    teams = session.scalars(select(Team).where(Team.name.in_(names))).all() if names else []
    unknown = set(names) - {team.name for team in teams}
    if unknown:
        raise InvalidInput(f"unknown team(s): {', '.join(sorted(unknown))}")
    return list(teams)


def assign_password(
    session: Session, passwords: Passwords, user: User, *, password: str | None = None, actor_id: int | None = None
) -> str:
    """Reset someone's password (generated unless given) to one they must change; their sessions and tokens end."""
    if password is None:
        password = generate_password()
    else:
        check_new_password(password, user.username)
    user.password_hash = passwords.hash(password)
    user.password_origin = PasswordOrigin.assigned
    _revoke_everything(user)
    _audit(session, actor_id, "user.password_reset", user)
    return password


def choose_password(session: Session, passwords: Passwords, user: User, current: str, new: str) -> None:
    """The user replaces their password; every other session and token of theirs stops working."""
    if not passwords.verify(user.password_hash, current[:MAX_PASSWORD_LENGTH]):
        raise Forbidden("the current password is wrong")
    check_new_password(new, user.username)
    if passwords.verify(user.password_hash, new):
        raise InvalidInput("choose a password different from the current one")
    user.password_hash = passwords.hash(new)
    user.password_origin = PasswordOrigin.chosen
    _revoke_everything(user)
    _audit(session, user.id, "user.password_changed", user)


def _refuse_removing_last_admin(session: Session, user: User) -> None:
    if Role(user.role) is not Role.admin or not user.active:
        return
    admins = session.scalar(select(func.count(User.id)).where(User.role == Role.admin, User.active.is_(True)))
    if admins <= 1:
        raise Conflict(f"{user.username} is the last active admin; make someone else admin first")


def set_role(session: Session, user: User, role: Role | str, *, actor_id: int | None = None) -> None:
    """Make ``user`` an agent, supervisor or admin; a new agent gets an agent profile without teams."""
    role = _role(role)
    if role is Role(user.role):
        return
    if role is not Role.admin:
        _refuse_removing_last_admin(session, user)
    before, user.role = Role(user.role), role
    if role is Role.agent and user.agent is None:
        session.add(Agent(user=user))
    _audit(session, actor_id, "user.role", user, before=before.value, after=role.value)


def disable(session: Session, user: User, *, actor_id: int | None = None) -> None:
    """Stop ``user`` from logging in; their sessions and tokens die and unstarted tickets go back to the queue."""
    if not user.active:
        return
    _refuse_removing_last_admin(session, user)
    user.active = False
    _revoke_everything(user)
    if user.agent is not None and user.agent.presence is not Presence.offline:
        set_presence(session, user.agent.id, Presence.offline)
    _audit(session, actor_id, "user.disable", user)


def enable(session: Session, user: User, *, actor_id: int | None = None) -> None:
    """Let a disabled user log in again (with the password they had)."""
    if user.active:
        return
    user.active = True
    _audit(session, actor_id, "user.enable", user)


def revoke_tokens(session: Session, user: User, *, actor_id: int | None = None) -> None:
    """Void every bearer token issued to ``user`` so far (sessions in browsers stay)."""
    user.token_version += 1
    _audit(session, actor_id, "user.tokens_revoked", user)
