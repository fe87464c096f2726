"""Messages with nothing to classify go to the fallback, never a guess.

What counts as such a message (empty, oversized, wordless, markup, an unserved script) is decided by
:func:`router.triage.bad_input.bad_input_reason`, which ``action_nlu_fallback`` also asks to choose
``utter_bad_input`` over ``utter_ask_rephrase``.
"""

from __future__ import annotations

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.stateless import StatelessComponent
from router.triage.bad_input import bad_input_reason

FALLBACK_INTENT = "nlu_fallback"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False)
class InputGuard(StatelessComponent):
    """Overrides the intent with ``nlu_fallback`` for bad input, so ``action_nlu_fallback`` answers politely."""

    def process(self, messages: list[Message]) -> list[Message]:
        """Replace the classifier's guess on messages that carry nothing to classify."""
        for message in messages:
            if bad_input_reason(message.get(TEXT)) is not None:
                intent = {INTENT_NAME_KEY: FALLBACK_INTENT, PREDICTED_CONFIDENCE_KEY: 1.0}
                message.set(INTENT, intent, add_to_output=True)
                message.set(INTENT_RANKING_KEY, [intent, *message.get(INTENT_RANKING_KEY, [])], add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Training data passes through untouched."""
        return training_data
