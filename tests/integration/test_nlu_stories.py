"""`rasa data validate` is clean and every test story in tests/stories passes `rasa test` (understanding + dialogue)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.rasa_stack import PROJECT_ROOT, RASA, TRAINING_DATA, rasa_env, trained_model

pytestmark = pytest.mark.rasa


def run_rasa(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run a rasa command in the project and return its result."""
    return subprocess.run(
        [RASA, *arguments], cwd=PROJECT_ROOT, env=rasa_env(), capture_output=True, text=True, timeout=900
    )


def test_training_data_validates_without_errors() -> None:
    result = run_rasa("data", "validate", "--domain", "domain.yml", "--data", *TRAINING_DATA, "--config", "config.yml")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "No story structure conflicts found" in result.stdout + result.stderr


def test_every_test_story_passes(tmp_path: Path) -> None:
    model = trained_model()
    result = run_rasa(
        "test", "core", "--model", str(model), "--stories", "tests/stories", "--out", str(tmp_path), "--no-plot"
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    failed = tmp_path / "failed_test_stories.yml"
    failures = yaml.safe_load(failed.read_text(encoding="utf-8")) if failed.exists() else None
    assert not failures, failed.read_text(encoding="utf-8")
    report = yaml.safe_load((tmp_path / "story_report.json").read_text(encoding="utf-8"))
    assert report["conversation_accuracy"]["accuracy"] == 1.0, report["conversation_accuracy"]
