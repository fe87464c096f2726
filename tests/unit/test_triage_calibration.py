"""The confidence is a calibrated probability, and the review threshold is the lowest that meets its target."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from router.triage.classifier import TARGET_OOS_RECALL, TARGET_PRECISION, TriageClassifier, choose_threshold
from router.triage.datasets import read_texts

COMPLAINTS = Path(__file__).resolve().parents[2] / "data" / "triage" / "complaints.csv"


def _calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 5) -> float:
    """Expected calibration error: per confidence bin, |mean confidence − accuracy|, weighted by the bin's share."""
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    return sum(
        abs(confidence[which == b].mean() - correct[which == b].mean()) * (which == b).mean()
        for b in range(bins)
        if (which == b).any()
    )


def test_confidence_on_unseen_complaints_matches_how_often_it_is_right() -> None:
    texts, labels = read_texts(COMPLAINTS, "text", "category")
    classifier = TriageClassifier()
    classifier.fit(texts[::2], labels[::2])
    predictions = classifier.predict(texts[1::2], explain=0)
    confidence = np.array([p.confidence for p in predictions])
    correct = np.array([p.label == y for p, y in zip(predictions, labels[1::2], strict=True)])
    assert abs(confidence.mean() - correct.mean()) < 0.1
    assert _calibration_error(confidence, correct) < 0.15
    kept = ~np.array([p.needs_review for p in predictions])
    assert 0 < kept.sum() < len(kept) and correct[kept].mean() > correct.mean() + 0.05
    # The raw SVM softmax (no temperature) is far from a probability: the fitted temperature is what calibrates.
    classifier.temperature = 1.0
    raw = np.array([p.confidence for p in classifier.predict(texts[1::2], explain=0)])
    assert _calibration_error(raw, correct) > 0.3


def test_threshold_is_the_lowest_that_keeps_answers_precise() -> None:
    confidence = np.linspace(0.01, 1.0, 100)
    correct = (confidence > 0.3) | (np.arange(100) % 4 == 0)
    threshold = choose_threshold(confidence, correct, np.zeros(100, dtype=bool))
    assert correct[confidence >= threshold].mean() >= TARGET_PRECISION
    # It keeps exactly the answers that the lowest sufficient cut-off among the confidences keeps.
    lowest = min(t for t in confidence if correct[confidence >= t].mean() >= TARGET_PRECISION)
    assert np.array_equal(confidence >= threshold, confidence >= lowest)


def test_threshold_with_out_of_scope_examples_flags_enough_of_them() -> None:
    rng = np.random.default_rng(13)
    out_of_scope = np.arange(200) % 5 == 0
    confidence = np.where(out_of_scope, rng.uniform(0.1, 0.6, 200), rng.uniform(0.4, 1.0, 200))
    threshold = choose_threshold(confidence, ~out_of_scope, out_of_scope)
    assert (confidence[out_of_scope] < threshold).mean() >= TARGET_OOS_RECALL
    # It flags the messages up to the out-of-scope one that brings recall to the target, and at most the 1 % of
    # messages more that its grid of confidence quantiles can overshoot by.
    ranked = np.sort(confidence[out_of_scope])
    enough = ranked[int(np.ceil(TARGET_OOS_RECALL * len(ranked))) - 1]
    assert (confidence <= enough).sum() <= (confidence < threshold).sum() <= (confidence <= enough).sum() + 2
