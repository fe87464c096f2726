"""The kefu command sets up the database and explains failures in one line, as a newcomer would meet them.

Each command runs once as a child process; its further cases run in-process against the same app.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from router.cli import app
from router.crm import migrate
from tests.support.cli import KEFU, KEFU_SCRIPT, invoke_kefu, run_kefu
from tests.support.listening import free_port
from tests.support.web import wait_until_healthy


def test_db_upgrade_downgrade_and_current(database_url: str) -> None:
    env = {"KEFU_DATABASE_URL": database_url}
    upgraded = run_kefu("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert migrate.head_revision() in upgraded.stdout
    current = invoke_kefu("db", "current", env=env)
    assert f"database: {migrate.head_revision()}" in current.stdout
    downgraded = invoke_kefu("db", "downgrade", "base", env=env)
    assert downgraded.returncode == 0, downgraded.stderr
    assert "database: None" in invoke_kefu("db", "current", env=env).stdout


def test_seed_demo_twice_seeds_once_and_shows_the_password_only_the_first_time(sqlite_url: str) -> None:
    env = {"KEFU_DATABASE_URL": sqlite_url, "COLUMNS": "200"}
    first = run_kefu("seed-demo", env=env)
    assert first.returncode == 0, first.stderr
    assert "demo organisation created" in first.stdout
    password = re.search(r"admin\s*│\s*(\S+)\s*│\s*admin", first.stdout).group(1)
    assert len(password) >= 16 and "kefu-demo" not in first.stdout
    second = invoke_kefu("seed-demo", env=env)
    assert "already has users" in second.stdout
    assert password not in second.stdout and "kefu user passwd" in second.stdout


@pytest.mark.parametrize("command", [["db", "upgrade"], ["user", "list"], ["model", "list"]])
def test_unreachable_database_is_one_line_naming_the_setting(command: list[str]) -> None:
    result = invoke_kefu(*command, env={"KEFU_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere"})
    assert result.returncode == 1
    assert "KEFU_DATABASE_URL" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "command", [["user", "list"], ["model", "list"], ["db", "redact"], ["data", "export"], ["worker", "--once"]]
)
def test_a_command_on_a_database_never_migrated_says_to_upgrade_it(command: list[str], tmp_path: Path) -> None:
    env = {"KEFU_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}", "COLUMNS": "200"}
    result = invoke_kefu(*command, env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    [line] = result.stdout.splitlines()
    assert "has no kefu tables yet" in line and "run `kefu db upgrade`" in line


def test_malformed_database_url_is_a_clear_error() -> None:
    result = run_kefu("db", "current", env={"KEFU_DATABASE_URL": "not a url"})
    assert result.returncode != 0
    assert "KEFU_DATABASE_URL" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


# Each sub-app of `kefu`, a command of it, settings it cannot start with and the setting its one line must name.
BAD_SETTINGS = {
    "db": (
        ["db", "current"],
        {"KEFU_ENV": "production", "KEFU_PASSWORD_HASH_PROFILE": "cheapest"},
        "KEFU_PASSWORD_HASH_PROFILE",
    ),
    "tracker": (["tracker", "prune"], {"KEFU_TRACKER_RETENTION_DAYS": "-1"}, "KEFU_TRACKER_RETENTION_DAYS"),
    "turns": (["turns", "consume"], {"KEFU_RABBITMQ_URL": "http://rabbitmq"}, "KEFU_RABBITMQ_URL"),
    "telegram": (["telegram", "poll"], {"KEFU_RASA_PORT": "port-5005"}, "KEFU_RASA_PORT"),
    "analytics": (["analytics", "report", "--out", "{tmp_path}"], {"KEFU_WEB_PORT": "eighty"}, "KEFU_WEB_PORT"),
    "triage": (
        ["triage", "train-default"],
        {"KEFU_REVIEW_CONFIDENCE_THRESHOLD": "2"},
        "KEFU_REVIEW_CONFIDENCE_THRESHOLD",
    ),
    "data": (["data", "export"], {"KEFU_REDIS_URL": "localhost:6379"}, "KEFU_REDIS_URL"),
    "model": (["model", "list"], {"KEFU_API_TOKEN_HOURS": "0"}, "KEFU_API_TOKEN_HOURS"),
    "user": (["user", "list"], {"KEFU_DATABASE_URL": "nonsense://x"}, "KEFU_DATABASE_URL"),
}


def test_every_sub_app_is_checked_with_bad_settings() -> None:
    assert {group.name for group in app.registered_groups} == set(BAD_SETTINGS)


@pytest.mark.parametrize(("command", "bad", "setting"), BAD_SETTINGS.values(), ids=BAD_SETTINGS.keys())
def test_bad_settings_are_one_line_naming_the_setting_in_every_sub_app(
    command: list[str], bad: dict[str, str], setting: str, tmp_path: Path
) -> None:
    result = run_kefu(*(arg.format(tmp_path=tmp_path) for arg in command), env=bad, kefu=KEFU_SCRIPT)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    [line] = result.stdout.splitlines()
    assert line.startswith("✗ KEFU_") and setting in line


def test_run_refuses_a_busy_port_naming_the_setting(sqlite_url: str) -> None:
    with socket.socket() as occupant:
        occupant.bind(("127.0.0.1", 0))
        occupant.listen()
        port = occupant.getsockname()[1]
        result = run_kefu("run", env={"KEFU_DATABASE_URL": sqlite_url, "KEFU_WEB_PORT": str(port)})
    assert result.returncode == 1
    assert f"port {port} is already in use" in result.stdout
    assert "KEFU_WEB_PORT" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_doctor_reports_what_to_fix(tmp_path: Path) -> None:
    env = {"KEFU_DATABASE_URL": f"sqlite:///{tmp_path / 'kefu.db'}", "KEFU_MODELS_DIR": str(tmp_path / "models")}
    before = run_kefu("doctor", env=env)
    assert before.returncode == 1
    assert "kefu db upgrade" in before.stdout
    invoke_kefu("db", "upgrade", env=env)
    after = invoke_kefu("doctor", env=env)
    assert "kefu db upgrade" not in after.stdout
    assert "kefu train" in after.stdout  # no models in the fresh models dir


def test_doctor_recognises_its_own_running_kefu_and_its_port_advice_works(tmp_path: Path) -> None:
    env = {
        "KEFU_DATABASE_URL": f"sqlite:///{tmp_path / 'kefu.db'}",
        "KEFU_VAR_DIR": str(tmp_path / "var"),
        "KEFU_WEB_PORT": str(free_port()),
        "KEFU_ACTION_PORT": str(free_port()),
        "COLUMNS": "250",
    }
    assert invoke_kefu("db", "upgrade", env=env).returncode == 0
    log_path = tmp_path / "web.log"
    with log_path.open("w") as log:
        web = subprocess.Popen([*KEFU, "web"], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_healthy(f"http://127.0.0.1:{env['KEFU_WEB_PORT']}", web, log_path)
        with socket.socket() as occupant:  # another program on the Rasa port
            occupant.bind(("127.0.0.1", 0))
            occupant.listen()
            taken = occupant.getsockname()[1]
            before = invoke_kefu("doctor", env={**env, "KEFU_RASA_PORT": str(taken)})
            assert "kefu's web app is running there" in before.stdout, before.stdout
            assert f"port {taken} is already in use" in before.stdout
            assert "set KEFU_RASA_PORT to a free port" in before.stdout
            assert before.returncode == 1

            # Follow the advice: only the port changes, and every URL to Rasa follows it.
            moved = {**env, "KEFU_RASA_PORT": str(free_port())}
            after = invoke_kefu("doctor", env=moved)
            assert f"port {moved['KEFU_RASA_PORT']} free" in after.stdout
            assert "set KEFU_RASA_PORT" not in after.stdout and "kefu's web app is running there" in after.stdout
            urls = subprocess.run(
                [sys.executable, "-c", "from router.settings import get_settings as g; print(g().rasa_url)"],
                env={**os.environ, **moved},
                capture_output=True,
                text=True,
                check=True,
            )
            assert urls.stdout.strip() == f"http://127.0.0.1:{moved['KEFU_RASA_PORT']}"
    finally:
        web.terminate()
        web.wait(timeout=30)


@pytest.mark.parametrize("command", [[], ["db"], ["run"], ["doctor"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = (run_kefu if not command else invoke_kefu)(*command, "--help", env={})
    assert result.returncode == 0
    assert "Usage" in result.stdout
