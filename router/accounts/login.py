"""Checking a username and password behind the login throttle."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from router.accounts.login_throttle import LoginLocked, ThrottlePolicy, charge_attempt, refund_success
from router.accounts.users import MAX_PASSWORD_LENGTH
from router.bootstrap import Kefu
from router.crm.models import User, utcnow
from router.crm.passwords import Passwords


def authenticate(session: Session, passwords: Passwords, username: str, password: str) -> User | None:
    """The active user with this username and password, or None (same answer and time for an unknown user)."""
    user = session.scalar(select(User).where(User.username == username.strip()))
    # An unknown name still costs one hash, so timing does not tell which usernames exist.
    password_hash = user.password_hash if user else passwords.stand_in_hash
    matches = passwords.verify(password_hash, password[:MAX_PASSWORD_LENGTH])
    if user is None or not user.active or not matches or len(password) > MAX_PASSWORD_LENGTH:
        return None
    return user


def check_login(kefu: Kefu, *, username: str, password: str, ip: str) -> User | None:
    """The user these credentials belong to, or None; LoginLocked (before any hashing) past the throttle's limits."""
    policy = ThrottlePolicy.from_settings(kefu.settings)
    with kefu.uow() as uow:
        retry_after_s = charge_attempt(uow.session, policy, ip=ip, username=username, now=utcnow())
        uow.commit()
    if retry_after_s is not None:
        raise LoginLocked(retry_after_s)
    with kefu.uow() as uow:
        user = authenticate(uow.session, kefu.passwords, username, password)
        if user is not None:
            refund_success(uow.session, ip=ip, username=username)
            uow.commit()
    return user
