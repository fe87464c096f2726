"""The triage benchmark's DIET side for real: Rasa trains DIET on a tiny set in the benchmark's child process, and
the figures come from its answers."""

from __future__ import annotations

import pytest

from benchmarks.triage import Task, run_diet_apart, score

pytestmark = pytest.mark.rasa  # Rasa trains DIET in a child process

TOPICS = {
    "refund": ["refund my order", "I want my money back", "return and refund please", "refund the payment"],
    "delivery": ["where is my parcel", "the courier is late", "delivery has not arrived", "track my package"],
    "password": ["reset my password", "cannot log in", "forgot my password", "login code never came"],
}


def tiny_task() -> Task:
    """Three topics, ten training texts each (more than the cap) and three test texts each."""
    train_texts, train_labels, test_texts, test_labels = [], [], [], []
    for label, phrases in TOPICS.items():
        for number in range(10):
            train_texts.append(f"{phrases[number % 3]} number {number}")
            train_labels.append(label)
        test_texts.append(phrases[3])
        test_labels.append(label)
        test_texts.append(f"{phrases[0]} now")
        test_labels.append(label)
        test_texts.append(f"please {phrases[1]}")
        test_labels.append(label)
    return Task("tiny", train_texts, train_labels, test_texts, test_labels)


def test_diet_trains_predicts_and_scores_its_own_answers() -> None:
    task = tiny_task()
    run = run_diet_apart(task, epochs=2, max_per_class=8)

    assert len(run.predicted) == len(task.test_texts)
    assert set(run.predicted) <= set(TOPICS)
    right = sum(p == y for p, y in zip(run.predicted, task.test_labels, strict=True))
    assert run.figures["accuracy"] == round(right / len(task.test_labels) * 100, 2)
    assert run.figures["macro_f1"] == score(task, run.predicted)["macro_f1"]
    assert 0 <= run.figures["accuracy"] <= 100
    # The cap is reported, never applied silently: 8 of each topic's 10 examples.
    assert run.figures["diet_train_examples"] == 24
    assert run.figures["diet_max_per_class"] == 8
    assert run.figures["epochs"] == 2
    assert run.figures["train_seconds"] > 0
    assert run.figures["predict_ms_batch"] > 0 and run.figures["predict_ms_single"] > 0
    assert run.figures["model_mb"] > 0 and run.figures["peak_rss_mb"] > 0
