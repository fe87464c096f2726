"""Triage options study: linear models, ensembles and out-of-scope rules tried on inner splits of the dev sets.

Run: ``python -m benchmarks.triage_options [--tasks banking77,clinc150,zh_shopping] [--lr-c 30]``.
Protocol (fixed seed 13, never the benchmark's test part):
- Banking77: 5-fold stratified cross-validation of the benchmark's 80 % training part (8,002 rows).
- CLINC150: trained on ``train`` + ``oos_train``; scored on ``val`` + ``oos_val``. Review thresholds are
  cross-fitted: chosen on one half of val (stratified by out-of-scope) and applied to the other, both ways.
- zh_shopping: product line and complaint, an 80/20 split of the benchmark's training part (40,147 rows).
Every option sees the same TF-IDF matrix (``router.triage.features.TextFeatures``); last line is JSON.
Logistic regression is slow (about a minute per Banking77 fold; minutes on 32k reviews): leave it out with --options.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix
from scipy.special import softmax
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.svm import LinearSVC

from benchmarks.triage import SEED, Task, load_tasks
from router.settings import get_settings
from router.triage.classifier import OUT_OF_SCOPE, TARGET_OOS_RECALL, _class_scores, fit_temperature
from router.triage.features import TextFeatures
from router.triage.text import normalise

# An option: (train matrix, train labels, test matrix) → (class names, test probabilities).
Option = Callable[[csr_matrix, np.ndarray, csr_matrix], tuple[np.ndarray, np.ndarray]]


def _calibrated_svm(c: float = 0.5, class_weight: str | None = None) -> Option:
    """LinearSVC whose softmax temperature is fitted on one held-out third, as the shipped classifier does."""

    def run(x: csr_matrix, y: np.ndarray, test: csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        inner, held = next(StratifiedKFold(3, shuffle=True, random_state=SEED).split(x, y))
        probe = LinearSVC(C=c, tol=1e-3, class_weight=class_weight).fit(x[inner], y[inner])
        names = probe.classes_
        temperature = fit_temperature(_class_scores(probe.decision_function(x[held])), np.searchsorted(names, y[held]))
        svm = LinearSVC(C=c, tol=1e-3, class_weight=class_weight).fit(x, y)
        return names, softmax(_class_scores(svm.decision_function(test)) / temperature, axis=1)

    return run


def _probabilistic(model: Callable[[], Any]) -> Option:
    """A model with predict_proba (logistic regression, SGD with log loss)."""

    def run(x: csr_matrix, y: np.ndarray, test: csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        fitted = model().fit(x, y)
        return fitted.classes_, fitted.predict_proba(test)

    return run


def _columns(option: Option, part: slice) -> Option:
    """The option on some feature columns only (word block or character block)."""
    return lambda x, y, test: option(x[:, part], y, test[:, part])


# Ensembles: the mean of their members' calibrated probabilities (all members sort their labels the same way).
ENSEMBLES = {
    "avg svm words + svm chars": ("svm words only", "svm chars only"),
    "avg svm + sgd": ("svm (current)", "sgd log-loss"),
    "avg svm + logreg": ("svm (current)", "logreg"),
}


def options(word_columns: int, lr_c: float) -> dict[str, Option]:
    """Every single model tried, by the name BENCHMARKS.md uses."""
    words, chars = slice(0, word_columns), slice(word_columns, None)
    svm = _calibrated_svm()
    return {
        "svm (current)": svm,
        "svm balanced": _calibrated_svm(class_weight="balanced"),
        "sgd log-loss": _probabilistic(lambda: SGDClassifier(loss="log_loss", alpha=1e-5, tol=1e-4, random_state=SEED)),
        "logreg": _probabilistic(lambda: LogisticRegression(C=lr_c, tol=1e-3, max_iter=100)),
        "svm chars only": _columns(svm, chars),
        "svm words only": _columns(svm, words),
    }


def run_options(
    chosen: set[str], word_columns: int, lr_c: float, x: csr_matrix, y: np.ndarray, test: csr_matrix
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Classes and test probabilities of each chosen option; ensemble members are fitted once and shared."""
    singles = options(word_columns, lr_c)
    needed = {name for name in chosen if name in singles}
    needed |= {member for name in chosen if name in ENSEMBLES for member in ENSEMBLES[name]}
    results = {}
    for name in singles:
        if name in needed:
            started = time.perf_counter()
            results[name] = singles[name](x, y, test)
            print(f"  {name}: {time.perf_counter() - started:.1f} s", flush=True)
    for name, members in ENSEMBLES.items():
        if name in chosen:
            results[name] = (results[members[0]][0], np.mean([results[member][1] for member in members], axis=0))
    return {name: result for name, result in results.items() if name in chosen}


def _features(train: list[str], test: list[str]) -> tuple[csr_matrix, csr_matrix, int]:
    features = TextFeatures()
    x = features.fit_transform([normalise(text) for text in train])
    return x, features.transform([normalise(text) for text in test]), features.word_columns


def _accuracy(names: np.ndarray, probabilities: np.ndarray, truth: np.ndarray) -> float:
    return float((names[probabilities.argmax(axis=1)] == truth).mean())


def cross_validated(task: Task, chosen: set[str], lr_c: float) -> dict[str, float]:
    """Accuracy (%) of each option over 5 folds of the task's training part."""
    texts, labels = np.asarray(task.train_texts, dtype=object), np.asarray(task.train_labels)
    hits: dict[str, list[float]] = {}
    for train, test in StratifiedKFold(5, shuffle=True, random_state=SEED).split(texts, labels):
        x, x_test, word_columns = _features(list(texts[train]), list(texts[test]))
        for name, (names, probabilities) in run_options(chosen, word_columns, lr_c, x, labels[train], x_test).items():
            hits.setdefault(name, []).append(_accuracy(names, probabilities, labels[test]) * len(test))
    return {name: round(sum(values) / len(labels) * 100, 2) for name, values in hits.items()}


def held_out(task: Task, chosen: set[str], lr_c: float) -> dict[str, float]:
    """Accuracy (%) of each option on an 80/20 split of the task's training part (for the 40k Chinese sets)."""
    a, b, ya, yb = train_test_split(
        task.train_texts, task.train_labels, test_size=0.2, random_state=SEED, stratify=task.train_labels
    )
    x, x_test, word_columns = _features(a, b)
    results = run_options(chosen, word_columns, lr_c, x, np.asarray(ya), x_test)
    return {name: round(_accuracy(*result, np.asarray(yb)) * 100, 2) for name, result in results.items()}


def _oos_threshold(confidence: np.ndarray, flagged_anyway: np.ndarray, oos: np.ndarray) -> float:
    """Lowest confidence threshold that flags TARGET_OOS_RECALL of the out-of-scope rows given."""
    for threshold in np.unique(confidence):
        if ((confidence < threshold) | flagged_anyway)[oos].mean() >= TARGET_OOS_RECALL:
            return float(threshold)
    return float(confidence.max()) + 1.0


def oos_rules(names: np.ndarray, probabilities: np.ndarray, truth: np.ndarray) -> dict[str, dict[str, float]]:
    """In-scope accuracy (flagged counts wrong) and oos recall (%) for each out-of-scope rule."""
    label = names[probabilities.argmax(axis=1)]
    confidence = probabilities.max(axis=1)
    oos = truth == OUT_OF_SCOPE
    says_oos = label == OUT_OF_SCOPE
    # Two halves of val, stratified by out-of-scope; each half's threshold comes from the other half.
    halves = np.zeros(len(truth), dtype=int)
    halves[train_test_split(np.arange(len(truth)), test_size=0.5, random_state=SEED, stratify=oos)[1]] = 1
    crossfit = np.zeros(len(truth), dtype=bool)
    for half in (0, 1):
        rows = halves == half
        threshold = _oos_threshold(confidence[~rows], says_oos[~rows], oos[~rows])
        crossfit[rows] = (confidence[rows] < threshold) | says_oos[rows]

    def figures(flagged: np.ndarray) -> dict[str, float]:
        right = (label == truth) & ~flagged
        return {"in_scope": round(right[~oos].mean() * 100, 2), "oos_recall": round(flagged[oos].mean() * 100, 2)}

    return {"oos label only": figures(says_oos), "oos label + val threshold": figures(crossfit)}


def clinc(task: Task, chosen: set[str], lr_c: float) -> dict[str, Any]:
    """Each option × out-of-scope rule: trained with the oos class, and without it (threshold only)."""
    truth = np.array([OUT_OF_SCOPE if y == "oos" else y for y in task.test_labels])
    labels = np.array([OUT_OF_SCOPE if y == "oos" else y for y in task.train_labels])
    x, x_test, word_columns = _features(task.train_texts, task.test_texts)
    in_scope = labels != OUT_OF_SCOPE
    with_oos = run_options(chosen, word_columns, lr_c, x, labels, x_test)
    without = run_options(chosen, word_columns, lr_c, x[in_scope], labels[in_scope], x_test)
    figures: dict[str, Any] = {}
    for name, result in with_oos.items():
        figures[name] = oos_rules(*result, truth)
        figures[name]["no oos class, val threshold"] = oos_rules(*without[name], truth)["oos label + val threshold"]
        print(name, figures[name], flush=True)
    return figures


def main() -> None:
    """Run the chosen tasks and options; print each figure as it comes and one JSON line at the end."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=get_settings().shared_data_dir)
    parser.add_argument("--tasks", default="banking77,clinc150,zh_shopping")
    parser.add_argument("--options", default="", help="Comma-separated option names (default: all).")
    parser.add_argument("--lr-c", type=float, default=30.0)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    chosen = set(args.options.split(",")) if args.options else {*options(0, args.lr_c), *ENSEMBLES}
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "seed": SEED}
    for task in load_tasks(args.data_dir, args.tasks.split(",")):
        started = time.perf_counter()
        if task.name == "clinc150":
            results[task.name] = clinc(task, chosen, args.lr_c)
        elif task.chinese:
            results[task.name] = held_out(task, chosen, args.lr_c)
        else:
            results[task.name] = cross_validated(task, chosen, args.lr_c)
        print(task.name, round(time.perf_counter() - started, 1), "s", results[task.name], flush=True)
    print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
