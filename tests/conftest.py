"""Fixtures every kind of test shares: a migrated CRM on SQLite and, where the server answers, PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa

from router.bootstrap import Kefu, bootstrap
from router.db import build_engine
from router.settings import Settings
from tests.support.crm import CrmTemplates
from tests.support.databases import POSTGRES_SERVER_URL, REDIS_SERVER_URL, fresh_postgres_database
from tests.support.markers import MARKERS_VARIABLE
from tests.support.triage import default_triage_model

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
# Every kefu the tests make, in this process or a child, hashes console passwords at argon2's cheapest cost instead of
# production's ~0.3 CPU-seconds and 64 MiB a hash; tests/integration/test_seed.py checks what production stores.
os.environ.setdefault("KEFU_PASSWORD_HASH_PROFILE", "cheapest")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups into the test ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group the tests for pytest-xdist's ``--dist loadgroup``: each module runs whole on one worker, so its
    module-scoped servers start once, and the modules on the session's shared Rasa stack run on one worker together,
    so it starts once. On a worker, the modules that start Rasa go first: they are the long ones, and the short ones
    fill in around them."""
    modules_on_shared_stack = {item.nodeid.split("::")[0] for item in items if "rasa_stack" in item.fixturenames}
    group_of = {}
    for item in items:
        module = item.nodeid.split("::")[0]
        group_of[item] = "rasa_stack" if module in modules_on_shared_stack else module
        item.add_marker(pytest.mark.xdist_group(group_of[item]))
    if hasattr(config, "workerinput"):
        starting_rasa = {group_of[item] for item in items if item.get_closest_marker("rasa")}
        items.sort(key=lambda item: group_of[item] not in starting_rasa)  # a stable sort: each group's order kept


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tell the helpers that start Rasa or chromium which markers the test about to run carries (before any of its
    fixtures, session-wide ones included, is set up)."""
    os.environ[MARKERS_VARIABLE] = ",".join(sorted({marker.name for marker in item.iter_markers()}))


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
def database_kind(request: pytest.FixtureRequest) -> str:
    """Each test that asks for it, or for a fixture that does, runs once on SQLite and once on PostgreSQL."""
    if request.param == "postgresql":
        request.getfixturevalue("postgres_server")  # skips with the reason where there is none
    return request.param


@pytest.fixture
def database_url(database_kind: str, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database of each kind."""
    return request.getfixturevalue("sqlite_url" if database_kind == "sqlite" else "postgres_url")


@pytest.fixture(scope="session")
def default_triage_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default triage model trained from data/, with Chinese sentiment from our own set (no shared data sets),
    once per test process for every test that only reads it."""
    return default_triage_model(tmp_path_factory.mktemp("models") / "triage")


@pytest.fixture(scope="session")
def crm_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CrmTemplates]:
    """Migrated and demo-seeded CRMs made once per test process, copied into each test's fresh database."""
    templates = CrmTemplates(
        tmp_path_factory.mktemp("crm-templates"), None if _postgres_available() else POSTGRES_SERVER_URL
    )
    yield templates
    templates.drop()


@pytest.fixture
def kefu(tmp_path: Path, crm_templates: CrmTemplates) -> Iterator[Kefu]:
    """A kefu on a migrated SQLite CRM: the fast default for service-layer tests."""
    with crm_templates.copy("sqlite", seeded=False, work_dir=tmp_path) as url:
        app = bootstrap(Settings(database_url=url, var_dir=tmp_path / "var"))
        yield app
        app.dispose()


@pytest.fixture
def kefu_any_db(database_kind: str, tmp_path: Path, crm_templates: CrmTemplates) -> Iterator[Kefu]:
    """A kefu on a migrated CRM, once per database kind."""
    with crm_templates.copy(database_kind, seeded=False, work_dir=tmp_path) as url:
        app = bootstrap(Settings(database_url=url, var_dir=tmp_path / "var"))
        yield app
        app.dispose()
