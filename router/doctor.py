"""``kefu doctor``: every check a newcomer's setup can fail, each with the fix."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from urllib.parse import quote

import httpx
from rich.console import Console
from rich.table import Table

from router import preflight
from router.crm import migrate
from router.db import build_engine
from router.settings import Settings


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def _interpreter(_settings: Settings) -> Iterator[Check]:
    version = ".".join(map(str, sys.version_info[:3]))
    yield Check(
        "Python 3.10", sys.version_info[:2] == (3, 10), version, "run `make run`, which builds .venv with Python 3.10"
    )


def differences_from_lock(lock: Path) -> list[str]:
    """Each package pinned in ``lock`` whose installed version differs, as "name installed (locked version)"."""
    differences = []
    for line in lock.read_text(encoding="utf-8").splitlines():
        name, separator, locked = line.partition("==")
        if line.startswith("#") or not separator:
            continue
        try:
            installed = metadata.version(name.strip())
        except metadata.PackageNotFoundError:
            installed = "missing"
        if installed != locked.strip():
            differences.append(f"{name.strip()} {installed} (locked {locked.strip()})")
    return differences


def _install(settings: Settings) -> Iterator[Check]:
    # The lock is what scripts/install puts in .venv; reading the installed versions in this process takes a
    # fraction of a second, where `pip check` took seconds and missed a package at the wrong version.
    lock = settings.project_dir / "requirements.lock"
    if not lock.exists():
        yield Check("dependencies", True, f"no {lock.name} beside the code: installed as a package")
        return
    differences = differences_from_lock(lock)
    found = f"as {lock.name} pins" if not differences else f"{len(differences)} differ: {', '.join(differences[:3])}"
    yield Check("dependencies", not differences, found, "run `scripts/install`")


def _database(settings: Settings) -> Iterator[Check]:
    engine = build_engine(settings.database_url)
    try:
        problem = preflight.database_problem(engine)
        yield Check(
            "database reachable",
            problem is None,
            problem.what if problem else settings.database_url,
            problem.fix if problem else "",
        )
        if problem is None:
            current, head = migrate.current_revision(engine), migrate.head_revision()
            yield Check("database migrated", current == head, f"at {current}, code at {head}", "run `kefu db upgrade`")
    finally:
        engine.dispose()


def running_kefu_service(settings: Settings, setting: str, port: int) -> str | None:
    """The name of this kefu's process answering on ``port`` (a ``kefu run`` already up), else None."""
    base = f"http://127.0.0.1:{port}"
    name, url = {
        "KEFU_WEB_PORT": ("web app", f"{base}/healthz"),
        "KEFU_RASA_PORT": ("Rasa server", f"{base}/status?token={quote(settings.rasa_token, safe='')}"),
        "KEFU_ACTION_PORT": ("action server", f"{base}/health"),
    }[setting]
    try:
        response = httpx.get(url, timeout=3)
    except httpx.HTTPError:
        return None  # not HTTP at all
    if setting == "KEFU_WEB_PORT":
        # The web app reports its database, up (200) or down (503).
        ours = response.status_code in (200, 503) and '"database"' in response.text
    else:
        ours = response.status_code == 200  # Rasa answers /status only with this setup's token
    return name if ours else None


def _ports(settings: Settings) -> Iterator[Check]:
    for setting, port in preflight.kefu_ports(settings).items():
        if not preflight.port_in_use("127.0.0.1", port):
            yield Check(f"port {port} free", True, setting)
        elif (service := running_kefu_service(settings, setting, port)) is not None:
            yield Check(f"port {port} free", True, f"kefu's {service} is running there")
        else:
            problem = preflight.port_problem(port, setting)
            yield Check(f"port {port} free", False, problem.what, problem.fix)


def _models(settings: Settings) -> Iterator[Check]:
    nlu = sorted((settings.models_dir / "nlu").glob("*.tar.gz"))
    yield Check("Rasa model", bool(nlu), nlu[-1].name if nlu else "none", "run `kefu train`")
    triage = settings.models_dir / "triage"
    yield Check("triage model", triage.exists(), str(triage), "run `kefu train`")


def _browser(_settings: Settings) -> Iterator[Check]:
    chromium = shutil.which("chromium")
    yield Check("chromium (browser tests)", chromium is not None, chromium or "missing", "apt-get install chromium")


CHECKS: list[Callable[[Settings], Iterator[Check]]] = [_interpreter, _install, _database, _ports, _models, _browser]


def run_checks(settings: Settings, console: Console) -> bool:
    """Print every check; True when nothing needs fixing."""
    table = Table(title="kefu doctor")
    for column in ("", "check", "found", "fix"):
        table.add_column(column)
    all_ok = True
    for check_group in CHECKS:
        for check in check_group(settings):
            all_ok &= check.ok
            table.add_row(
                "[green]✓[/]" if check.ok else "[red]✗[/]", check.name, check.detail, "" if check.ok else check.fix
            )
    console.print(table)
    return all_ok
