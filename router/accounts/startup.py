"""What the web app, the worker and ``kefu run`` check before serving anyone: no forgeable key, no demo passwords,
no Rasa API without its token."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from router.accounts.secret_key import UnsafeSecretKey, signing_key
from router.bootstrap import Kefu
from router.crm.models import PasswordOrigin, User
from router.errors import KefuError


class UnsafeToStart(KefuError):
    """Starting with this configuration would let strangers in; the message says which setting to fix."""


def demo_password_users(kefu: Kefu) -> list[str]:
    """Usernames whose password is still the one the demo seed generated."""
    with kefu.reader() as reader:
        return list(
            reader.session.scalars(
                select(User.username).where(User.password_origin == PasswordOrigin.demo).order_by(User.username)
            )
        )


def start_problems(kefu: Kefu) -> list[str]:
    """Every reason this process must not start, each naming what to change (none in a sound setup)."""
    problems = []
    try:
        signing_key(kefu.settings)
    except UnsafeSecretKey as error:
        problems.append(str(error))
    if kefu.settings.env == "production":
        if not kefu.settings.rasa_token:
            problems.append(
                "KEFU_ENV=production needs KEFU_RASA_TOKEN, the token Rasa's API is started with: without it the web "
                "app can neither relay customers' messages nor ask for ratings"
            )
        try:
            demo_users = demo_password_users(kefu)
        except SQLAlchemyError as error:
            reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
            problems.append(f"KEFU_ENV=production cannot check the accounts ({reason}): run `kefu db upgrade`")
        else:
            if demo_users:
                problems.append(
                    f"KEFU_ENV=production refuses demo passwords, still set for {', '.join(demo_users)}: "
                    "give each a new one with `kefu user passwd NAME`"
                )
    return problems


def ensure_safe_to_start(kefu: Kefu) -> None:
    """Raise UnsafeToStart listing every problem, or return when there is none."""
    problems = start_problems(kefu)
    if problems:
        raise UnsafeToStart("; ".join(problems))
