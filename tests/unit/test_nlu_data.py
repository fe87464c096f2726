"""NLU data keeps the guide's floor and leaves out the held-out test phrasings; the fallback asks when unsure."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml
from rasa.nlu.classifiers.fallback_classifier import FallbackClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

from benchmarks.nlu_cross_validation import PROJECT_ROOT, intent_language_counts, load_nlu_data
from tests.support.nlu_messages import UNSEEN_FALLBACK_MESSAGES, UNSEEN_MESSAGES

CONFIG_FILE = PROJECT_ROOT / "config.yml"
# data/nlu/README.md: at least 40 distinct examples per core intent per language.
MINIMUM_EXAMPLES_PER_LANGUAGE = 40


def test_every_intent_has_40_distinct_examples_in_each_language() -> None:
    data = load_nlu_data()
    distinct = {(example.get("intent"), example.get("text").strip().lower()) for example in data.intent_examples}
    assert len(distinct) == len(data.intent_examples), "an example is listed twice"
    short = {
        intent: counts
        for intent, counts in intent_language_counts(data).items()
        if min(counts.get("zh", 0), counts.get("en", 0)) < MINIMUM_EXAMPLES_PER_LANGUAGE
    }
    assert not short


def test_held_out_phrasings_are_not_training_examples() -> None:
    texts = Counter(example.get("text").strip().lower() for example in load_nlu_data().intent_examples)
    held_out = [text for text, _ in UNSEEN_MESSAGES] + list(UNSEEN_FALLBACK_MESSAGES)
    assert [text for text in held_out if text.strip().lower() in texts] == []


def fallback_classifier() -> FallbackClassifier:
    """Rasa's FallbackClassifier with the thresholds config.yml gives it."""
    pipeline = yaml.safe_load(CONFIG_FILE.read_text(encoding="utf-8"))["pipeline"]
    settings = next(component for component in pipeline if component["name"] == "FallbackClassifier")
    return FallbackClassifier({**FallbackClassifier.get_default_config(), **settings})


@pytest.mark.parametrize(
    ("ranking", "intent"),
    [
        ([("complain", 0.45), ("check_status", 0.40)], "nlu_fallback"),  # nearly tied: ask rather than guess
        ([("complain", 0.55), ("check_status", 0.40)], "complain"),
        ([("greet", 0.25), ("affirm", 0.05)], "nlu_fallback"),  # too unsure
    ],
)
def test_the_bot_asks_to_rephrase_when_unsure_or_torn(ranking: list[tuple[str, float]], intent: str) -> None:
    ranked = [{"name": name, "confidence": confidence} for name, confidence in ranking]
    message = Message(data={TEXT: "…", INTENT: ranked[0], INTENT_RANKING_KEY: ranked})
    assert fallback_classifier().process([message])[0].get(INTENT)["name"] == intent
