"""KEFU_ENV=production refuses to start the web app, the worker or `kefu run` on a forgeable key or demo passwords,
and any kefu command on the tests' cheap password hashing."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from router.accounts import users
from router.accounts.secret_key import UnsafeSecretKey, development_key, signing_key, weakness
from router.accounts.startup import demo_password_users
from router.bootstrap import bootstrap
from router.crm import migrate
from router.crm.seed import seed_demo
from router.settings import Settings
from tests.support.cli import invoke_kefu, run_kefu
from tests.support.crm import give_chosen_password
from tests.support.listening import free_port

STRONG_KEY = "rI7y0Qz3vXk9WmJp2cLs8HdTf5GbNa4eUo6KqYw1RtE"  # a test value, random-looking, not used anywhere else
UVICORN = [sys.executable, "-m", "uvicorn", "router.web.app:create_app", "--factory", "--port"]


def crm(tmp_path: Path, *, demo: bool) -> str:
    """A migrated SQLite CRM: the demo organisation (demo passwords) or one admin who chose their own password."""
    url = f"sqlite:///{tmp_path / 'kefu.db'}"
    kefu = bootstrap(Settings(database_url=url, var_dir=tmp_path / "var"))
    migrate.upgrade(kefu.engine)
    with kefu.uow() as uow:
        if demo:
            seed_demo(uow.session, kefu.passwords, kefu.settings.data_dir)
        else:
            users.add_user(uow.session, kefu.passwords, "boss", "Boss", "admin")
            give_chosen_password(uow.session, "boss", "boss-own-password")
        uow.commit()
    kefu.dispose()
    return url


def production_env(database_url: str, tmp_path: Path, secret_key: str | None) -> dict[str, str]:
    env = {
        "KEFU_ENV": "production",
        "KEFU_DATABASE_URL": database_url,
        "KEFU_VAR_DIR": str(tmp_path / "var"),
        "KEFU_WEB_PORT": str(free_port()),
        "KEFU_RASA_PORT": str(free_port()),
        "KEFU_ACTION_PORT": str(free_port()),
        "KEFU_RASA_TOKEN": secrets.token_urlsafe(32),
        "KEFU_ACTION_TOKEN": secrets.token_urlsafe(32),
        # Production's own hashing: the cheap one tests/conftest.py sets for every other kefu is refused here.
        "KEFU_PASSWORD_HASH_PROFILE": "rfc_9106_low_memory",
    }
    if secret_key is not None:
        env["KEFU_SECRET_KEY"] = secret_key
    return env


@pytest.mark.parametrize(
    ("secret_key", "reason"),
    [
        (None, "needs KEFU_SECRET_KEY"),
        ("", "needs KEFU_SECRET_KEY"),
        ("kefu-dev-secret-change-me", "old published default"),
        ("short-but-secret", "at least 32"),
        ("a" * 64, "too predictable"),
    ],
)
def test_web_app_and_worker_refuse_a_missing_or_weak_key(tmp_path: Path, secret_key: str | None, reason: str) -> None:
    env = production_env(crm(tmp_path, demo=False), tmp_path, secret_key)
    # The first case starts real child processes; the others run the same app in-process.
    for command in (["web"], ["worker", "--once"]) if secret_key is None else (["web"],):
        result = run_kefu(*command, env=env) if secret_key is None else invoke_kefu(*command, env=env)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "KEFU_SECRET_KEY" in result.stdout and reason in result.stdout
        assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "var" / "secret_key").exists()  # production never falls back to a generated key


def test_uvicorn_on_the_factory_refuses_too(tmp_path: Path) -> None:
    env = production_env(crm(tmp_path, demo=False), tmp_path, None)
    result = subprocess.run(
        [*UVICORN, env["KEFU_WEB_PORT"]],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0 and "KEFU_SECRET_KEY" in result.stderr


def test_production_refuses_to_start_the_web_app_without_the_rasa_token(tmp_path: Path) -> None:
    env = production_env(crm(tmp_path, demo=False), tmp_path, STRONG_KEY)
    del env["KEFU_RASA_TOKEN"]
    result = invoke_kefu("web", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "KEFU_RASA_TOKEN" in result.stdout
    assert not (tmp_path / "var" / "internal_tokens.json").exists()  # production never makes a token up


def test_demo_passwords_stop_production_until_each_is_replaced(tmp_path: Path) -> None:
    database_url = crm(tmp_path, demo=True)
    env = production_env(database_url, tmp_path, STRONG_KEY)
    for command in (["web"], ["worker", "--once"], ["run", "--no-train"]):
        result = run_kefu(*command, env=env, timeout=180) if command[0] == "run" else invoke_kefu(*command, env=env)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "demo passwords" in result.stdout and "kefu user passwd" in result.stdout and "admin" in result.stdout
    kefu = bootstrap(Settings(database_url=database_url, var_dir=tmp_path / "var"))
    demo_users = demo_password_users(kefu)
    assert {"admin", "lina", "zhanglei"} <= set(demo_users)
    # All but one replaced by what `kefu user passwd` does (test_user_cli.py runs the command itself); the last by
    # the command, as the refusal tells the operator.
    with kefu.uow() as uow:
        for username in demo_users:
            if username != "zhanglei":
                users.assign_password(uow.session, kefu.passwords, users.get_user(uow.session, username))
        uow.commit()
    kefu.dispose()
    still = invoke_kefu("worker", "--once", env=env)
    assert still.returncode == 1 and "zhanglei" in still.stdout and "lina" not in still.stdout
    assert invoke_kefu("user", "passwd", "zhanglei", env=env).returncode == 0
    assert invoke_kefu("worker", "--once", env=env).returncode == 0


def test_production_refuses_the_tests_cheap_password_hashing(tmp_path: Path) -> None:
    database_url = crm(tmp_path, demo=False)
    env = production_env(database_url, tmp_path, STRONG_KEY) | {"KEFU_PASSWORD_HASH_PROFILE": "cheapest"}
    worker = run_kefu("worker", "--once", env=env)
    assert worker.returncode == 1, worker.stdout + worker.stderr
    assert "KEFU_PASSWORD_HASH_PROFILE: cheapest is for tests" in worker.stdout and "Traceback" not in worker.stderr
    kefu = bootstrap(Settings(database_url=database_url, var_dir=tmp_path / "var"))
    with kefu.reader() as reader:
        given = users.get_user(reader.session, "boss").password_hash
    # `kefu user passwd` writes a hash without the start-up checks: it refuses too, and the stored hash stays.
    passwd = invoke_kefu("user", "passwd", "boss", env=env)
    assert passwd.returncode == 1 and "KEFU_PASSWORD_HASH_PROFILE: cheapest is for tests" in passwd.stdout
    assert "Traceback" not in passwd.stderr
    with kefu.reader() as reader:
        assert users.get_user(reader.session, "boss").password_hash == given
    kefu.dispose()


def test_production_starts_with_a_strong_key_and_no_demo_passwords(tmp_path: Path) -> None:
    env = production_env(crm(tmp_path, demo=False), tmp_path, STRONG_KEY)
    log_path = tmp_path / "web.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [*UVICORN, env["KEFU_WEB_PORT"]], env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and server.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{env['KEFU_WEB_PORT']}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        assert server.poll() is None, log_path.read_text()
        response = httpx.post(
            f"http://127.0.0.1:{env['KEFU_WEB_PORT']}/api/tokens",
            json={"username": "boss", "password": "boss-own-password"},
        )
        assert response.status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_key_strength_rules() -> None:
    assert weakness(STRONG_KEY) is None
    for _ in range(1000):  # what the hint and common tools generate always passes
        assert weakness(secrets.token_hex(16)) is None and weakness(secrets.token_urlsafe(48)) is None
    for weak in ("", "kefu-dev-secret-change-me", "x" * 31, "ab" * 40, "password" * 5, "0123456789abcdef" * 2):
        assert weakness(weak), weak


def test_the_old_published_key_is_refused_in_development_too(tmp_path: Path) -> None:
    settings = Settings(secret_key="kefu-dev-secret-change-me", var_dir=tmp_path)
    with pytest.raises(UnsafeSecretKey, match="old published default"):
        signing_key(settings)


def test_development_generates_one_private_key_and_reuses_it(tmp_path: Path) -> None:
    settings = Settings(var_dir=tmp_path / "var")
    first = signing_key(settings)
    assert weakness(first) is None
    assert (tmp_path / "var" / "secret_key").stat().st_mode & 0o777 == 0o600
    assert development_key(tmp_path / "var") == first == signing_key(Settings(var_dir=tmp_path / "var"))
    assert signing_key(Settings(var_dir=tmp_path / "elsewhere")) != first
