"""``kefu user add|passwd|disable|enable|role|revoke-tokens|list``: console accounts from the terminal."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.table import Table

from router.accounts import users
from router.bootstrap import Kefu
from router.cli_common import fail, kefu_or_exit
from router.crm.models import PasswordOrigin, Role, User
from router.crm.unit_of_work import UnitOfWork
from router.errors import KefuError

console = Console()
app = typer.Typer(
    help="Console accounts: add users, set passwords, change roles, disable/enable, revoke API tokens.",
    no_args_is_help=True,
)
PASSWORD_STATES = {
    PasswordOrigin.demo: "demo (must change)",
    PasswordOrigin.assigned: "set by admin (must change)",
    PasswordOrigin.chosen: "own",
}


@contextmanager
def _kefu() -> Iterator[Kefu]:
    """kefu on the configured CRM; a KefuError becomes one red line and exit code 1."""
    kefu = kefu_or_exit()
    try:
        yield kefu
    except KefuError as error:
        fail(str(error))
    finally:
        kefu.dispose()


def _show_password(username: str, password: str) -> None:
    console.print(f"  password for {username}: [bold]{password}[/]")
    console.print("  [dim]shown only now; they must choose their own at first login[/]")


def _change(username: str, change: Callable[[UnitOfWork, User], None], done: str) -> None:
    with _kefu() as kefu, kefu.uow() as uow:
        change(uow, users.get_user(uow.session, username))
        uow.commit()
    console.print(f"[green]✓[/] {username}: {done}")


@app.command("add")
def add(
    username: str = typer.Argument(..., help="Login name (letters, digits, . _ @ -)."),
    role: Role = typer.Option(Role.agent, help="agent, supervisor or admin."),
    name: str = typer.Option("", "--name", help="Display name (default: the username)."),
    team: list[str] = typer.Option([], "--team", help="A team the agent works in (repeat for several)."),
) -> None:
    """Add a user with a generated first password, printed once."""
    with _kefu() as kefu, kefu.uow() as uow:
        user, password = users.add_user(uow.session, kefu.passwords, username, name, role, teams=team)
        uow.commit()
    console.print(f"[green]✓[/] {user.username} added as {role.value}")
    _show_password(user.username, password)


@app.command("passwd")
def passwd(
    username: str = typer.Argument(..., help="Whose password to reset."),
    ask: bool = typer.Option(False, "--ask", help="Type the new password instead of generating one."),
) -> None:
    """Reset a password (generated and printed once, or typed with --ask); ends the user's sessions and tokens."""
    typed = typer.prompt("New password", hide_input=True, confirmation_prompt=True) if ask else None
    with _kefu() as kefu, kefu.uow() as uow:
        user = users.get_user(uow.session, username)
        password = users.assign_password(uow.session, kefu.passwords, user, password=typed)
        uow.commit()
    console.print(f"[green]✓[/] {username}: password reset; their sessions and API tokens no longer work")
    if typed is None:
        _show_password(username, password)


@app.command("disable")
def disable(username: str = typer.Argument(..., help="Who to lock out.")) -> None:
    """Lock a user out now: their sessions and API tokens stop working, unstarted tickets go back to the queue."""
    _change(username, lambda uow, user: users.disable(uow.session, user), "disabled")


@app.command("enable")
def enable(username: str = typer.Argument(..., help="Who to let in again.")) -> None:
    """Let a disabled user log in again."""
    _change(username, lambda uow, user: users.enable(uow.session, user), "enabled")


@app.command("role")
def role(
    username: str = typer.Argument(..., help="Whose role to change."),
    new_role: Role = typer.Argument(..., metavar="ROLE", help="agent, supervisor or admin."),
) -> None:
    """Make a user an agent, supervisor or admin."""
    _change(username, lambda uow, user: users.set_role(uow.session, user, new_role), f"now {new_role.value}")


@app.command("revoke-tokens")
def revoke_tokens(username: str = typer.Argument(..., help="Whose API tokens to void.")) -> None:
    """Void every API bearer token issued to a user so far."""
    _change(username, lambda uow, user: users.revoke_tokens(uow.session, user), "API tokens revoked")


@app.command("list")
def list_command() -> None:
    """Every user with role, state, password state and teams."""
    table = Table(title="Users")
    for column in ("user", "name", "role", "state", "password", "teams"):
        table.add_column(column)
    with _kefu() as kefu, kefu.uow() as uow:
        for user in users.list_users(uow.session):
            table.add_row(
                user.username,
                user.display_name,
                Role(user.role).value,
                "active" if user.active else "disabled",
                PASSWORD_STATES[PasswordOrigin(user.password_origin)],
                ", ".join(team.name for team in user.agent.teams) if user.agent else "",
            )
    console.print(table)
