"""Which language a customer wrote in, so the bot answers in it (Chinese, English, or mixed such as 我的order还没到)."""

from __future__ import annotations

import re

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.stateless import StatelessComponent

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
# Scripts of languages we do not serve: their speakers get English, the likelier shared language.
OTHER_SCRIPT = re.compile(r"[\u3040-\u30ff\uac00-\ud7af\u0400-\u04ff\u0600-\u06ff\u0e00-\u0e7f\u0900-\u097f]")
LANGUAGE_ENTITY = "language"


def detect_language(text: str) -> str | None:
    """'zh' or 'en' for a customer message, or None when it has no words to judge (digits, emoji, empty)."""
    if OTHER_SCRIPT.search(text):
        return "en"
    han_characters = len(HAN.findall(text))
    latin_words = len(LATIN_WORD.findall(text))
    # Mixed messages ("我的order 12345 还没到") come from Chinese speakers who borrow English product words.
    if han_characters and han_characters >= latin_words:
        return "zh"
    if latin_words or han_characters:
        return "en" if latin_words else "zh"
    return None


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class LanguageDetector(StatelessComponent):
    """Adds a ``language`` entity to every message with words, which fills the ``language`` slot."""

    def process(self, messages: list[Message]) -> list[Message]:
        """Tag each incoming message with its language."""
        for message in messages:
            self._tag(message)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Training data passes through untouched: the language entity is never learned."""
        return training_data

    @staticmethod
    def _tag(message: Message) -> None:
        text = message.get(TEXT) or ""
        language = detect_language(text)
        if language is None:
            return
        entity = {
            "entity": LANGUAGE_ENTITY,
            "value": language,
            "start": 0,
            "end": len(text),
            "confidence": 1.0,
            "extractor": LanguageDetector.__name__,
        }
        message.set(ENTITIES, [*message.get(ENTITIES, []), entity], add_to_output=True)
