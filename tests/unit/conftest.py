"""Unit fixtures shared by the action tests: a demo-seeded SQLite CRM with a small real triage model active."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from router.bootstrap import Kefu
from router.crm.seed import seed_demo
from tests.support.crm import make_kefu
from tests.support.models import activate_triage
from tests.support.triage import small_triage_model


@pytest.fixture(scope="session")
def triage_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small triage model, copied once per test process: the registry only reads it where it lies."""
    return small_triage_model(tmp_path_factory.mktemp("triage") / "model")


@pytest.fixture
def crm(tmp_path: Path, triage_model_dir: Path) -> Iterator[Kefu]:
    """A demo-seeded SQLite CRM with the small triage model active."""
    kefu = make_kefu(f"sqlite:///{tmp_path / 'crm.db'}", tmp_path, models_dir=tmp_path / "models")
    with kefu.uow() as uow:
        seed_demo(uow.session, kefu.passwords, kefu.settings.data_dir)
        uow.commit()
    activate_triage(kefu, triage_model_dir)
    yield kefu
    kefu.dispose()
