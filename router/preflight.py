"""Checks that turn the usual first-run failures into one line naming the setting to change."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from router.settings import Settings


@dataclass(frozen=True)
class Problem:
    """Something that stops kefu from starting, and what to do about it."""

    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.what} — {self.fix}"


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port`` (so our server could not bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def kefu_ports(settings: Settings) -> dict[str, int]:
    """The ports kefu's processes listen on, by the setting that moves each (the URLs follow the ports)."""
    return {
        "KEFU_RASA_PORT": settings.rasa_port,
        "KEFU_ACTION_PORT": settings.action_port,
        "KEFU_WEB_PORT": settings.web_port,
    }


def port_problem(port: int, setting: str) -> Problem:
    """What to say about a port another program holds."""
    return Problem(f"port {port} is already in use", f"stop what uses it or set {setting} to a free port")


def busy_ports(settings: Settings, ports: dict[int, str] | None = None) -> list[Problem]:
    """One problem per kefu port (by default :func:`kefu_ports`, else ``ports``: port -> its setting) that another
    program holds."""
    ports = ports or {port: name for name, port in kefu_ports(settings).items()}
    return [port_problem(port, name) for port, name in ports.items() if port_in_use("127.0.0.1", port)]


def database_problem(engine: Engine) -> Problem | None:
    """None when the CRM database answers, else why not."""
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        return Problem(
            f"cannot reach the database {engine.url.render_as_string(hide_password=True)} ({reason})",
            "start it or set KEFU_DATABASE_URL to a reachable SQLAlchemy URL",
        )
    return None


def schema_problem(engine: Engine) -> Problem | None:
    """None when the CRM's tables are at the revision this kefu's code needs, else what to run."""
    from router.crm import migrate

    current, needed = migrate.current_revision(engine), migrate.head_revision()
    if current == needed:
        return None
    where = engine.url.render_as_string(hide_password=True)
    state = "has no kefu tables yet" if current is None else f"is at revision {current}, this kefu needs {needed}"
    return Problem(f"the database {where} {state}", "run `kefu db upgrade`")
