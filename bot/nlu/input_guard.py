"""Messages with nothing to classify go to the fallback, never a guess.

That is: empty, oversized, wordless (emoji only, control characters), markup (HTML/script) and text in a script we
do not serve (Japanese kana, Korean, Cyrillic, Arabic, Thai, Devanagari). ``action_nlu_fallback`` calls
:func:`bad_input_reason` to choose ``utter_bad_input`` over ``utter_ask_rephrase``.
"""

from __future__ import annotations

import re
import unicodedata

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.stateless import StatelessComponent

# A real customer message is far shorter; anything longer is pasted logs or an attack, not a question to classify.
MAX_MESSAGE_CHARACTERS = 2000
FALLBACK_INTENT = "nlu_fallback"
WORD = re.compile(r"[^\W_]", re.UNICODE)
TERMINAL_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
MARKUP = re.compile(r"<\s*/?\s*[A-Za-z][^>]*>")
UNSERVED_SCRIPT = re.compile(r"[\u3040-\u30ff\uac00-\ud7af\u0400-\u04ff\u0600-\u06ff\u0e00-\u0e7f\u0900-\u097f]")


def bad_input_reason(text: str | None) -> str | None:
    """Why a message cannot be understood ('empty', 'too_long', 'no_words', 'markup', 'other_language'), or None."""
    if not text or not text.strip():
        return "empty"
    if len(text) > MAX_MESSAGE_CHARACTERS:
        return "too_long"
    printable = "".join(ch for ch in TERMINAL_ESCAPE.sub("", text) if unicodedata.category(ch)[0] != "C")
    if not WORD.search(printable):
        return "no_words"
    if MARKUP.search(text):
        return "markup"
    if UNSERVED_SCRIPT.search(text):
        return "other_language"
    return None


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
