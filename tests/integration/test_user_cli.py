"""`kefu user …` as an operator runs it (`user add` in a child process, the rest in-process), on SQLite and
PostgreSQL."""

from __future__ import annotations

import re

from argon2 import extract_parameters
from argon2.profiles import CHEAPEST

from router.accounts import users
from router.bootstrap import bootstrap
from router.crm import migrate
from router.crm.models import PasswordOrigin, Role
from router.settings import Settings
from tests.support.cli import invoke_kefu, run_kefu

PRINTED_PASSWORD = re.compile(r"password for (\S+): (\S+)")


def test_add_passwd_role_disable_enable_and_list(database_url: str, tmp_path) -> None:
    env = {"KEFU_DATABASE_URL": database_url, "KEFU_VAR_DIR": str(tmp_path / "var"), "COLUMNS": "200"}
    kefu = bootstrap(Settings(database_url=database_url, var_dir=tmp_path / "var"))
    migrate.upgrade(kefu.engine)
    try:
        added = invoke_kefu("user", "add", "mei", "--name", "梅 Mei", "--team", "logistics", env=env)
        assert added.returncode == 1 and "unknown team(s): logistics" in added.stdout  # no teams in an empty CRM
        added = run_kefu("user", "add", "mei", "--name", "梅 Mei", "--role", "supervisor", env=env)
        assert added.returncode == 0, added.stdout + added.stderr
        first = PRINTED_PASSWORD.search(added.stdout).group(2)
        assert invoke_kefu("user", "add", "MEI", env=env).returncode == 1  # usernames are unique whatever the case

        reset = invoke_kefu("user", "passwd", "mei", env=env)
        second = PRINTED_PASSWORD.search(reset.stdout).group(2)
        assert second != first
        assert invoke_kefu("user", "role", "mei", "admin", env=env).returncode == 0
        with kefu.uow() as uow:
            mei = users.get_user(uow.session, "mei")
            assert mei.role is Role.admin and mei.password_origin is PasswordOrigin.assigned
            assert kefu.passwords.verify(mei.password_hash, second)
            assert not kefu.passwords.verify(mei.password_hash, first)
            # Hashed as the settings say: the tests' cheap profile (tests/conftest.py), not a built-in default.
            assert extract_parameters(mei.password_hash) == CHEAPEST

        last_admin = invoke_kefu("user", "disable", "mei", env=env)
        assert last_admin.returncode == 1 and "last active admin" in last_admin.stdout
        assert invoke_kefu("user", "add", "root", "--role", "admin", env=env).returncode == 0
        assert invoke_kefu("user", "disable", "mei", env=env).returncode == 0
        listed = invoke_kefu("user", "list", env=env).stdout
        assert re.search(r"mei\s*│\s*梅 Mei\s*│\s*admin\s*│\s*disabled\s*│\s*set by admin", listed), listed
        assert invoke_kefu("user", "enable", "mei", env=env).returncode == 0
        assert "active" in invoke_kefu("user", "list", env=env).stdout.split("mei")[1].splitlines()[0]

        missing = invoke_kefu("user", "disable", "nobody", env=env)
        assert missing.returncode == 1 and "no user 'nobody'" in missing.stdout
        assert "Traceback" not in missing.stdout + missing.stderr
    finally:
        kefu.dispose()
