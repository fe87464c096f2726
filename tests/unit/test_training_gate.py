"""The gate's figures and verdict, and the held-back split it is judged on."""

from __future__ import annotations

from pathlib import Path

from router.settings import PROJECT_ROOT
from router.training.gate import judge, score
from router.training.nlu_yaml import Example
from router.training.rasa_runner import Prediction
from router.training.staging import split_examples, stage_project


def _predictions(pairs: list[tuple[str, str]]) -> list[Prediction]:
    return [Prediction(f"text {i}", expected, predicted, 0.9) for i, (expected, predicted) in enumerate(pairs)]


def test_scores_count_accuracy_macro_f1_and_confusions() -> None:
    scores = score(_predictions([("greet", "greet"), ("greet", "goodbye"), ("goodbye", "goodbye"), ("bye", "greet")]))
    assert scores.accuracy == 0.5
    assert scores.per_label_f1 == {"bye": 0.0, "goodbye": 0.6667, "greet": 0.5}
    assert scores.macro_f1 == round((0.0 + 2 / 3 + 0.5) / 3, 4)
    assert scores.confusions == [
        {"expected": "greet", "predicted": "goodbye", "count": 1},
        {"expected": "bye", "predicted": "greet", "count": 1},
    ]


def test_worse_beyond_tolerance_is_refused_within_tolerance_passes() -> None:
    previous = _predictions([("a", "a")] * 50 + [("b", "b")] * 50)
    slightly_worse = _predictions([("a", "a")] * 50 + [("b", "b")] * 49 + [("b", "a")])
    much_worse = _predictions([("a", "a")] * 50 + [("b", "a")] * 50)
    assert judge(slightly_worse, previous, tolerance=0.02).passed
    refused = judge(much_worse, previous, tolerance=0.02)
    assert not refused.passed
    assert any("accuracy fell from 1.000 to 0.500" in reason for reason in refused.reasons)
    assert refused.per_label_change["b"] == -1.0


def test_first_model_passes_without_comparison() -> None:
    report = judge(_predictions([("a", "b")]), None, tolerance=0.02)
    assert report.passed and report.previous is None


def test_held_back_split_is_stable_and_skips_small_intents() -> None:
    examples = [Example(f"sentence number {i}", "big") for i in range(100)] + [Example("only one", "small")]
    train, heldout = split_examples(examples)
    assert split_examples(list(reversed(examples)))[1] == list(reversed(heldout)), "split depends on text only"
    assert 10 <= len(heldout) <= 30
    assert Example("only one", "small") in train
    assert not set(train) & set(heldout)


def test_staged_project_holds_back_examples_from_training(tmp_path: Path) -> None:
    staged = stage_project(PROJECT_ROOT, PROJECT_ROOT / "data", tmp_path / "stage")
    train_text = (staged.data_dir / "nlu" / "train.yml").read_text(encoding="utf-8")
    assert staged.heldout_examples
    assert all(f"- {example.text}\n" not in train_text for example in staged.heldout_examples)
    assert (staged.domain_dir / "domain.yml").exists() and (staged.data_dir / "rules.yml").exists()
    again = stage_project(PROJECT_ROOT, PROJECT_ROOT / "data", tmp_path / "again")
    assert again.data_hash == staged.data_hash
