"""Fixtures every kind of test shares: a migrated CRM on SQLite and, where the server answers, PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from router.bootstrap import Kefu, bootstrap
from router.crm import migrate
from router.crm.models import PasswordOrigin, User
from router.crm.passwords import hash_password
from router.crm.seed import seed_demo
from router.db import build_engine
from router.settings import Settings

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

POSTGRES_SERVER_URL = os.environ.get("KEFU_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_SERVER_URL = os.environ.get("KEFU_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _postgres_available() -> str | None:
    """None when the test PostgreSQL server answers, else why not."""
    engine = build_engine(POSTGRES_SERVER_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return None
    except sa.exc.OperationalError as error:
        return f"no PostgreSQL server at {POSTGRES_SERVER_URL} ({str(error).splitlines()[0]})"
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """URL of the PostgreSQL server's maintenance database, or skip with the reason."""
    reason = _postgres_available()
    if reason:
        pytest.skip(reason)
    return POSTGRES_SERVER_URL


@contextmanager
def fresh_postgres_database(server_url: str) -> Iterator[str]:
    """The URL of a new, empty database on the PostgreSQL server, dropped on leaving."""
    name = f"kefu_test_{uuid.uuid4().hex[:12]}"
    admin = build_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    with fresh_postgres_database(postgres_server) as url:
        yield url


@pytest.fixture(scope="session")
def redis_server() -> str:
    """URL of the test Redis server, or skip with the reason (tests keep to keys named after their own senders)."""
    client = redis.Redis.from_url(REDIS_SERVER_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.skip(f"no Redis server at {REDIS_SERVER_URL} ({error})")
    finally:
        client.close()
    return REDIS_SERVER_URL


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite file for one test."""
    return f"sqlite:///{tmp_path / 'kefu.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test that asks for it runs once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


def make_kefu(database_url: str, tmp_path: Path, **overrides: object) -> Kefu:
    """A bootstrapped kefu on a migrated database, with its files kept under ``tmp_path``."""
    settings = Settings(database_url=database_url, var_dir=tmp_path / "var", **overrides)
    kefu = bootstrap(settings)
    migrate.upgrade(kefu.engine)
    return kefu


# The password the tests' demo users chose themselves at "first login" (test data: the product has no such constant).
DEMO_PASSWORD = "demo-users-own-password"


@lru_cache(maxsize=1)
def _demo_password_hash() -> str:
    return hash_password(DEMO_PASSWORD)


def seed_demo_with_chosen_passwords(session: Session, data_dir: Path) -> None:
    """The demo organisation, each user as if they had already replaced the seed's password with DEMO_PASSWORD.

    One hash per test run instead of a login and a password change per user per test.
    """
    seed_demo(session, data_dir)
    session.execute(sa.update(User).values(password_hash=_demo_password_hash(), password_origin=PasswordOrigin.chosen))


def seeded_sqlite_kefu(work_dir: Path) -> Kefu:
    """A kefu on a migrated, demo-seeded SQLite CRM in ``work_dir``, for tests that start servers on it."""
    kefu = bootstrap(Settings(database_url=f"sqlite:///{work_dir / 'kefu.db'}", var_dir=work_dir / "var"))
    migrate.upgrade(kefu.engine)
    with kefu.uow() as uow:
        seed_demo_with_chosen_passwords(uow.session, kefu.settings.data_dir)
        uow.commit()
    return kefu


@pytest.fixture
def kefu(sqlite_url: str, tmp_path: Path) -> Iterator[Kefu]:
    """A kefu on a migrated SQLite CRM: the fast default for service-layer tests."""
    app = make_kefu(sqlite_url, tmp_path)
    yield app
    app.dispose()


@pytest.fixture
def kefu_any_db(database_url: str, tmp_path: Path) -> Iterator[Kefu]:
    """A kefu on a migrated CRM, once per database kind."""
    app = make_kefu(database_url, tmp_path)
    yield app
    app.dispose()
