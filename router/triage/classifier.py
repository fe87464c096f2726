"""Calibrated TF-IDF + linear SVM text classifier with per-message explanations and an abstain threshold."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.sparse import csr_matrix
from scipy.special import log_softmax, softmax
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from router.errors import InvalidInput
from router.triage.features import TextFeatures
from router.triage.parallel import predict_chunks, split
from router.triage.text import normalise

OUT_OF_SCOPE = "out_of_scope"
# Labels data sets use for "none of the above"; all become OUT_OF_SCOPE.
OUT_OF_SCOPE_ALIASES = frozenset({"oos", "out_of_scope", "out-of-scope", "outofscope"})
# Below this share of confident answers being right, a message goes to a person instead.
TARGET_PRECISION = 0.9
# Share of out-of-scope messages that must be flagged, when the training data has out-of-scope examples.
TARGET_OOS_RECALL = 0.85
# Character n-grams worth showing an agent: Chinese characters only (a Latin one is a fragment of a word).
_CHINESE_ONLY = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")
# From this many training texts, calibration uses one held-out fold instead of every row out of fold.
ONE_FOLD_FROM = 20_000


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


def _svm(c: float, class_weight: str | None = None) -> LinearSVC:
    """The linear SVM; a 1e-3 stopping tolerance gave the same dev accuracy as 1e-4 in under half the time."""
    return LinearSVC(C=c, tol=1e-3, class_weight=class_weight)


class TriageClassifier:
    """Trains on labelled texts and predicts label, probability, review flag and the words that decided it."""

    # From this many texts, calibration scores one fold out of fold instead of all (None: always all).
    one_fold_from: int | None = ONE_FOLD_FROM

    def __init__(
        self,
        c: float = 0.5,
        folds: int = 3,
        char_ngrams: tuple[int, int] = (1, 4),
        class_weight: str | None = None,
    ) -> None:
        self.c = c
        self.folds = folds
        self.char_ngrams = char_ngrams
        # "balanced" weighs rare labels up: for finding a rare danger among thousands of ordinary messages.
        self.class_weight = class_weight
        self.svm = _svm(c, class_weight)
        self.temperature = 1.0
        self.threshold = 0.0
        self.labels: list[str] = []
        self.features = TextFeatures(char_ngrams=char_ngrams)
        # Words never shown as an explanation (data/triage/stopwords.yml): set by ``hide_terms`` after loading.
        self.hidden_terms: frozenset[str] = frozenset()

    def hide_terms(self, words: Iterable[str]) -> None:
        """Leave these words (grammar: 我, 了, my, the) out of explanations; a term made only of them is not shown."""
        self.hidden_terms = frozenset(words)

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
        """Fit features, SVM and probability calibration; returns out-of-fold accuracy and the threshold."""
        return self._fit(texts, labels)[0]

    def _fit(
        self, texts: Sequence[str], labels: Sequence[str]
    ) -> tuple[dict[str, float], np.ndarray, np.ndarray, np.ndarray]:
        """``fit``'s figures, plus which rows were scored out of fold, their labels and calibrated probabilities (a
        column per label, in ``self.labels`` order), for a subclass that picks its own thresholds on them."""
        labels = [OUT_OF_SCOPE if label.strip().lower() in OUT_OF_SCOPE_ALIASES else label for label in labels]
        names, counts = np.unique(labels, return_counts=True)
        if len(names) < 2:
            raise InvalidInput("training data needs at least two different labels")
        if counts.min() < 2:
            raise InvalidInput(f"label {names[counts.argmin()]!r} has only one example; every label needs two")
        features = TextFeatures(char_ngrams=self.char_ngrams)
        matrix = features.fit_transform([normalise(text) for text in texts])
        target = np.asarray(labels)
        held_out, scores = self._held_out_scores(matrix, target, int(counts.min()))
        truth = target[held_out]
        self.temperature = fit_temperature(scores, np.searchsorted(names, truth))
        out_of_fold = softmax(scores / self.temperature, axis=1)
        correct = names[out_of_fold.argmax(axis=1)] == truth
        self.threshold = choose_threshold(out_of_fold.max(axis=1), correct, truth == OUT_OF_SCOPE)
        self.svm.fit(matrix, target)
        self.labels = [str(label) for label in self.svm.classes_]
        self.features = features
        return (
            {"cv_accuracy": round(float(correct.mean()), 4), "threshold": self.threshold},
            held_out,
            truth,
            out_of_fold,
        )

    def _held_out_scores(self, matrix: csr_matrix, target: np.ndarray, smallest: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows scored by SVMs that did not see them, and their class scores, for calibration.

        Every row out of fold on small data; on large data one fold is plenty for two numbers (temperature,
        threshold) and saves most of the SVM fits that dominate training time.
        """
        folds = StratifiedKFold(n_splits=min(self.folds, smallest), shuffle=True, random_state=13)
        splits = list(folds.split(matrix, target))
        if self.one_fold_from is not None and len(target) >= self.one_fold_from:
            splits = splits[:1]
        rows, scores = [], []
        for train, test in splits:
            svm = _svm(self.c, self.class_weight).fit(matrix[train], target[train])
            rows.append(test)
            scores.append(_class_scores(svm.decision_function(matrix[test])))
        return np.concatenate(rows), np.concatenate(scores)

    def predict(self, texts: Sequence[str], explain: int = 5, workers: int = 1, first: int = 0) -> list[Prediction]:
        """Predictions for a batch; ``explain`` top terms each (0 skips the explanation, for speed).

        ``workers`` > 1 splits the batch over forked processes (router.triage.parallel: only in a single-threaded
        process such as the CLI); ``first`` is the batch's position in a larger input, for error messages.
        """
        if not self.labels:
            raise InvalidInput("the classifier has not been trained")
        if workers > 1 and len(texts) > 1:
            return [p for chunk in predict_chunks(self, split(texts, workers), workers, explain) for p in chunk]
        matrix, probabilities = self.probabilities(texts, first)
        # A message with no word we have seen (another language, gibberish) is a guess however peaked.
        word_columns = self.features.word_columns
        chosen = probabilities.argmax(axis=1)
        confidences = probabilities[np.arange(len(texts)), chosen]
        results = []
        for row, column in enumerate(chosen):
            label = self.labels[column]
            confidence = float(confidences[row])
            begin, end = matrix.indptr[row], matrix.indptr[row + 1]
            knows_a_word = bool((matrix.indices[begin:end] < word_columns).any())
            needs_review = confidence < self.threshold or label == OUT_OF_SCOPE or not knows_a_word
            terms = self._terms(matrix.indices[begin:end], matrix.data[begin:end], column, explain) if explain else []
            results.append(Prediction(label, round(confidence, 4), needs_review, terms))
        return results

    def probabilities(self, texts: Sequence[str], first: int = 0) -> tuple[csr_matrix, np.ndarray]:
        """The texts' feature matrix and their calibrated probabilities, a column per label in ``labels`` order."""
        if not self.labels:
            raise InvalidInput("the classifier has not been trained")
        for index, text in enumerate(texts, start=first):
            if not isinstance(text, str):
                raise InvalidInput(f"text {index} is {type(text).__name__}, not a string")
        matrix = self.features.transform([normalise(text) for text in texts])
        decisions = matrix @ self.svm.coef_.T + self.svm.intercept_
        scores = _class_scores(decisions.ravel() if decisions.shape[1] == 1 else decisions)
        return matrix, softmax(scores / self.temperature, axis=1)

    def _terms(self, columns: np.ndarray, values: np.ndarray, index: int, limit: int) -> list[str]:
        """Readable features of this message that pushed hardest towards the class, in the message's own words."""
        # Only this message's columns of the weights: a dense pass over every feature would cost milliseconds.
        if len(self.labels) == 2:
            contributions = values * self.svm.coef_[0, columns] * (1 if index == 1 else -1)
        else:
            contributions = values * self.svm.coef_[index, columns]
        pushing = contributions > 0
        columns, contributions = columns[pushing], contributions[pushing]
        ranked = columns[np.lexsort((-contributions, columns >= self.features.word_columns))]
        terms: list[str] = []
        for column in ranked:
            term = self._readable(int(column))
            # "还 没" (two words) and "还没" (two characters) are one reason, shown once.
            if term and not any(term.replace(" ", "") in kept.replace(" ", "") for kept in terms):
                terms.append(term)
            if len(terms) == limit:
                break
        return terms

    def _readable(self, column: int) -> str:
        """The feature as an agent should read it, or "" when it explains nothing.

        A word n-gram shows its words that are not stop words ("my statement" reads "statement", "了 马上" reads
        "马上"), so "我" or "on the" never stands for a reason. A character n-gram shows only when it is Chinese
        characters none of which is a stop word: a Latin one is a fragment of a word ("dle"), and "伤了" says no
        more than the words around it.
        """
        name = self.features.name(column).strip()
        if column < self.features.word_columns:
            return " ".join(word for word in name.split(" ") if word not in self.hidden_terms)
        if _CHINESE_ONLY.fullmatch(name) and not any(char in self.hidden_terms for char in name):
            return name
        return ""
