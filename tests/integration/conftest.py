"""Integration fixtures: a real Rasa server + action server over a migrated, seeded CRM."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from router.bootstrap import Kefu, bootstrap
from router.settings import Settings
from router.training.registry import active_model
from tests.support.crm import CrmTemplates, seeded_sqlite_kefu
from tests.support.listening import free_port
from tests.support.models import activate_triage
from tests.support.rasa_stack import RasaStack, running_stack
from tests.support.triage import small_triage_model


@pytest.fixture(scope="session")
def rasa_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RasaStack]:
    """Rasa (REST channel, HTTP API) and the action server on free ports, on a demo-seeded SQLite CRM."""
    work_dir = tmp_path_factory.mktemp("rasa-stack")
    kefu = seeded_sqlite_kefu(work_dir)
    kefu.dispose()
    with running_stack(kefu.settings.database_url, work_dir) as stack:
        yield stack


@pytest.fixture
def seeded(database_kind: str, tmp_path: Path, crm_templates: CrmTemplates) -> Iterator[Kefu]:
    """A demo-seeded CRM (lina: logistics + after_sales; supervisor: every team), on SQLite and PostgreSQL, whose
    Rasa URL points at a closed port: resolving never talks to anyone else's Rasa."""
    with crm_templates.copy(database_kind, seeded=True, work_dir=tmp_path) as url:
        kefu = bootstrap(
            Settings(database_url=url, var_dir=tmp_path / "var", rasa_url=f"http://127.0.0.1:{free_port()}")
        )
        yield kefu
        kefu.dispose()


@pytest.fixture(scope="module")
def stack_crm(rasa_stack: RasaStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kefu]:
    """The stack's CRM, talking to its Rasa with its token, with a triage model active so complaints are triaged."""
    kefu = bootstrap(
        Settings(database_url=rasa_stack.database_url, rasa_url=rasa_stack.rasa_url, rasa_token=rasa_stack.rasa_token)
    )
    with kefu.uow() as uow:
        has_triage = active_model(uow.session, "triage") is not None
    if not has_triage:
        activate_triage(kefu, small_triage_model(tmp_path_factory.mktemp("triage") / "model"))
    yield kefu
    kefu.dispose()
