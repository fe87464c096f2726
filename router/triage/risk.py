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
# Shares of harmless out-of-fold messages a risk may flag: recall is bought with false alarms only up to here.
# Most harmless examples are public questions about other things, easy to tell from a danger; the cap that bites
# is the one on our own harmless complaints ("the toaster is broken"), the messages a floor must not flood.
MOST_FALSE_ALARMS = 0.02
MOST_FALSE_ALARMS_ON_COMPLAINTS = 0.05
# A risk the model finds more likely than not always fires, however high the recall target would allow.
HIGHEST_THRESHOLD = 0.5
# A risk this many times further past its own threshold than another outweighs it. The thresholds are tiny (0.02 to
# 0.04), and the words of one danger lift every danger's class above "none": a card fraud report read 14 times past
# the fraud threshold and just past the safety one, and was filed under product_safety. Two dangers in one message
# stay when their lifts are within this factor; the cues catch a second danger the model's verdict hides.
OUTWEIGHS = 3.0


def _quiet_above(probabilities: np.ndarray, most: float) -> float:
    """The lowest threshold that at most ``most`` of these harmless rows reach."""
    alarms = np.sort(probabilities)[::-1]
    allowed = int(np.floor(most * len(alarms)))
    # Just above the (allowed + 1)-th most alarming harmless row: only ``allowed`` of them reach it.
    return float(np.nextafter(alarms[allowed], 1.0)) if allowed < len(alarms) else 0.0


def risk_threshold(
    probabilities: np.ndarray,
    positive: np.ndarray,
    harmless: np.ndarray,
    complaint: np.ndarray,
    target: float = TARGET_RISK_RECALL,
) -> float:
    """The highest threshold that catches ``target`` of the positives, raised as far as needed to flag at most
    MOST_FALSE_ALARMS of the harmless rows and MOST_FALSE_ALARMS_ON_COMPLAINTS of the harmless complaints among
    them, and never above HIGHEST_THRESHOLD."""
    caught = np.sort(probabilities[positive])
    # The positives below the threshold are the lowest ones: at most (1 - target) of them may be missed.
    for_recall = float(caught[int(np.floor((1.0 - target) * len(caught)))]) if len(caught) else HIGHEST_THRESHOLD
    for_alarms = max(
        _quiet_above(probabilities[harmless], MOST_FALSE_ALARMS),
        _quiet_above(probabilities[harmless & complaint], MOST_FALSE_ALARMS_ON_COMPLAINTS),
    )
    return min(HIGHEST_THRESHOLD, max(for_recall, for_alarms))


class RiskClassifier(TriageClassifier):
    """Labels none / safety / fraud / legal_threat; ``findings`` lists every risk above its threshold that no other
    risk outweighs."""

    # Every row is scored out of fold however many: the rare dangers need all their examples to set a threshold.
    one_fold_from = None

    def __init__(self, recall_target: float = TARGET_RISK_RECALL) -> None:
        super().__init__(class_weight=None)
        self.recall_target = recall_target
        self.thresholds: dict[str, float] = {}
        # Which examples trained it (router.triage.training.RiskExamples.digest), so a retraining can reuse it.
        self.data_digest = ""
        self.metrics: dict[str, float] = {}

    def fit(
        self, texts: Sequence[str], labels: Sequence[str], complaints: Sequence[bool] | None = None
    ) -> dict[str, float]:
        """Train, then pick each risk's threshold for recall on out-of-fold probabilities; returns the figures.

        ``complaints`` marks the texts that are customers' complaints (default: all), whose false alarms count most.
        """
        unknown = sorted(set(labels) - {NO_RISK, *RISKS})
        if unknown:
            raise InvalidInput(f"risk labels must be {NO_RISK} or one of {list(RISKS)}, not {unknown}")
        metrics, rows, truth, probabilities = self._fit(texts, labels)
        harmless = truth == NO_RISK
        complaint = np.ones(len(texts), dtype=bool) if complaints is None else np.asarray(complaints, dtype=bool)
        complaint = complaint[rows]
        self.thresholds = {}
        for column, risk in enumerate(self.labels):
            if risk == NO_RISK:
                continue
            threshold = risk_threshold(probabilities[:, column], truth == risk, harmless, complaint, self.recall_target)
            self.thresholds[risk] = round(threshold, 6)
            fired = probabilities[:, column] >= threshold
            metrics[f"{risk}_threshold"] = round(threshold, 4)
            metrics[f"{risk}_oof_recall"] = round(float(fired[truth == risk].mean()), 4)
            for name, rows_of in (("false_alarms", harmless), ("false_alarms_on_complaints", harmless & complaint)):
                metrics[f"{risk}_oof_{name}"] = round(float(fired[rows_of].mean()), 4) if rows_of.any() else 0.0
        return metrics

    def findings(self, text: str, explain: int = 5) -> list[RiskFinding]:
        """The risks ``text`` shows, most probable first, each with the words that pushed towards it."""
        matrix, probabilities = self.probabilities([text])
        columns, values = matrix.indices, matrix.data
        lifts = {
            column: float(probabilities[0, column]) / self.thresholds[risk]
            for column, risk in enumerate(self.labels)
            if risk in self.thresholds and probabilities[0, column] >= self.thresholds[risk]
        }
        strongest = max(lifts.values(), default=0.0)
        found = []
        for column, lift in lifts.items():
            if lift * OUTWEIGHS >= strongest:
                risk = self.labels[column]
                terms = self._terms(columns, values, column, explain) if explain else []
                found.append(RiskFinding(risk, round(float(probabilities[0, column]), 4), self.thresholds[risk], terms))
        return sorted(found, key=lambda finding: -finding.probability)
