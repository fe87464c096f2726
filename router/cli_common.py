"""What every ``kefu`` command starts from, in ``router/cli.py`` and in each sub-app's ``cli.py`` alike: the settings
and kefu, or one red line naming the setting to fix and exit code 1."""

from __future__ import annotations

from typing import NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from router.bootstrap import Kefu, bootstrap
from router.preflight import database_problem, schema_problem
from router.settings import Settings, get_settings

console = Console()


def fail(message: str) -> NoReturn:
    """Print ``message`` as one red line (not wrapped, whatever the terminal's width) and exit with code 1."""
    console.print(f"[bold red]✗[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code=1)


def settings_or_exit() -> Settings:
    """This process's settings; when a ``KEFU_*`` value is invalid, :func:`fail` naming each one."""
    try:
        return get_settings()
    except ValidationError as error:
        fail("; ".join(f"KEFU_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in error.errors()))


def kefu_or_exit(migrated: bool = True) -> Kefu:
    """kefu on the configured CRM, whose database answers and, when ``migrated``, has the tables this code needs;
    else :func:`fail` saying what to change. Commands that migrate the database themselves pass False."""
    kefu = bootstrap(settings_or_exit())
    problem = database_problem(kefu.engine) or (schema_problem(kefu.engine) if migrated else None)
    if problem:
        kefu.dispose()
        fail(str(problem))
    return kefu
