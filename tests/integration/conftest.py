"""Integration fixtures: a real Rasa server + action server over a migrated, seeded CRM."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from router.bootstrap import Kefu, bootstrap
from router.crm import migrate
from router.crm.seed import seed_demo
from router.settings import Settings
from tests.e2e.conftest import seeded_kefu
from tests.rasa_stack import RasaStack, running_stack


@pytest.fixture(scope="session")
def rasa_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RasaStack]:
    """Rasa (REST channel, HTTP API) and the action server on free ports, on a demo-seeded SQLite CRM."""
    work_dir = tmp_path_factory.mktemp("rasa-stack")
    database_url = f"sqlite:///{work_dir / 'kefu.db'}"
    kefu = bootstrap(Settings(database_url=database_url, var_dir=work_dir / "var"))
    migrate.upgrade(kefu.engine)
    with kefu.uow() as uow:
        seed_demo(uow.session, kefu.settings.data_dir)
        uow.commit()
    kefu.dispose()
    with running_stack(database_url, work_dir) as stack:
        yield stack


@pytest.fixture
def seeded(database_url: str, tmp_path: Path) -> Iterator[Kefu]:
    """A demo-seeded CRM (lina: logistics + after_sales; supervisor: every team), on SQLite and PostgreSQL."""
    with seeded_kefu(database_url, tmp_path) as kefu:
        yield kefu
