"""Run ``rasa train`` and ``rasa test nlu`` as subprocesses (the router never imports Rasa) and read their output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from router.errors import KefuError
from router.training.staging import StagedProject

LogSink = Callable[[str], None]
TRAIN_TIMEOUT_SECONDS = 1800
TEST_TIMEOUT_SECONDS = 900


class TrainingFailed(KefuError):
    """A training or evaluation subprocess failed; the message ends with its log tail."""


@dataclass(frozen=True)
class Prediction:
    """What a model said one held-back sentence means."""

    text: str
    expected: str
    predicted: str
    confidence: float


def rasa_executable() -> str:
    """The ``rasa`` next to this interpreter, so the venv's Rasa runs whatever PATH says."""
    return str(Path(sys.executable).with_name("rasa"))


def rasa_environment(project_dir: Path) -> dict[str, str]:
    """Environment for Rasa subprocesses: no telemetry, the project's custom components importable."""
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(project_dir), env.get("PYTHONPATH", "")]))
    return env


def _run(command: list[str], project_dir: Path, log: LogSink, timeout: float) -> None:
    with subprocess.Popen(
        command,
        cwd=project_dir,
        env=rasa_environment(project_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as process:
        tail: list[str] = []
        assert process.stdout is not None
        for line in process.stdout:
            log(line.rstrip("\n"))
            tail = [*tail[-39:], line]
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise TrainingFailed(f"{command[1]} timed out after {timeout:.0f}s") from None
    if returncode != 0:
        raise TrainingFailed(f"rasa {' '.join(command[1:3])} exited with {returncode}:\n{''.join(tail)}")


def train_rasa_model(staged: StagedProject, project_dir: Path, out_dir: Path, version: str, log: LogSink) -> Path:
    """Train the full Rasa model (NLU and dialogue) from ``staged``; returns ``out_dir/<version>.tar.gz``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    command = [rasa_executable(), "train", "--config", str(staged.config), "--domain", str(staged.domain_dir)]
    command += ["--data", str(staged.data_dir), "--out", str(out_dir), "--fixed-model-name", version]
    _run(command, project_dir, log, TRAIN_TIMEOUT_SECONDS)
    model = out_dir / f"{version}.tar.gz"
    if not model.exists():
        raise TrainingFailed(f"rasa train finished but wrote no {model}")
    return model


def _read_predictions(path: Path) -> list[Prediction]:
    if not path.exists():
        return []
    return [
        Prediction(
            text=row["text"],
            expected=row["intent"],
            predicted=(row.get("intent_prediction") or {}).get("name") or "none",
            confidence=float((row.get("intent_prediction") or {}).get("confidence") or 0.0),
        )
        for row in json.loads(path.read_text(encoding="utf-8"))
    ]


def start_evaluation(model: Path, heldout: Path, out_dir: Path, project_dir: Path) -> subprocess.Popen[str]:
    """Start ``rasa test nlu`` of ``model`` on ``heldout``; two can run side by side on two cores."""
    out_dir.mkdir(parents=True, exist_ok=True)
    command = [rasa_executable(), "test", "nlu", "--model", str(model), "--nlu", str(heldout)]
    command += ["--out", str(out_dir), "--no-plot", "--successes"]
    log_file = (out_dir / "rasa-test.log").open("w", encoding="utf-8")
    env = rasa_environment(project_dir)
    process = subprocess.Popen(command, cwd=project_dir, env=env, stdout=log_file, stderr=subprocess.STDOUT, text=True)
    log_file.close()
    return process


def finish_evaluation(process: subprocess.Popen[str], out_dir: Path) -> list[Prediction]:
    """Wait for an evaluation started by :func:`start_evaluation` and read every prediction it made."""
    try:
        returncode = process.wait(timeout=TEST_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        raise TrainingFailed(f"rasa test nlu timed out after {TEST_TIMEOUT_SECONDS}s") from None
    if returncode != 0:
        log_tail = (out_dir / "rasa-test.log").read_text(encoding="utf-8", errors="replace")[-3000:]
        raise TrainingFailed(f"rasa test nlu exited with {returncode}:\n{log_tail}")
    return _read_predictions(out_dir / "intent_successes.json") + _read_predictions(out_dir / "intent_errors.json")


def evaluate_models(
    models: dict[str, Path], heldout: Path, work_dir: Path, project_dir: Path
) -> dict[str, list[Prediction]]:
    """Predictions of each named model on the same held-back file, the evaluations running in parallel."""
    running = {name: start_evaluation(model, heldout, work_dir / name, project_dir) for name, model in models.items()}
    return {name: finish_evaluation(process, work_dir / name) for name, process in running.items()}
