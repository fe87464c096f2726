"""Migration 0003: users from before it (all made by the demo seed, password "kefu-demo") count as demo accounts."""

from __future__ import annotations

import sqlalchemy as sa

from router.crm import migrate
from router.db import build_engine


def test_existing_users_must_replace_their_published_demo_password(database_url: str) -> None:
    engine = build_engine(database_url)
    try:
        migrate.upgrade(engine, "0002_job_heartbeat")
        with engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO users (username, display_name, password_hash, role, active, created_at) "
                    "VALUES ('admin', 'Admin', 'x', 'admin', true, CURRENT_TIMESTAMP)"
                )
            )
        migrate.upgrade(engine, "0003_user_accounts")
        with engine.connect() as connection:
            row = connection.execute(
                sa.text("SELECT password_origin, session_epoch, token_version FROM users WHERE username = 'admin'")
            ).one()
        assert tuple(row) == ("demo", 0, 0)
        migrate.downgrade(engine, "0002_job_heartbeat")
        assert "password_origin" not in {column["name"] for column in sa.inspect(engine).get_columns("users")}
        assert "login_throttle" not in sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()
