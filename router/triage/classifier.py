"""Calibrated TF-IDF + linear SVM text classifier with per-message explanations and an abstain threshold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import FeatureUnion
from sklearn.svm import LinearSVC

from router.errors import InvalidInput
from router.triage.text import normalise, word_tokens

OUT_OF_SCOPE = "out_of_scope"
# Labels data sets use for "none of the above"; all become OUT_OF_SCOPE.
OUT_OF_SCOPE_ALIASES = frozenset({"oos", "out_of_scope", "out-of-scope", "outofscope"})
# Below this share of confident answers being right, a message goes to a person instead.
TARGET_PRECISION = 0.9


@dataclass(frozen=True)
class Prediction:
    """One message's label, calibrated probability, whether a person should check it, and why."""

    label: str
    confidence: float
    needs_review: bool
    terms: list[str]


def build_features(word_ngrams: tuple[int, int] = (1, 2), char_ngrams: tuple[int, int] = (1, 4)) -> FeatureUnion:
    """Word n-grams (jieba for Chinese) plus character n-grams, which catch typos and unsegmented Chinese."""
    words = TfidfVectorizer(
        tokenizer=word_tokens, token_pattern=None, lowercase=False, ngram_range=word_ngrams, sublinear_tf=True
    )
    chars = TfidfVectorizer(analyzer="char_wb", lowercase=False, ngram_range=char_ngrams, sublinear_tf=True, min_df=2)
    return FeatureUnion([("word", words), ("char", chars)])


def choose_threshold(confidence: np.ndarray, correct: np.ndarray, out_of_scope: np.ndarray) -> float:
    """Confidence below which answers are flagged, picked on out-of-fold predictions.

    With out-of-scope examples it balances in-scope accuracy against out-of-scope recall; without them it
    keeps the most answers while TARGET_PRECISION of the kept ones stay right.
    """
    candidates = np.unique(np.round(np.quantile(confidence, np.linspace(0.0, 0.6, 61)), 4))
    in_scope = ~out_of_scope
    best, best_value = float(candidates[0]), -1.0
    for threshold in candidates:
        kept = confidence >= threshold
        if out_of_scope.any():
            accuracy = (kept & correct & in_scope).sum() / max(in_scope.sum(), 1)
            recall = ((~kept) | correct)[out_of_scope].mean()
            value = (accuracy + recall) / 2
        else:
            precision = correct[kept].mean() if kept.any() else 0.0
            if precision >= TARGET_PRECISION:
                return float(threshold)
            value = precision
        if value > best_value:
            best, best_value = float(threshold), value
    return best


class TriageClassifier:
    """Trains on labelled texts and predicts label, probability, review flag and the words that decided it."""

    def __init__(self, c: float = 0.5, folds: int = 3, char_ngrams: tuple[int, int] = (1, 4)) -> None:
        self.c = c
        self.folds = folds
        self.features = build_features(char_ngrams=char_ngrams)
        self.svm = LinearSVC(C=c)
        self.calibrator = LogisticRegression(C=1.0, max_iter=1000)
        self.threshold = 0.0
        self.labels: list[str] = []
        self._feature_names: np.ndarray | None = None

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
        """Fit features, SVM and probability calibration; returns out-of-fold accuracy and the threshold."""
        labels = [OUT_OF_SCOPE if label.strip().lower() in OUT_OF_SCOPE_ALIASES else label for label in labels]
        names, counts = np.unique(labels, return_counts=True)
        if len(names) < 2:
            raise InvalidInput("training data needs at least two different labels")
        if counts.min() < 2:
            raise InvalidInput(f"label {names[counts.argmin()]!r} has only one example; every label needs two")
        matrix = self.features.fit_transform([normalise(text) for text in texts])
        target = np.asarray(labels)
        folds = StratifiedKFold(n_splits=min(self.folds, int(counts.min())), shuffle=True, random_state=13)
        decisions = cross_val_predict(LinearSVC(C=self.c), matrix, target, cv=folds, method="decision_function")
        decisions = self._as_2d(decisions)
        self.calibrator.fit(decisions, target)
        oof = self.calibrator.predict_proba(decisions)
        predicted = self.calibrator.classes_[oof.argmax(axis=1)]
        is_oos = target == OUT_OF_SCOPE
        self.threshold = choose_threshold(oof.max(axis=1), predicted == target, is_oos)
        self.svm.fit(matrix, target)
        self.labels = [str(label) for label in self.svm.classes_]
        self._feature_names = None
        return {"cv_accuracy": float((predicted == target).mean()), "threshold": self.threshold}

    def predict(self, texts: Sequence[str], explain: int = 5) -> list[Prediction]:
        """Predictions for a batch; ``explain`` top terms each (0 skips the explanation, for speed)."""
        matrix = self.features.transform([normalise(text) for text in texts])
        probabilities = self.calibrator.predict_proba(self._as_2d(self.svm.decision_function(matrix)))
        best = probabilities.argmax(axis=1)
        results = []
        for row, column in enumerate(best):
            label = str(self.calibrator.classes_[column])
            confidence = float(probabilities[row, column])
            terms = self._terms(matrix[row], label, explain) if explain else []
            needs_review = confidence < self.threshold or label == OUT_OF_SCOPE
            results.append(Prediction(label, round(confidence, 4), needs_review, terms))
        return results

    def _as_2d(self, decisions: np.ndarray) -> np.ndarray:
        return decisions.reshape(-1, 1) if decisions.ndim == 1 else decisions

    def _terms(self, row: csr_matrix, label: str, limit: int) -> list[str]:
        """Features of this message that pushed hardest towards ``label`` (word n-grams read best, so first)."""
        if self._feature_names is None:
            self._feature_names = self.features.get_feature_names_out()
        index = self.labels.index(label)
        weights = self.svm.coef_[0] * (1 if index == 1 else -1) if len(self.labels) == 2 else self.svm.coef_[index]
        columns = row.indices
        contributions = row.data * weights[columns]
        pairs = zip(contributions, columns, strict=True)
        ranked = [(value, self._feature_names[column]) for value, column in pairs if value > 0]
        ranked.sort(key=lambda pair: (not pair[1].startswith("word__"), -pair[0]))
        terms: list[str] = []
        for _, name in ranked:
            term = name.split("__", 1)[1].strip()
            if term and not any(term in kept for kept in terms):
                terms.append(term)
            if len(terms) == limit:
                break
        return terms
