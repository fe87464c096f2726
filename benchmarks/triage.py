"""Triage classifier benchmark on the shared dev sets: seeds' TF-IDF+RandomForest vs plain TF-IDF+LinearSVC vs ours.

Run: ``python -m benchmarks.triage [--datasets banking77,clinc150,zh_shopping] [--max-train N] [--skip-rf]
[--workers 1,2] [--long-reviews] [--diet [--diet-epochs N] [--diet-max-examples N] [--diet-tasks A,B]]``.
Splits are fixed (seed 13): Banking77 and zh_shopping 80/20 stratified; CLINC150 its own train / val parts.
The seeds' RandomForest runs on the English sets only (on 40k long Chinese reviews it alone outlasts the run).
``--diet`` adds Rasa 3.6's DIETClassifier on the same splits (``benchmarks.triage_diet``), trained in a child
process so TensorFlow's memory and threads stay out of the other models' figures. It costs minutes per set, so it
is opted into, runs few epochs and keeps at most ``--diet-max-examples // classes`` training examples per class
(``diet_train_examples`` and ``diet_max_per_class`` in the output say how many); ``--diet-tasks`` picks the tasks.
On Chinese reviews give ``--diet-max-examples 1000``: DIET's memory grows past 23 GB on the default 5,000.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import pickle
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

from router.settings import get_settings
from router.triage.classifier import OUT_OF_SCOPE, OUT_OF_SCOPE_ALIASES, TriageClassifier
from router.triage.text import normalise, word_tokens

if TYPE_CHECKING:  # benchmarks.triage_diet is imported only with --diet, in the child process that runs Rasa
    from benchmarks.triage_diet import DietRun

SEED = 13
# Defaults of --diet-epochs and --diet-max-examples: DIET's training time grows with epochs x examples, and these
# train the English sets in 2-6 minutes on 2 shared cores. Chinese reviews need --diet-max-examples 1000: at 5,000
# DIET outgrew 23 GB and was killed (BENCHMARKS.md, triage round 6).
DIET_EPOCHS = 10
DIET_MAX_EXAMPLES = 5000


@dataclass
class Task:
    """One labelled train/test split."""

    name: str
    train_texts: list[str]
    train_labels: list[str]
    test_texts: list[str]
    test_labels: list[str]
    chinese: bool = False


def _split(name: str, texts: list[str], labels: list[str], chinese: bool = False) -> Task:
    a, b, ya, yb = train_test_split(texts, labels, test_size=0.2, random_state=SEED, stratify=labels)
    return Task(name, a, ya, b, yb, chinese)


def load_tasks(data_dir: Path, names: Sequence[str]) -> list[Task]:
    """The benchmark tasks whose data files exist, in a fixed order."""
    tasks: list[Task] = []
    if "banking77" in names and (data_dir / "banking77" / "train.csv").is_file():
        with (data_dir / "banking77" / "train.csv").open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        tasks.append(_split("banking77", [r["text"] for r in rows], [r["category"] for r in rows]))
    if "clinc150" in names and (data_dir / "clinc150" / "train_val.json").is_file():
        data = json.loads((data_dir / "clinc150" / "train_val.json").read_text(encoding="utf-8"))
        train = data["train"] + data["oos_train"]
        test = data["val"] + data["oos_val"]
        tasks.append(
            Task("clinc150", [t for t, _ in train], [y for _, y in train], [t for t, _ in test], [y for _, y in test])
        )
    if "zh_shopping" in names and (data_dir / "zh_shopping" / "dev.csv").is_file():
        with (data_dir / "zh_shopping" / "dev.csv").open(encoding="utf-8") as handle:
            rows = [r for r in csv.DictReader(handle) if r["review"].strip()]
        reviews = [r["review"] for r in rows]
        tasks.append(_split("zh_shopping_product_line", reviews, [r["cat"] for r in rows], chinese=True))
        complaint = ["complaint" if r["label"] == "0" else "praise" for r in rows]
        tasks.append(_split("zh_shopping_complaint", reviews, complaint, chinese=True))
    return tasks


def seeds_model(chinese: bool) -> Any:
    """The seed projects' method: TF-IDF words into a 100-tree random forest."""
    vectorizer = (
        TfidfVectorizer(tokenizer=word_tokens, token_pattern=None, max_features=20000)
        if chinese
        else (TfidfVectorizer(max_features=20000))
    )
    return make_pipeline(vectorizer, RandomForestClassifier(n_estimators=100, n_jobs=2, random_state=SEED))


def plain_svc(chinese: bool) -> Any:
    """The plain baseline the issue names: TF-IDF words (jieba for Chinese) into a default LinearSVC."""
    vectorizer = TfidfVectorizer(tokenizer=word_tokens, token_pattern=None) if chinese else TfidfVectorizer()
    return make_pipeline(vectorizer, LinearSVC())


def _is_oos(label: str | None) -> bool:
    return label is None or label.lower() in OUT_OF_SCOPE_ALIASES


def score(task: Task, predicted: Sequence[str | None]) -> dict[str, float]:
    """Accuracy and macro-F1; on CLINC150 in-scope accuracy and out-of-scope recall (a flag counts as oos)."""
    truth = [OUT_OF_SCOPE if _is_oos(y) else y for y in task.test_labels]
    guess = [OUT_OF_SCOPE if _is_oos(p) else p for p in predicted]
    figures = {
        "accuracy": round(accuracy_score(truth, guess) * 100, 2),
        "macro_f1": round(f1_score(truth, guess, average="macro") * 100, 2),
    }
    oos = np.array([y == OUT_OF_SCOPE for y in truth])
    if oos.any():
        hits = np.array([y == p for y, p in zip(truth, guess, strict=True)])
        figures["in_scope_accuracy"] = round(hits[~oos].mean() * 100, 2)
        figures["oos_recall"] = round(hits[oos].mean() * 100, 2)
    return figures


def _time_single(predict_one: Callable[[str], object], texts: Sequence[str]) -> float:
    samples = []
    for text in texts:
        started = time.perf_counter()
        predict_one(text)
        samples.append(time.perf_counter() - started)
    return round(statistics.median(samples) * 1000, 3)


def _segmentation_ms(texts: Sequence[str]) -> float:
    """jieba's share of Chinese prediction time: segmenting alone, per message, over the whole test set."""
    started = time.perf_counter()
    for text in texts:
        word_tokens(normalise(text))
    return round((time.perf_counter() - started) / len(texts) * 1000, 4)


def _cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the workers, once their pool has shut down)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _timed_batch(model: TriageClassifier, texts: Sequence[str], explain: int, workers: int) -> tuple[float, float]:
    """ms per message, and cores busy on it (CPU seconds per second): workers gain only if they get the cores."""
    cpu, started = _cpu_seconds(), time.perf_counter()
    model.predict(texts, explain=explain, workers=workers)
    wall = time.perf_counter() - started
    return round(wall / len(texts) * 1000, 4), round((_cpu_seconds() - cpu) / wall, 2)


def _load() -> float:
    """The machine's one-minute load average: other work competing for the 2 cores."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def _median_p90(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median": round(statistics.median(ordered) * 1000, 3),
        "p90": round(ordered[len(ordered) * 9 // 10] * 1000, 3),
    }


def long_reviews(data_dir: Path, count: int = 200, rounds: int = 3) -> dict[str, Any]:
    """One message at a time on long reviews: the ``count`` longest of the reviews after the first 25,000 of
    zh_shopping's dev.csv, with a product-line model trained on those first 25,000; jieba alone alongside."""
    with (data_dir / "zh_shopping" / "dev.csv").open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["review"].strip()]
    model = TriageClassifier()
    model.fit([r["review"] for r in rows[:25000]], [r["cat"] for r in rows[:25000]])
    longest = sorted((r["review"] for r in rows[25000:]), key=len, reverse=True)[:count]
    predict, segment = [], []
    for _ in range(rounds):
        for text in longest:
            started = time.perf_counter()
            model.predict([text])
            predict.append(time.perf_counter() - started)
            started = time.perf_counter()
            word_tokens(normalise(text))
            segment.append(time.perf_counter() - started)
    return {
        "reviews": len(longest),
        "min_chars": len(longest[-1]),
        "mean_chars": round(sum(map(len, longest)) / len(longest)),
        "predict_ms": _median_p90(predict),
        "jieba_ms": _median_p90(segment),
    }


def run_model(task: Task, kind: str, workers: Sequence[int] = ()) -> dict[str, Any]:
    """Train one kind of model on the task and measure quality, times and size."""
    started = time.perf_counter()
    if kind == "ours":
        model = TriageClassifier()
        model.fit(task.train_texts, task.train_labels)
    else:
        model = (seeds_model if kind == "seeds_rf" else plain_svc)(task.chinese)
        model.fit(task.train_texts, task.train_labels)
    train_seconds = time.perf_counter() - started
    started = time.perf_counter()
    if kind == "ours":
        predictions = model.predict(task.test_texts, explain=0)
        # With out-of-scope training data a flag means "out of scope"; otherwise the label stands (flags reported).
        has_oos = any(_is_oos(label) for label in task.train_labels)
        predicted = [None if p.needs_review and has_oos else p.label for p in predictions]
        predict_one: Callable[[str], object] = lambda text: model.predict([text])  # noqa: E731
    else:
        predicted = list(model.predict(task.test_texts))
        predict_one = lambda text: model.predict([text])  # noqa: E731
    batch_ms = (time.perf_counter() - started) / len(task.test_texts) * 1000
    figures: dict[str, Any] = score(task, predicted)
    if kind == "ours":
        ms, cores = _timed_batch(model, task.test_texts, 5, 1)
        figures["predict_ms_batch_with_terms"], figures["cores_busy_with_terms"] = ms, cores
        for count in (w for w in workers if w > 1):
            figures[f"load_before_{count}_workers"] = _load()
            ms, cores = _timed_batch(model, task.test_texts, 0, count)
            figures[f"predict_ms_batch_{count}_workers"], figures[f"cores_busy_{count}_workers"] = ms, cores
            ms, cores = _timed_batch(model, task.test_texts, 5, count)
            figures[f"predict_ms_batch_with_terms_{count}_workers"] = ms
            figures[f"cores_busy_with_terms_{count}_workers"] = cores
        if task.chinese:
            figures["jieba_ms_per_message"] = _segmentation_ms(task.test_texts)
        kept = [p.label == y for p, y in zip(predictions, task.test_labels, strict=True) if not p.needs_review]
        figures["accuracy_of_unflagged"] = round(sum(kept) / max(len(kept), 1) * 100, 2)
        figures["flagged_percent"] = round(sum(p.needs_review for p in predictions) / len(predictions) * 100, 2)
        figures["threshold"] = model.threshold
    figures.update(
        train_seconds=round(train_seconds, 2),
        predict_ms_batch=round(batch_ms, 4),
        predict_ms_single=_time_single(predict_one, task.test_texts[:200]),
        model_mb=round(len(pickle.dumps(model)) / 2**20, 1),
    )
    return figures


def run_diet_apart(task: Task, epochs: int, max_per_class: int) -> DietRun:
    """DIET trained and scored in a fresh child process: its peak RSS is DIET's alone, and Rasa's import, logging
    setup and TensorFlow threads never reach the process that measures the other models."""
    from benchmarks.rasa_quiet import quiet_rasa
    from benchmarks.triage_diet import run_diet

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=quiet_rasa) as pool:
        return pool.submit(run_diet, task, epochs, max_per_class).result()


def main() -> None:
    """Parse flags, run every task × model, print a table and then one JSON line of all figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=get_settings().shared_data_dir)
    parser.add_argument("--datasets", default="banking77,clinc150,zh_shopping")
    parser.add_argument("--models", default="seeds_rf,plain_svc,ours")
    parser.add_argument("--max-train", type=int, default=0, help="Cap training rows per task (0: all).")
    parser.add_argument("--skip-rf", action="store_true", help="Leave out the slow random-forest baseline.")
    parser.add_argument("--time-full-zh", action="store_true", help="Also time training ours on all 50k reviews.")
    parser.add_argument("--workers", default="1,2", help="Worker counts to time ours' batch prediction with.")
    parser.add_argument("--long-reviews", action="store_true", help="Also time one-message prediction of long reviews.")
    parser.add_argument("--diet", action="store_true", help="Also train and score Rasa's DIET (minutes per set).")
    parser.add_argument("--diet-epochs", type=int, default=DIET_EPOCHS, help="DIET's training epochs.")
    parser.add_argument(
        "--diet-max-examples", type=int, default=DIET_MAX_EXAMPLES, help="Split evenly over classes; 0: all."
    )
    parser.add_argument("--diet-tasks", default="", help="Tasks to run DIET on (default: every task).")
    args = parser.parse_args()
    models = [m for m in args.models.split(",") if not (args.skip_rf and m == "seeds_rf")]
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "seed": SEED}
    results["load_at_start"] = _load()
    for task in load_tasks(args.data_dir, args.datasets.split(",")):
        if args.max_train:
            task.train_texts, task.train_labels = (
                task.train_texts[: args.max_train],
                task.train_labels[: args.max_train],
            )
        results[task.name] = {"train_rows": len(task.train_texts), "test_rows": len(task.test_texts)}
        for kind in models:
            if kind == "seeds_rf" and task.chinese:
                # 100 trees on 40k long reviews take far longer than the whole rest of the run.
                continue
            figures = run_model(task, kind, [int(count) for count in args.workers.split(",")])
            results[task.name][kind] = figures
            print(f"{task.name:28s} {kind:10s} {json.dumps(figures)}", flush=True)
        if args.diet and (not args.diet_tasks or task.name in args.diet_tasks.split(",")):
            classes = len(set(task.train_labels))
            per_class = max(1, args.diet_max_examples // classes) if args.diet_max_examples else 0
            try:
                figures = run_diet_apart(task, args.diet_epochs, per_class).figures
            except BrokenProcessPool:
                # Seen on zh_shopping: DIET outgrew the machine's memory and the kernel killed its process.
                figures = {"error": "DIET's process died (killed: out of memory?)", "diet_max_per_class": per_class}
            results[task.name]["diet"] = figures
            print(f"{task.name:28s} {'diet':10s} {json.dumps(figures)}", flush=True)
    if args.time_full_zh and "zh_shopping" in args.datasets:
        task = next(t for t in load_tasks(args.data_dir, ["zh_shopping"]))
        texts, labels = task.train_texts + task.test_texts, task.train_labels + task.test_labels
        started = time.perf_counter()
        TriageClassifier().fit(texts, labels)
        results["zh_shopping_full_train"] = {
            "rows": len(texts),
            "train_seconds": round(time.perf_counter() - started, 2),
        }
        print(f"ours on all {len(texts)} zh_shopping reviews: {results['zh_shopping_full_train']}", flush=True)
    if args.long_reviews:
        results["zh_shopping_long_reviews"] = long_reviews(args.data_dir)
        print(f"long reviews one at a time: {results['zh_shopping_long_reviews']}", flush=True)
    results["load_at_end"] = _load()
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
