"""One retraining run: export labels, stage data, train Rasa and the complaint model, gate both, register, promote."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from router.bootstrap import Kefu
from router.crm.models import ModelStatus, utcnow
from router.training import artifacts, complaints, registry
from router.training.export import export_training_data
from router.training.gate import GateReport, judge
from router.training.rasa_runner import LogSink, Prediction, evaluate_models, train_rasa_model
from router.training.staging import StagedProject, stage_project
from router.triage.store import IncompatibleModel, read_manifest

ProgressSink = Callable[[float, str], None]


@dataclass(frozen=True)
class RetrainResult:
    """The outcome of one run: the new version, whether it went live, and both gates' reports."""

    version: str
    promoted: bool
    intent_report: GateReport
    complaint_report: GateReport | None
    seconds: float
    data_hash: str

    @property
    def passed(self) -> bool:
        """Whether both gates passed (no complaint data means there was no complaint model to gate)."""
        return self.intent_report.passed and (self.complaint_report is None or self.complaint_report.passed)


@dataclass(frozen=True)
class TrainingSources:
    """Where a run reads its training data and where the gates' held-back sentences and complaints come from.

    Normally both are ``settings.data_dir``; an experiment may train on other data but must be judged on the
    project's own held-back examples, which is how a deliberately worse candidate is shown to be refused.
    """

    data_dir: Path
    evaluation_data_dir: Path


def _active_path(kefu: Kefu, kind: str) -> Path | None:
    # A retrain may run on any worker: the active model comes from the store where this machine lacks its files.
    active = registry.active_on_this_machine(kefu.reader, kind, kefu.settings.models_dir)
    return active[0] if active is not None else None


def _previous_nlu_model(kefu: Kefu) -> Path | None:
    path = _active_path(kefu, registry.NLU)
    return path if path is not None and path.exists() else None


def _intent_gate(
    kefu: Kefu, candidate: Path, evaluation: StagedProject, work_dir: Path, tolerance: float
) -> GateReport:
    if not evaluation.heldout_examples:
        return judge([], None, tolerance)
    previous = _previous_nlu_model(kefu)
    models = {"candidate": candidate, **({"previous": previous} if previous else {})}
    predictions: dict[str, list[Prediction]] = evaluate_models(
        models, evaluation.heldout, work_dir, kefu.settings.project_dir
    )
    return judge(predictions["candidate"], predictions.get("previous"), tolerance)


def _verdict(report: GateReport | None) -> str:
    if report is None:
        return "not run (no complaint data)"
    return ("passed" if report.passed else "refused") + " — " + "; ".join(report.reasons)


def _record(
    kefu: Kefu,
    version: str,
    staged: StagedProject,
    nlu_model: Path,
    intent_report: GateReport,
    triage: tuple[complaints.ComplaintCandidate, GateReport, int] | None,
    user_id: int | None,
) -> ModelStatus:
    """Register both models under one version, refused together when either gate refused."""
    complaint_passed = triage is None or triage[1].passed
    status = ModelStatus.candidate if intent_report.passed and complaint_passed else ModelStatus.refused
    metrics = {"gate": intent_report.as_dict(), "heldout_examples": len(staged.heldout_examples)}
    # Read and pack both models for the model store before the transaction, which then only writes.
    nlu_packed = artifacts.pack(nlu_model)
    triage_packed = artifacts.pack(triage[0].path) if triage is not None else None
    with kefu.uow() as uow:
        registry.register(
            uow.session,
            registry.NLU,
            version,
            nlu_model,
            staged.data_hash,
            metrics,
            status,
            user_id,
            packed=nlu_packed,
        )
        if triage is not None:
            candidate, report, heldout = triage
            triage_metrics = {**candidate.metrics, "gate": report.as_dict(), "heldout_examples": heldout}
            registry.register(
                uow.session,
                registry.TRIAGE,
                version,
                candidate.path,
                staged.data_hash,
                triage_metrics,
                status,
                user_id,
                packed=triage_packed,
            )
        uow.commit()
    return status


def retrain(
    kefu: Kefu,
    progress: ProgressSink,
    log: LogSink,
    user_id: int | None = None,
    tolerance: float | None = None,
    auto_promote: bool = True,
    sources: TrainingSources | None = None,
) -> RetrainResult:
    """Run the whole retraining; the version goes live only when both gates pass and ``auto_promote`` is set."""
    started = time.monotonic()
    settings = kefu.settings
    tolerance = settings.gate_tolerance if tolerance is None else tolerance
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
    heldout_complaints = complaints.read_complaints(sources.evaluation_data_dir).split()[1]
    log(
        f"{len(evaluation.heldout_examples)} held-back sentences and {len(heldout_complaints)} held-back complaints "
        f"for the gates; data hash {staged.data_hash}"
    )
    progress(0.1, "training the assistant (Rasa)")
    nlu_model = train_rasa_model(
        staged,
        settings.project_dir,
        registry.version_path(settings.models_dir, registry.NLU, version).parent,
        version,
        log,
    )
    progress(0.6, "training the complaint model")
    candidate = complaints.train_candidate(kefu, sources.data_dir, heldout_complaints, version, log)
    progress(0.7, "evaluating the new and the active models on the held-back sentences and complaints")
    intent_report = _intent_gate(kefu, nlu_model, evaluation, work_dir / "evaluation-results", tolerance)
    complaint_report = (
        complaints.gate(kefu, candidate.path, heldout_complaints, tolerance) if candidate is not None else None
    )
    log(f"intent gate: {_verdict(intent_report)}")
    log(f"complaint gate: {_verdict(complaint_report)}")
    progress(0.9, "recording the new version")
    triage = (candidate, complaint_report, len(heldout_complaints)) if candidate and complaint_report else None
    status = _record(kefu, version, staged, nlu_model, intent_report, triage, user_id)
    passed = status is ModelStatus.candidate
    promoted = passed and auto_promote
    if promoted:
        progress(0.95, "promoting and reloading the running servers")
        promotion = registry.promote(
            kefu.uow,
            version,
            settings.models_dir,
            settings.rasa_url,
            user_id,
            rasa_token=settings.rasa_token,
            rasa_pulls=settings.model_server,
        )
        log(promotion.rasa_message)
    progress(1.0, f"{version}: " + ("promoted" if promoted else "kept as candidate" if passed else "refused"))
    seconds = round(time.monotonic() - started, 1)
    return RetrainResult(version, promoted, intent_report, complaint_report, seconds, staged.data_hash)


def needs_training(kefu: Kefu) -> bool:
    """Whether no usable active assistant model exists, or the active complaint model is one this kefu cannot
    read (an older format after an upgrade): what ``kefu train --if-missing`` checks."""
    if _previous_nlu_model(kefu) is None:
        return True
    triage = _active_path(kefu, registry.TRIAGE)
    if triage is None:
        return False
    try:
        read_manifest(triage)
    except IncompatibleModel:
        return True
    return False
