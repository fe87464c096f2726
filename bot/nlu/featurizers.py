"""Regex and cue-word features that weigh as much as the word and character counts beside them."""

from __future__ import annotations

from typing import Any

import scipy.sparse
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.featurizers.sparse_featurizer.regex_featurizer import RegexFeaturizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

# Chosen by 5-fold cross-validation on data/nlu (BENCHMARKS.md, NLU cross-validation): 1 → 0.83, 3 → 0.85, 5 → 0.84.
DEFAULT_WEIGHT = 3.0
# Message property: names of the regexes and cue lists that matched the text (for the unknown-text check).
MATCHED_PATTERNS = "matched_patterns"


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class WeightedRegexFeaturizer(RegexFeaturizer):
    """Rasa's RegexFeaturizer with its 0/1 match features scaled by ``weight``.

    A message's word and char n-gram counts run into the tens, so a single 0/1 "contains a goodbye word" feature is
    drowned by them under the classifier's regularisation; scaling it lets the cue lists in data/nlu/cues.yml count.
    """

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Rasa's defaults plus the weight of a match."""
        return {**RegexFeaturizer.get_default_config(), "weight": DEFAULT_WEIGHT}

    def _features_for_patterns(
        self, message: Message, attribute: str
    ) -> tuple[scipy.sparse.coo_matrix | None, scipy.sparse.coo_matrix | None]:
        """Upstream's match features, multiplied by the configured weight; the matched names noted on the message."""
        sequence, sentence = super()._features_for_patterns(message, attribute)
        if sentence is not None and attribute == TEXT:
            # Upstream also marks tokens, but keyed by name: each cue list has a Chinese and an English regex, and the
            # one sorted last resets the other's mark, so English cues never showed. The sentence vector is exact.
            names = {self.known_patterns[column]["name"] for column in sentence.col[sentence.data > 0]}
            message.set(MATCHED_PATTERNS, sorted(names))
        weight = float(self._config["weight"])
        if sequence is not None:
            sequence = sequence * weight
        if sentence is not None:
            sentence = sentence * weight
        return sequence, sentence
