"""``kefu data export`` and ``kefu model list|promote|rollback`` from the terminal."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from router.bootstrap import Kefu
from router.crm.interactions import Turn, record_turns
from router.crm.models import ModelStatus, Speaker
from router.settings import get_settings
from router.training import registry
from router.training.cli import data_app, model_app
from router.training.labels import label_turns
from tests.support.crm import make_kefu
from tests.support.listening import free_port
from tests.support.models import stand_in_text, write_stand_in_rasa_model

runner = CliRunner()


@pytest.fixture
def cli_kefu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Kefu:
    """A CRM the commands find through the environment, as they would in a shell."""
    url = f"sqlite:///{tmp_path / 'kefu.db'}"
    overrides = {
        "KEFU_DATABASE_URL": url,
        "KEFU_DATA_DIR": str(tmp_path / "data"),
        "KEFU_MODELS_DIR": str(tmp_path / "models"),
        "KEFU_RASA_URL": f"http://127.0.0.1:{free_port()}",
    }
    for name, value in overrides.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    kefu = make_kefu(url, tmp_path, data_dir=tmp_path / "data", models_dir=tmp_path / "models")
    yield kefu
    kefu.dispose()
    get_settings.cache_clear()


def _invoke(app: typer.Typer, *args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_data_export_writes_the_reviewed_files(cli_kefu: Kefu) -> None:
    with cli_kefu.uow() as uow:
        [turn] = record_turns(uow.session, [Turn("k", "web:x", Speaker.customer, "yo", intent="nlu_fallback")])
        label_turns(uow.session, [turn.id], "greet", cli_kefu.settings.project_dir, None)
        uow.commit()
    result = _invoke(data_app, "export")
    assert result.exit_code == 0, result.output
    assert "1 intent examples" in result.output
    assert "- yo" in (cli_kefu.settings.data_dir / "reviewed" / "nlu.yml").read_text(encoding="utf-8")


def test_model_commands_list_refuse_without_reason_then_promote_and_roll_back(cli_kefu: Kefu) -> None:
    models_dir = cli_kefu.settings.models_dir
    for version, status in (("v1", ModelStatus.candidate), ("v2", ModelStatus.refused)):
        path = write_stand_in_rasa_model(registry.version_path(models_dir, registry.NLU, version), version)
        with cli_kefu.uow() as uow:
            registry.register(uow.session, registry.NLU, version, path, "h", {}, status, None)
            uow.commit()

    assert _invoke(model_app, "promote", "v1").exit_code == 0
    refused = _invoke(model_app, "promote", "v2")
    assert refused.exit_code == 1 and "needs a reason" in refused.output
    assert _invoke(model_app, "promote", "v2", "--reason", "hotfix", "--user", "").exit_code == 0
    rolled_back = _invoke(model_app, "rollback", "v1")
    assert rolled_back.exit_code == 0 and "v1 is active" in rolled_back.output
    listing = _invoke(model_app, "list").output
    assert "v1" in listing and "active" in listing and "retired" in listing
    assert stand_in_text(registry.active_link(models_dir, registry.NLU)) == "v1"
