"""Retrain time (Rasa NLU + dialogue, complaint model, evaluation gate) on the project's default data.

Runs two retrainings in a scratch CRM and models folder: the first has no model to compare with (and trains the
sentiment model once); the second is the steady state an admin's retrain button sees: train, evaluate the new and the
active assistant side by side on the held-back sentences and the new and the active complaint model on the held-back
complaints, promote. Target: the second at most 2 minutes on 2 cores.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from router.bootstrap import bootstrap
from router.crm import migrate
from router.settings import PROJECT_ROOT, Settings
from router.training.gate import GateReport
from router.training.pipeline import RetrainResult, retrain

TARGET_SECONDS = 120


def _quiet(*_: object) -> None:
    """Progress and Rasa's log are not part of the figures."""


def _run_twice(work_dir: Path) -> tuple[RetrainResult, RetrainResult]:
    data_dir = work_dir / "data"
    shutil.copytree(PROJECT_ROOT / "data", data_dir, ignore=shutil.ignore_patterns("reviewed"))
    settings = Settings(
        database_url=f"sqlite:///{work_dir / 'kefu.db'}",
        var_dir=work_dir / "var",
        data_dir=data_dir,
        models_dir=work_dir / "models",
        rasa_url="http://127.0.0.1:9",  # nothing to hot-reload here; promotion records the version only
    )
    kefu = bootstrap(settings)
    try:
        migrate.upgrade(kefu.engine)
        first = retrain(kefu, _quiet, _quiet)
        print(f"first retrain (no previous model): {first.seconds}s, promoted={first.promoted}", flush=True)
        second = retrain(kefu, _quiet, _quiet)
        print(f"second retrain (gated against the first): {second.seconds}s, promoted={second.promoted}", flush=True)
        return first, second
    finally:
        kefu.dispose()


def _gate_figures(report: GateReport | None) -> dict[str, object] | None:
    """One gate's verdict and the candidate's and active model's figures on the same held-back examples."""
    if report is None:
        return None
    return {
        "passed": report.passed,
        "accuracy": report.candidate.accuracy,
        "macro_f1": report.candidate.macro_f1,
        "previous_accuracy": report.previous.accuracy if report.previous else None,
        "previous_macro_f1": report.previous.macro_f1 if report.previous else None,
        "heldout_examples": report.candidate.examples,
    }


def main() -> None:
    """Print progress, then the figures as the last line."""
    with tempfile.TemporaryDirectory(prefix="kefu-retrain-") as scratch:
        first, second = _run_twice(Path(scratch))
    figures = {
        "seconds": second.seconds,
        "first_run_seconds": first.seconds,
        "promoted": second.promoted,
        "intent_gate": _gate_figures(second.intent_report),
        "complaint_gate": _gate_figures(second.complaint_report),
        "target_seconds": TARGET_SECONDS,
    }
    verdict = "met" if second.seconds <= TARGET_SECONDS else "missed"
    print(f"retrain {second.seconds}s: target <= {TARGET_SECONDS}s {verdict}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
