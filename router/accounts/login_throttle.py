"""Failed-login throttling per IP address and per account, counted in the CRM database.

Every attempt is charged *before* the password is hashed (argon2 costs ~64 MiB and tens of milliseconds a guess),
in its own committed transaction, so a locked-out guesser never reaches the hasher and several web app processes
share one count. A successful login gives its charge back: the account starts afresh, the IP gets one attempt back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from router.crm.models import LoginThrottle, UtcDateTime
from router.db import insert_on_conflict
from router.errors import KefuError
from router.settings import Settings

MAX_KEY_LENGTH = 160


class LoginLocked(KefuError):
    """Too many failed logins from this IP address or for this account (HTTP 429 with Retry-After)."""

    def __init__(self, retry_after_s: int) -> None:
        minutes = max(1, math.ceil(retry_after_s / 60))
        super().__init__(f"too many failed logins: try again in {minutes} minute{'s' if minutes > 1 else ''}")
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class ThrottlePolicy:
    """How many attempts an account or an IP address gets per window before it is locked until the window ends."""

    per_account: int
    per_ip: int
    window: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> ThrottlePolicy:
        """The policy the ``KEFU_LOGIN_*`` settings describe."""
        return cls(
            per_account=settings.login_failures_per_account,
            per_ip=settings.login_failures_per_ip,
            window=timedelta(minutes=settings.login_lockout_minutes),
        )


def ip_key(address: str) -> str:
    """The counter of one client address."""
    return f"ip:{address}"[:MAX_KEY_LENGTH]


def account_key(username: str) -> str:
    """The counter of one username, whether or not such a user exists (so lockouts reveal nothing)."""
    return f"account:{username.strip().lower()}"[:MAX_KEY_LENGTH]


def _charge(session: Session, key: str, now: datetime, window: timedelta) -> tuple[int, datetime]:
    """Count one attempt on ``key`` (a new window if the last one ended); the count and when the window ends."""
    expired = LoginThrottle.window_ends_at <= sa.literal(now, UtcDateTime())
    new_end = sa.literal(now + window, UtcDateTime())
    statement = (
        insert_on_conflict(session)(LoginThrottle)
        .values(key=key, attempts=1, window_ends_at=now + window)
        .on_conflict_do_update(
            index_elements=[LoginThrottle.key],
            set_={
                "attempts": sa.case((expired, 1), else_=LoginThrottle.attempts + 1),
                "window_ends_at": sa.case((expired, new_end), else_=LoginThrottle.window_ends_at),
            },
        )
    )
    session.execute(statement)
    # The upsert holds the row's write lock until commit, so this reads our own count, not a neighbour's.
    row = session.execute(
        sa.select(LoginThrottle.attempts, LoginThrottle.window_ends_at).where(LoginThrottle.key == key)
    ).one()
    return row.attempts, row.window_ends_at


def charge_attempt(session: Session, policy: ThrottlePolicy, *, ip: str, username: str, now: datetime) -> int | None:
    """Count a login attempt against the IP and the account; seconds until retry if either is past its limit.

    Commit the charge whatever the answer: a refused attempt still counts, and the count must be seen by the
    other web app processes before anyone hashes a password.
    """
    locked_until = []
    for key, limit in ((ip_key(ip), policy.per_ip), (account_key(username), policy.per_account)):
        attempts, window_ends_at = _charge(session, key, now, policy.window)
        if attempts > limit:
            locked_until.append(window_ends_at)
    if not locked_until:
        return None
    # A window opened by a request that read the clock after ours but took the row lock first ends up to one
    # request's latency past now + window; nobody is told to wait longer than the window itself.
    wait = min(max(locked_until) - now, policy.window)
    return max(1, math.ceil(wait.total_seconds()))


def refund_success(session: Session, *, ip: str, username: str) -> None:
    """A correct password: the account's count starts again and the IP gets its attempt back."""
    session.execute(sa.delete(LoginThrottle).where(LoginThrottle.key == account_key(username)))
    session.execute(
        sa.update(LoginThrottle)
        .where(LoginThrottle.key == ip_key(ip), LoginThrottle.attempts > 0)
        .values(attempts=LoginThrottle.attempts - 1)
    )


def prune_expired(session: Session, now: datetime) -> int:
    """Delete counters whose window has ended (they would start afresh anyway); how many went."""
    return session.execute(sa.delete(LoginThrottle).where(LoginThrottle.window_ends_at <= now)).rowcount
