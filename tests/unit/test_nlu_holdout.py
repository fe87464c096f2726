"""The held-out NLU benchmark scores what the model said against the labels: a wrong or fallback answer is a miss."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.nlu_holdout import HeldOutMessage, Prediction, evaluate, figures, load_holdout, training_overlap

HI = HeldOutMessage("你好", "greet", "zh")
BYE = HeldOutMessage("bye", "goodbye", "en")
WHERE = HeldOutMessage("where is my order", "check_status", "en")
BROKEN = HeldOutMessage("屏幕碎了", "complain", "zh")


def test_wrong_and_fallback_predictions_are_misses() -> None:
    predictions = [
        Prediction(HI, "greet", 0.9),
        Prediction(BYE, "greet", 0.6),  # wrong: costs goodbye's recall and greet's precision
        Prediction(WHERE, "nlu_fallback", 0.3),  # the bot would ask to rephrase: not an answer
        Prediction(BROKEN, "complain", 0.8),
    ]
    evaluation = evaluate(predictions, overlap=[])
    assert [miss.message for miss in evaluation.misses] == [BYE, WHERE]
    assert evaluation.overall.accuracy == 0.5
    assert evaluation.overall.per_intent["greet"] == {"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 1}
    assert evaluation.overall.per_intent["goodbye"]["recall"] == 0.0
    assert evaluation.overall.per_intent["check_status"]["f1"] == 0.0
    assert "nlu_fallback" not in evaluation.overall.per_intent  # not a label: it only costs recall
    assert evaluation.overall.macro_f1 == pytest.approx((2 / 3 + 0 + 0 + 1) / 4)
    assert evaluation.fallbacks == 1
    assert evaluation.by_language["zh"].accuracy == 1.0 and evaluation.by_language["en"].accuracy == 0.0


def test_messages_also_in_the_training_data_are_left_out_of_the_unseen_figure(tmp_path: Path) -> None:
    (tmp_path / "nlu").mkdir()
    (tmp_path / "nlu" / "en_social.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: goodbye\n  examples: |\n    - Bye\n    - see you\n', encoding="utf-8"
    )
    overlap = training_overlap([HI, BYE, WHERE], tmp_path)
    assert overlap == [BYE]  # case and spacing do not make a sentence new
    evaluation = evaluate([Prediction(HI, "greet", 0.9), Prediction(BYE, "thanks", 0.5)], overlap)
    assert evaluation.unseen is not None and evaluation.unseen.messages == 1 and evaluation.unseen.accuracy == 1.0
    line = figures(evaluation, Path("models/nlu/v1.tar.gz"))
    assert list(line)[:5] == ["macro_f1", "accuracy", "macro_f1_zh", "macro_f1_en", "messages"]
    assert line["accuracy"] == 0.5 and line["accuracy_unseen"] == 1.0 and line["in_training_data"] == 1


def test_held_out_file_needs_a_language_on_every_block(tmp_path: Path) -> None:
    good = tmp_path / "good.yml"
    good.write_text(
        'version: "3.1"\nnlu:\n- intent: greet\n  metadata:\n    lang: zh\n  examples: |\n    - 在吗\n'
        "- intent: greet\n  metadata:\n    lang: en\n  examples: |\n    - hey there\n",
        encoding="utf-8",
    )
    assert load_holdout(good) == [HeldOutMessage("在吗", "greet", "zh"), HeldOutMessage("hey there", "greet", "en")]
    bad = tmp_path / "bad.yml"
    bad.write_text('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n', encoding="utf-8")
    with pytest.raises(ValueError, match="metadata lang"):
        load_holdout(bad)
