"""kefu's Rasa patches go in by one explicit call, and only on the Rasa version they were written for."""

from __future__ import annotations

from pathlib import Path

import pytest
import rasa
import rasa.core.processor
from rasa.core.actions.action import RemoteAction
from rasa.core.agent import Agent
from rasa.engine.runner.dask import DaskGraphRunner

from bot import patches
from bot.action_validation import validate_action_result
from bot.graph_runner import SequentialGraphRunner
from bot.tracker_store import KefuTrackerStore, _tracker_store_without_fallback


@pytest.fixture
def unpatched_rasa(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rasa as it ships, put back as it was after the test."""
    monkeypatch.setattr(rasa.core.processor, "DaskGraphRunner", DaskGraphRunner)
    monkeypatch.setattr(RemoteAction, "_validate_action_result", RemoteAction.__dict__["_validate_action_result"])
    monkeypatch.setattr(Agent, "_create_tracker_store", Agent.__dict__["_create_tracker_store"])


def _patched() -> tuple[bool, bool, bool]:
    return (
        rasa.core.processor.DaskGraphRunner is SequentialGraphRunner,
        RemoteAction._validate_action_result is validate_action_result,
        Agent._create_tracker_store is _tracker_store_without_fallback,
    )


@pytest.mark.usefixtures("unpatched_rasa")
def test_install_patches_the_rasa_it_was_written_for() -> None:
    assert rasa.__version__.startswith(patches.RASA_SERIES + ".")
    assert _patched() == (False, False, False)

    patches.install(rasa_version=rasa.__version__)
    assert _patched() == (True, True, True)
    patches.install(rasa_version="3.6.0")  # idempotent, any 3.6 release
    assert _patched() == (True, True, True)


@pytest.mark.usefixtures("unpatched_rasa")
@pytest.mark.parametrize("version", ["3.7.0", "3.5.17", "3.60.1", "4.0.0", "3", ""])
def test_install_refuses_another_rasa_and_patches_nothing(version: str) -> None:
    with pytest.raises(patches.UnsupportedRasaVersion, match=r"written for Rasa 3\.6\.x, this is Rasa "):
        patches.install(rasa_version=version)

    assert _patched() == (False, False, False)


@pytest.mark.usefixtures("unpatched_rasa")
def test_building_the_tracker_store_patches_nothing(tmp_path: Path) -> None:
    KefuTrackerStore(dialect="sqlite", db=str(tmp_path / "tracker.db"))

    assert _patched() == (False, False, False)
