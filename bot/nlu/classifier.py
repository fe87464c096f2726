"""Rasa's LogisticRegressionClassifier, made safe for messages that yield no features at all (empty text)."""

from __future__ import annotations

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message

FALLBACK_INTENT = "nlu_fallback"


def has_features(message: Message) -> bool:
    """True when the featurizers produced something the classifier can read."""
    sparse_sentence = message.get_sparse_features(attribute=TEXT)[1]
    dense_sentence = message.get_dense_features(attribute=TEXT)[1]
    return any(
        features is not None and features.features.shape[-1] > 0 for features in (sparse_sentence, dense_sentence)
    )


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class FeatureSafeLogisticRegressionClassifier(LogisticRegressionClassifier):
    """Upstream crashes (HTTP 500, turn lost) on featureless text; here such messages become ``nlu_fallback``."""

    def process(self, messages: list[Message]) -> list[Message]:
        """Classify messages with features; mark the rest as fallback instead of failing the whole batch."""
        featured = [message for message in messages if has_features(message)]
        if featured:
            super().process(featured)
        for message in messages:
            if not has_features(message):
                intent = {INTENT_NAME_KEY: FALLBACK_INTENT, PREDICTED_CONFIDENCE_KEY: 1.0}
                message.set(INTENT, intent, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [intent], add_to_output=True)
        return messages
