"""The evaluation gate: candidate and active model side by side on the same held-back sentences or complaints."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from sklearn.metrics import accuracy_score, f1_score

from router.training.rasa_runner import Prediction

TOP_CONFUSIONS = 10


@dataclass(frozen=True)
class ModelScores:
    """How one model did on the held-back examples (intents of sentences, or categories of complaints)."""

    accuracy: float
    macro_f1: float
    per_label_f1: dict[str, float]
    confusions: list[dict[str, Any]]
    examples: int


@dataclass
class GateReport:
    """The side-by-side comparison an admin reads before (or instead of) promotion."""

    candidate: ModelScores
    previous: ModelScores | None
    tolerance: float
    passed: bool
    reasons: list[str] = field(default_factory=list)
    per_label_change: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON for ``model_versions.metrics`` and the admin page."""
        return asdict(self)


def score(predictions: list[Prediction]) -> ModelScores:
    """Accuracy, macro-F1 over the expected labels, per-label F1 and the most frequent confusion pairs."""
    if not predictions:
        return ModelScores(0.0, 0.0, {}, [], 0)
    expected = [prediction.expected for prediction in predictions]
    predicted = [prediction.predicted for prediction in predictions]
    labels = sorted(set(expected))
    per_label = f1_score(expected, predicted, labels=labels, average=None, zero_division=0)
    confusions = Counter((e, p) for e, p in zip(expected, predicted, strict=True) if e != p).most_common(TOP_CONFUSIONS)
    return ModelScores(
        accuracy=round(float(accuracy_score(expected, predicted)), 4),
        macro_f1=round(float(f1_score(expected, predicted, labels=labels, average="macro", zero_division=0)), 4),
        per_label_f1={label: round(float(value), 4) for label, value in zip(labels, per_label, strict=True)},
        confusions=[{"expected": e, "predicted": p, "count": count} for (e, p), count in confusions],
        examples=len(predictions),
    )


def judge(
    candidate: list[Prediction],
    previous: list[Prediction] | None,
    tolerance: float,
    why_no_previous: str = "no active model to compare with",
) -> GateReport:
    """Pass the candidate unless its accuracy or macro-F1 falls more than ``tolerance`` below the previous model's."""
    candidate_scores = score(candidate)
    if previous is None:
        return GateReport(candidate_scores, None, tolerance, True, [why_no_previous])
    previous_scores = score(previous)
    reasons = []
    for metric in ("accuracy", "macro_f1"):
        new, old = getattr(candidate_scores, metric), getattr(previous_scores, metric)
        if new < old - tolerance:
            reasons.append(f"{metric} fell from {old:.3f} to {new:.3f} (tolerance {tolerance:.3f})")
    new_f1, old_f1 = candidate_scores.per_label_f1, previous_scores.per_label_f1
    changes = {
        label: round(new_f1.get(label, 0.0) - old_f1.get(label, 0.0), 4) for label in sorted(set(new_f1) | set(old_f1))
    }
    passed = not reasons
    if passed:
        reasons.append(
            f"accuracy {previous_scores.accuracy:.3f} → {candidate_scores.accuracy:.3f}, "
            f"macro-F1 {previous_scores.macro_f1:.3f} → {candidate_scores.macro_f1:.3f}"
        )
    return GateReport(candidate_scores, previous_scores, tolerance, passed, reasons, changes)
