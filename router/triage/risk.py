"""The risk model: whether a message shows a danger (safety, fraud, a legal threat) that sets a priority floor.

A keyword list misses what customers actually write ("there is a payment I do not recognise"), so beside the cues
in urgency.yml a classifier trained on real phrasings decides too. Each risk fires above its own threshold, picked
on out-of-fold probabilities so that nearly every danger in text the model did not see is caught: a false alarm
costs an agent a minute, a missed fire costs far more.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from router.errors import InvalidInput
from router.triage.classifier import TriageClassifier
from router.triage.config import NO_RISK, RISKS
from router.triage.urgency import RiskFinding

# Share of each risk's out-of-fold examples its threshold should catch.
TARGET_RISK_RECALL = 0.97
# Share of harmless out-of-fold messages a risk may flag: recall is bought with false alarms only up to here.
MOST_FALSE_ALARMS = 0.02
# A risk the model finds more likely than not always fires, however high the recall target would allow.
HIGHEST_THRESHOLD = 0.5


def risk_threshold(
    probabilities: np.ndarray,
    positive: np.ndarray,
    harmless: np.ndarray,
    target: float = TARGET_RISK_RECALL,
    most_false_alarms: float = MOST_FALSE_ALARMS,
) -> float:
    """The highest threshold that catches ``target`` of the positives, raised as far as needed to flag at most
    ``most_false_alarms`` of the harmless rows, and never above HIGHEST_THRESHOLD."""
    caught = np.sort(probabilities[positive])
    # The positives below the threshold are the lowest ones: at most (1 - target) of them may be missed.
    for_recall = float(caught[int(np.floor((1.0 - target) * len(caught)))]) if len(caught) else HIGHEST_THRESHOLD
    alarms = np.sort(probabilities[harmless])[::-1]
    allowed = int(np.floor(most_false_alarms * len(alarms)))
    # Just above the (allowed + 1)-th most alarming harmless row: only ``allowed`` of them reach it.
    for_alarms = float(np.nextafter(alarms[allowed], 1.0)) if allowed < len(alarms) else 0.0
    return min(HIGHEST_THRESHOLD, max(for_recall, for_alarms))


class RiskClassifier(TriageClassifier):
    """Labels none / safety / fraud / legal_threat; ``findings`` lists every risk above its threshold."""

    def __init__(self, recall_target: float = TARGET_RISK_RECALL) -> None:
        super().__init__(class_weight="balanced")
        self.recall_target = recall_target
        self.thresholds: dict[str, float] = {}
        # Which examples trained it (router.triage.training.examples_digest), so a retraining can reuse it.
        self.data_digest = ""
        self.metrics: dict[str, float] = {}

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
        """Train, then pick each risk's threshold for recall on out-of-fold probabilities; returns the figures."""
        unknown = sorted(set(labels) - {NO_RISK, *RISKS})
        if unknown:
            raise InvalidInput(f"risk labels must be {NO_RISK} or one of {list(RISKS)}, not {unknown}")
        metrics, truth, probabilities = self._fit(texts, labels)
        harmless = truth == NO_RISK
        self.thresholds = {}
        for column, risk in enumerate(self.labels):
            if risk == NO_RISK:
                continue
            threshold = risk_threshold(probabilities[:, column], truth == risk, harmless, self.recall_target)
            self.thresholds[risk] = round(threshold, 6)
            fired = probabilities[:, column] >= threshold
            metrics[f"{risk}_threshold"] = round(threshold, 4)
            metrics[f"{risk}_oof_recall"] = round(float(fired[truth == risk].mean()), 4)
            metrics[f"{risk}_oof_false_alarms"] = round(float(fired[harmless].mean()), 4) if harmless.any() else 0.0
        return metrics

    def findings(self, text: str, explain: int = 5) -> list[RiskFinding]:
        """The risks ``text`` shows, most probable first, each with the words that pushed towards it."""
        matrix, probabilities = self.probabilities([text])
        columns, values = matrix.indices, matrix.data
        found = []
        for column, risk in enumerate(self.labels):
            probability = float(probabilities[0, column])
            if risk in self.thresholds and probability >= self.thresholds[risk]:
                terms = self._terms(columns, values, column, explain) if explain else []
                found.append(RiskFinding(risk, round(probability, 4), self.thresholds[risk], terms))
        return sorted(found, key=lambda finding: -finding.probability)
