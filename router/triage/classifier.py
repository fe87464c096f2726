"""Calibrated TF-IDF + linear SVM text classifier with per-message explanations and an abstain threshold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.sparse import csr_matrix, hstack
from scipy.special import log_softmax, softmax
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.svm import LinearSVC

from router.errors import InvalidInput
from router.triage.features import CompiledFeatures, char_vectorizer, word_vectorizer
from router.triage.text import normalise

OUT_OF_SCOPE = "out_of_scope"
# Labels data sets use for "none of the above"; all become OUT_OF_SCOPE.
OUT_OF_SCOPE_ALIASES = frozenset({"oos", "out_of_scope", "out-of-scope", "outofscope"})
# Below this share of confident answers being right, a message goes to a person instead.
TARGET_PRECISION = 0.9
# Share of out-of-scope messages that must be flagged, when the training data has out-of-scope examples.
TARGET_OOS_RECALL = 0.85
# From this many texts sklearn's vectorised transform beats the per-message one.
BATCH_SIZE_FOR_SKLEARN = 64


@dataclass(frozen=True)
class Prediction:
    """One message's label, calibrated probability, whether a person should check it, and why."""

    label: str
    confidence: float
    needs_review: bool
    terms: list[str]


def choose_threshold(confidence: np.ndarray, correct: np.ndarray, out_of_scope: np.ndarray) -> float:
    """Confidence below which answers are flagged, picked on out-of-fold predictions.

    The lowest threshold that flags TARGET_OOS_RECALL of out-of-scope examples (when there are any), else that
    keeps TARGET_PRECISION of the kept answers right: as few flags as meet the target, and no fewer.
    """
    candidates = np.unique(np.round(np.quantile(confidence, np.linspace(0.0, 0.6, 61)), 4))
    best, best_value = float(candidates[-1]), -1.0
    for threshold in candidates:
        kept = confidence >= threshold
        if out_of_scope.any():
            value = float(((~kept) | correct)[out_of_scope].mean())
            target = TARGET_OOS_RECALL
        else:
            value = float(correct[kept].mean()) if kept.any() else 0.0
            target = TARGET_PRECISION
        if value >= target:
            return float(threshold)
        if value > best_value:
            best, best_value = float(threshold), value
    return best


def fit_temperature(scores: np.ndarray, truth: np.ndarray) -> float:
    """Temperature scaling: the one divisor of the SVM scores whose softmax best predicts held-out labels.

    One parameter cannot overfit small data and keeps the SVM's ranking, so accuracy is unchanged.
    """

    def loss(log_temperature: float) -> float:
        log_probabilities = log_softmax(scores / np.exp(log_temperature), axis=1)
        return -float(log_probabilities[np.arange(len(truth)), truth].mean())

    return float(np.exp(minimize_scalar(loss, bounds=(-6.0, 4.0), method="bounded").x))


def _class_scores(decisions: np.ndarray) -> np.ndarray:
    """One column per class; a binary SVM gives one signed margin, i.e. the two classes' scores are ∓ it."""
    return np.column_stack([-decisions, decisions]) if decisions.ndim == 1 else decisions


class TriageClassifier:
    """Trains on labelled texts and predicts label, probability, review flag and the words that decided it."""

    def __init__(self, c: float = 0.5, folds: int = 3, char_ngrams: tuple[int, int] = (1, 4)) -> None:
        self.c = c
        self.folds = folds
        self.char_ngrams = char_ngrams
        self.svm = LinearSVC(C=c)
        self.temperature = 1.0
        self.threshold = 0.0
        self.labels: list[str] = []
        self.vectorizers: list[TfidfVectorizer] = []
        self.features: CompiledFeatures | None = None
        self._word_columns = 0

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
        """Fit features, SVM and probability calibration; returns out-of-fold accuracy and the threshold."""
        labels = [OUT_OF_SCOPE if label.strip().lower() in OUT_OF_SCOPE_ALIASES else label for label in labels]
        names, counts = np.unique(labels, return_counts=True)
        if len(names) < 2:
            raise InvalidInput("training data needs at least two different labels")
        if counts.min() < 2:
            raise InvalidInput(f"label {names[counts.argmin()]!r} has only one example; every label needs two")
        normalised = [normalise(text) for text in texts]
        vectorizers = [word_vectorizer(), char_vectorizer(self.char_ngrams)]
        matrix = hstack([vectorizer.fit_transform(normalised) for vectorizer in vectorizers]).tocsr()
        target = np.asarray(labels)
        folds = StratifiedKFold(n_splits=min(self.folds, int(counts.min())), shuffle=True, random_state=13)
        decisions = cross_val_predict(LinearSVC(C=self.c), matrix, target, cv=folds, method="decision_function")
        scores = _class_scores(decisions)
        self.temperature = fit_temperature(scores, np.searchsorted(names, target))
        out_of_fold = softmax(scores / self.temperature, axis=1)
        predicted = names[out_of_fold.argmax(axis=1)]
        correct = predicted == target
        self.threshold = choose_threshold(out_of_fold.max(axis=1), correct, target == OUT_OF_SCOPE)
        self.svm.fit(matrix, target)
        self.labels = [str(label) for label in self.svm.classes_]
        self.vectorizers = vectorizers
        self.features = CompiledFeatures(vectorizers)
        self._word_columns = len(vectorizers[0].vocabulary_)
        return {"cv_accuracy": round(float(correct.mean()), 4), "threshold": self.threshold}

    def predict(self, texts: Sequence[str], explain: int = 5) -> list[Prediction]:
        """Predictions for a batch; ``explain`` top terms each (0 skips the explanation, for speed)."""
        if self.features is None:
            raise InvalidInput("the classifier has not been trained")
        normalised = [normalise(text) for text in texts]
        if len(texts) >= BATCH_SIZE_FOR_SKLEARN:
            matrix = hstack([vectorizer.transform(normalised) for vectorizer in self.vectorizers]).tocsr()
        else:
            matrix = self.features.transform(normalised)
        decisions = matrix @ self.svm.coef_.T + self.svm.intercept_
        probabilities = softmax(
            _class_scores(decisions.ravel() if decisions.shape[1] == 1 else decisions) / self.temperature, axis=1
        )
        # A message with no word we have seen (another language, gibberish) is a guess however peaked.
        known_words = matrix[:, : self._word_columns].getnnz(axis=1) > 0
        results = []
        for row, column in enumerate(probabilities.argmax(axis=1)):
            label = self.labels[column]
            confidence = float(probabilities[row, column])
            needs_review = bool(confidence < self.threshold or label == OUT_OF_SCOPE or not known_words[row])
            terms = self._terms(matrix[row], column, explain) if explain else []
            results.append(Prediction(label, round(confidence, 4), needs_review, terms))
        return results

    def _terms(self, row: csr_matrix, index: int, limit: int) -> list[str]:
        """Features of this message that pushed hardest towards the class (word n-grams read best, so first)."""
        coef = self.svm.coef_
        weights = coef[0] * (1 if index == 1 else -1) if len(self.labels) == 2 else coef[index]
        contributions = row.data * weights[row.indices]
        pairs = zip(contributions, row.indices, strict=True)
        ranked = [(value, column) for value, column in pairs if value > 0]
        ranked.sort(key=lambda pair: (pair[1] >= self._word_columns, -pair[0]))
        terms: list[str] = []
        for _, column in ranked:
            term = str(self.features.names[column]).strip()  # type: ignore[union-attr]
            if term and not any(term in kept for kept in terms):
                terms.append(term)
            if len(terms) == limit:
                break
        return terms
