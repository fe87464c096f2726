"""Registry: promotion moves the stable links and the CRM row, refusals need an audited reason, rollback works;
long-running processes follow the active version."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, select

from router.bootstrap import Kefu
from router.crm.models import AuditEntry, ModelArtifact, ModelStatus
from router.errors import Conflict, NotFound
from router.training import artifacts, registry
from router.training.hot_model import HotModel
from router.training.rasa_runner import rasa_environment
from tests.support.listening import free_port
from tests.support.models import register_version, stand_in_text


@pytest.fixture
def models_kefu(kefu_any_db: Kefu, tmp_path: Path) -> Kefu:
    kefu_any_db.settings.models_dir = tmp_path / "models"
    # Nothing listens here: promotion must still succeed and say the server will load the model on start.
    kefu_any_db.settings.rasa_url = f"http://127.0.0.1:{free_port()}"
    return kefu_any_db


def _promote(kefu: Kefu, version: str, reason: str = "", rollback: bool = False) -> registry.Promotion:
    settings = kefu.settings
    switch = registry.rollback if rollback else registry.promote
    return switch(kefu.uow, version, settings.models_dir, settings.rasa_url, None, reason)


def test_promote_then_rollback_moves_links_rows_and_audit(models_kefu: Kefu) -> None:
    models_dir = models_kefu.settings.models_dir
    register_version(models_kefu, "v1")
    register_version(models_kefu, "v2")

    first = _promote(models_kefu, "v1")
    assert not first.rasa_reloaded and "not reachable" in first.rasa_message
    _promote(models_kefu, "v2")
    assert stand_in_text(registry.active_link(models_dir, registry.NLU)) == "rasa model v2"
    assert (registry.active_link(models_dir, registry.TRIAGE) / "model.txt").read_text() == "triage v2"

    _promote(models_kefu, "v1", rollback=True)
    with models_kefu.uow() as uow:
        statuses = {(row.version, row.kind): row.status for row in registry.list_versions(uow.session)}
        actions = uow.session.execute(select(AuditEntry.action).order_by(AuditEntry.id)).scalars().all()
        assert registry.active_model(uow.session, registry.TRIAGE).version == "v1"
    assert (
        statuses[("v1", registry.NLU)] is ModelStatus.active and statuses[("v2", registry.NLU)] is ModelStatus.retired
    )
    assert stand_in_text(registry.active_link(models_dir, registry.NLU)) == "rasa model v1"
    assert actions == ["model.promote", "model.promote", "model.rollback"]
    with pytest.raises(Conflict, match="already the active"):
        _promote(models_kefu, "v1", rollback=True)
    with pytest.raises(NotFound):
        _promote(models_kefu, "v9")


def test_refused_version_needs_a_reason_which_is_audited(models_kefu: Kefu) -> None:
    register_version(models_kefu, "bad", ModelStatus.refused)
    with pytest.raises(Conflict, match="needs a reason"):
        _promote(models_kefu, "bad")
    with pytest.raises(Conflict, match="needs a reason"):
        _promote(models_kefu, "bad", reason="   ")
    _promote(models_kefu, "bad", reason="customers asked for the new intent today")
    with models_kefu.uow() as uow:
        entry = uow.session.execute(select(AuditEntry)).scalar_one()
        assert entry.action == "model.override"
        assert entry.data["override_reason"] == "customers asked for the new intent today"
        assert entry.data["gate_reasons"] == ["nlu: accuracy fell"]


def test_promotion_takes_the_files_from_the_store_or_this_machine_and_refuses_when_neither_has_them(
    models_kefu: Kefu,
) -> None:
    models_dir = models_kefu.settings.models_dir
    register_version(models_kefu, "v1")
    _promote(models_kefu, "v1")
    # Trained on another machine: this one has only the store's copy, and keeps its links on the files it has.
    register_version(models_kefu, "v2")
    registry.version_path(models_dir, registry.NLU, "v2").unlink()
    _promote(models_kefu, "v2")
    assert stand_in_text(registry.active_link(models_dir, registry.NLU)) == "rasa model v1"
    assert (registry.active_link(models_dir, registry.TRIAGE) / "model.txt").read_text() == "triage v2"
    # Registered before the model store existed: promoting it stores the files of this machine.
    register_version(models_kefu, "v0")
    with models_kefu.uow() as uow:
        uow.session.execute(delete(ModelArtifact).where(ModelArtifact.version == "v0"))
        uow.commit()
    _promote(models_kefu, "v0")
    with models_kefu.reader() as reader:
        assert artifacts.stored_kinds(reader.session, "v0") == {registry.NLU, registry.TRIAGE}
    # Neither in the store nor here: refused by name, and the active version stays.
    with models_kefu.uow() as uow:
        uow.session.execute(delete(ModelArtifact).where(ModelArtifact.version == "v2", ModelArtifact.kind == "nlu"))
        uow.commit()
    with pytest.raises(Conflict, match="gone"):
        _promote(models_kefu, "v2", rollback=True)
    with models_kefu.uow() as uow:
        assert registry.active_model(uow.session, registry.NLU).version == "v0"


def test_hot_model_follows_the_active_version(models_kefu: Kefu) -> None:
    register_version(models_kefu, "v1")
    register_version(models_kefu, "v2")
    loads: list[Path] = []

    def load(path: Path) -> str:
        loads.append(path)
        return (path / "model.txt").read_text(encoding="utf-8")

    triage = HotModel(models_kefu, registry.TRIAGE, load, check_seconds=0)
    assert triage.get() is None, "nothing trained yet"
    _promote(models_kefu, "v1")
    assert triage.get() == "triage v1"
    assert triage.get() == "triage v1" and len(loads) == 1, "an unchanged version is not reloaded"
    _promote(models_kefu, "v2")
    assert triage.get() == "triage v2"


def test_rasa_environment_makes_project_components_importable(tmp_path: Path) -> None:
    env = rasa_environment(tmp_path)
    assert env["RASA_TELEMETRY_ENABLED"] == "false"
    assert env["PYTHONPATH"].split(":")[0] == str(tmp_path)
