"""One retraining run: export labels, stage data, train Rasa and the complaint model, gate, register, promote."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from router.bootstrap import Kefu
from router.crm.models import ModelStatus, utcnow
from router.training import registry
from router.training.export import REVIEWED_COMPLAINTS, export_training_data
from router.training.gate import DEFAULT_TOLERANCE, GateReport, judge
from router.training.inbox import normalise
from router.training.rasa_runner import LogSink, Prediction, evaluate_models, train_rasa_model
from router.training.staging import StagedProject, stage_project
from router.triage.datasets import read_texts
from router.triage.store import load_artifact
from router.triage.training import train_model_dir, train_sentiment

ProgressSink = Callable[[float, str], None]


@dataclass(frozen=True)
class RetrainResult:
    """The outcome of one run: the new version, whether it went live, and the gate's report."""

    version: str
    promoted: bool
    report: GateReport
    seconds: float
    data_hash: str


@dataclass(frozen=True)
class TrainingSources:
    """Where a run reads its training data and where the gate's held-back sentences come from.

    Normally both are ``settings.data_dir``; an experiment may train on other data but must be judged on the
    project's own held-back sentences, which is how a deliberately worse candidate is shown to be refused.
    """

    data_dir: Path
    evaluation_data_dir: Path


def _complaint_examples(data_dir: Path) -> tuple[list[str], list[str]]:
    """The shipped complaints plus the agents' corrections, a correction winning over the same text."""
    shipped, reviewed = data_dir / "triage" / "complaints.csv", data_dir / REVIEWED_COMPLAINTS
    if not shipped.exists():
        return [], []
    by_text: dict[str, tuple[str, str]] = {}
    # The export always writes the header; a file with nothing under it has no corrections yet.
    has_corrections = reviewed.exists() and len(reviewed.read_text(encoding="utf-8").splitlines()) > 1
    for path in (shipped, reviewed) if has_corrections else (shipped,):
        texts, labels = read_texts(path, "text", "category")
        by_text.update((normalise(text), (text, label)) for text, label in zip(texts, labels, strict=True))
    return [text for text, _ in by_text.values()], [label for _, label in by_text.values()]


def _active_path(kefu: Kefu, kind: str) -> Path | None:
    with kefu.uow() as uow:
        active = registry.active_model(uow.session, kind)
        return Path(active.path) if active is not None else None


def _plain(value: object) -> object:
    return value.item() if hasattr(value, "item") else str(value)


def _train_triage(kefu: Kefu, data_dir: Path, version: str, log: LogSink) -> tuple[Path, dict] | None:
    texts, labels = _complaint_examples(data_dir)
    if not texts:
        log(f"no complaint data in {data_dir / 'triage'}: the complaint model is not retrained")
        return None
    active = _active_path(kefu, registry.TRIAGE)
    # Sentiment does not depend on the labels reviewed here: reuse the active model's instead of a minute of training.
    if active is not None and active.exists():
        sentiment = load_artifact(active, "sentiment")
    else:
        sentiment = train_sentiment(kefu.settings.shared_data_dir, data_dir / "triage")
    out_dir = registry.version_path(kefu.settings.models_dir, registry.TRIAGE, version)
    # numpy numbers in the trainer's figures become plain JSON for the registry row.
    metrics = json.loads(json.dumps(train_model_dir(texts, labels, out_dir, sentiment), default=_plain))
    log(f"complaint model trained on {len(texts)} examples, written to {out_dir}")
    return out_dir, metrics


def _previous_nlu_model(kefu: Kefu) -> Path | None:
    path = _active_path(kefu, registry.NLU)
    return path if path is not None and path.exists() else None


def _gate(kefu: Kefu, candidate: Path, evaluation: StagedProject, work_dir: Path, tolerance: float) -> GateReport:
    if not evaluation.heldout_examples:
        return judge([], None, tolerance)
    previous = _previous_nlu_model(kefu)
    models = {"candidate": candidate, **({"previous": previous} if previous else {})}
    predictions: dict[str, list[Prediction]] = evaluate_models(
        models, evaluation.heldout, work_dir, kefu.settings.project_dir
    )
    return judge(predictions["candidate"], predictions.get("previous"), tolerance)


def retrain(
    kefu: Kefu,
    progress: ProgressSink,
    log: LogSink,
    user_id: int | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    auto_promote: bool = True,
    sources: TrainingSources | None = None,
) -> RetrainResult:
    """Run the whole retraining; the candidate goes live only when the gate passes and ``auto_promote`` is set."""
    started = time.monotonic()
    settings = kefu.settings
    sources = sources or TrainingSources(settings.data_dir, settings.data_dir)
    progress(0.02, "exporting reviewed labels")
    with kefu.uow() as uow:
        summary = export_training_data(uow.session, sources.data_dir, settings.project_dir)
    log(f"exported {summary.intent_examples} intent and {summary.complaint_examples} complaint examples")
    version = utcnow().strftime("%Y%m%d-%H%M%S-%f")
    work_dir = settings.var_dir / "training" / version
    progress(0.05, "staging training data")
    staged = stage_project(settings.project_dir, sources.data_dir, work_dir / "project")
    evaluation = (
        staged
        if sources.evaluation_data_dir == sources.data_dir
        else stage_project(settings.project_dir, sources.evaluation_data_dir, work_dir / "evaluation")
    )
    log(f"{len(evaluation.heldout_examples)} held-back sentences for the gate; data hash {staged.data_hash}")
    progress(0.1, "training the assistant (Rasa)")
    nlu_model = train_rasa_model(
        staged,
        settings.project_dir,
        registry.version_path(settings.models_dir, registry.NLU, version).parent,
        version,
        log,
    )
    progress(0.6, "training the complaint model")
    triage = _train_triage(kefu, sources.data_dir, version, log)
    progress(0.7, "evaluating the new and the active model on the held-back sentences")
    report = _gate(kefu, nlu_model, evaluation, work_dir / "evaluation-results", tolerance)
    log("gate: " + ("passed" if report.passed else "refused") + " — " + "; ".join(report.reasons))
    progress(0.9, "recording the new version")
    status = ModelStatus.candidate if report.passed else ModelStatus.refused
    metrics = {"gate": report.as_dict(), "heldout_examples": len(evaluation.heldout_examples)}
    with kefu.uow() as uow:
        registry.register(uow.session, registry.NLU, version, nlu_model, staged.data_hash, metrics, status, user_id)
        if triage is not None:
            triage_dir, triage_metrics = triage
            registry.register(
                uow.session, registry.TRIAGE, version, triage_dir, staged.data_hash, triage_metrics, status, user_id
            )
        uow.commit()
    promoted = report.passed and auto_promote
    if promoted:
        progress(0.95, "promoting and reloading the running servers")
        with kefu.uow() as uow:
            promotion = registry.promote(uow.session, version, settings.models_dir, settings.rasa_url, user_id)
            uow.commit()
        log(promotion.rasa_message)
    progress(1.0, f"{version}: " + ("promoted" if promoted else "kept as candidate" if report.passed else "refused"))
    return RetrainResult(version, promoted, report, round(time.monotonic() - started, 1), staged.data_hash)


def needs_training(kefu: Kefu) -> bool:
    """Whether no usable active assistant model exists (what ``kefu train --if-missing`` checks)."""
    return _previous_nlu_model(kefu) is None
