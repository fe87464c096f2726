"""Rasa's LogisticRegressionClassifier, made safe for featureless text, wary of words it has never seen, and optionally
blended with a complement naive Bayes model."""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np
import skops.io as sio
from rasa.engine.graph import ExecutionContext
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.logistic_regression_classifier import LogisticRegressionClassifier
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import (
    FEATURE_TYPE_SENTENCE,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.utils.tensorflow.constants import RANKING_LENGTH
from scipy.sparse import coo_matrix, csr_matrix, vstack
from sklearn.naive_bayes import ComplementNB

from bot.nlu.featurizers import MATCHED_PATTERNS
from bot.nlu.language import HAN

FALLBACK_INTENT = "nlu_fallback"
KNOWN_WORDS_FILE = "known_words.json"
NAIVE_BAYES_FILE = "complement_naive_bayes.skops"
# Config keys: the naive Bayes model's share of the blended probabilities (0 = logistic regression alone, as upstream),
# and its additive smoothing.
NAIVE_BAYES_WEIGHT = "naive_bayes_weight"
NAIVE_BAYES_ALPHA = "naive_bayes_alpha"
LETTERS = re.compile(r"[^\W\d_]", re.UNICODE)
HAN_RUN = re.compile(f"{HAN.pattern}+")
# Characters Chinese writes for their sound: modal particles, interjections and the onomatopoeia made of them
# (叽里呱啦, 哔哩哔哩, 噼里啪啦). Each occurs somewhere in training, so alone they would make any string of them known
# and let the classifier guess (nine of fifteen such strings were taken as "affirm"; BENCHMARKS.md, NLU rounds 6, 7).
SOUND_SYLLABLES = frozenset(
    "啊阿吧巴啦拉呀哦噢喔嗯哼哈呵嘿嘻哩里哔叽呱咕噜哗噼啪嘟嘀嗒咚唉哎诶欸呦哟喽嘛呢咯嘞呐哇呜嗷嗨啧咦"
)


def sentence_features(message: Message) -> csr_matrix:
    """The one row the classifier reads: the sentence features, sparse then dense, in the featurizers' order.

    The same matrix as upstream's ``get_sparse_features``/``get_dense_features``, which also join every token's
    features (never read here) through deep copies and scipy's general stacking, and took more CPU per message than
    the classification itself; here the row's entries are laid end to end once.
    """
    sentence = [f for f in message.features if f.attribute == TEXT and f.type == FEATURE_TYPE_SENTENCE]
    rows = [coo_matrix(f.features) for f in sentence if f.is_sparse()]
    rows += [coo_matrix(f.features) for f in sentence if f.is_dense()]
    if not rows:
        return csr_matrix((1, 0))
    offsets = np.cumsum([0] + [row.shape[1] for row in rows])
    values = np.concatenate([row.data for row in rows])
    columns = np.concatenate([row.col + offset for row, offset in zip(rows, offsets, strict=False)])
    return csr_matrix((values, columns, [0, len(values)]), shape=(1, offsets[-1]))


def has_features(message: Message) -> bool:
    """True when the featurizers produced something the classifier can read."""
    return sentence_features(message).shape[-1] > 0


def words_of(message: Message) -> list[str]:
    """What can be known or unknown in a message: its lower-cased Latin words and, in Chinese, every character that
    carries meaning alone and every pair of adjacent characters.

    Chinese goes by character because jieba splits an unseen phrase differently in every context ("跳过" alone is one
    word, inside "这题跳过吧" two). Sound syllables count only as part of a pair, so that "好吧" and "嗯嗯" stay
    known and "叽里呱啦" does not. Numbers and marks never count.
    """
    words = []
    for token in message.get(TOKENS_NAMES[TEXT]) or []:
        text = token.text.lower()
        if LETTERS.search(text) and not HAN.search(text):
            words.append(text)
    for run in HAN_RUN.findall(message.get(TEXT) or ""):
        words.extend(character for character in run if character not in SOUND_SYLLABLES or len(run) == 1)
        words.extend(run[start : start + 2] for start in range(len(run) - 1))
    return words


def matched_a_pattern(message: Message) -> bool:
    """True when an entity regex or a cue list of data/nlu matched (noted by the WeightedRegexFeaturizer)."""
    return bool(message.get(MATCHED_PATTERNS))


def is_unknown_text(message: Message, known_words: set[str]) -> bool:
    """Text with not one known word and no cue: gibberish ("asdf qwer", "阿巴阿巴") or a language we do not serve."""
    if not known_words:
        return False
    words = words_of(message)
    return bool(words) and not any(word in known_words for word in words) and not matched_a_pattern(message)


def set_fallback(message: Message) -> None:
    """Mark a message as not understood, keeping the classifier's ranking (if any) for the log."""
    intent = {INTENT_NAME_KEY: FALLBACK_INTENT, PREDICTED_CONFIDENCE_KEY: 1.0}
    message.set(INTENT, intent, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [intent, *message.get(INTENT_RANKING_KEY, [])], add_to_output=True)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class FeatureSafeLogisticRegressionClassifier(LogisticRegressionClassifier):
    """Upstream crashes (HTTP 500, turn lost) on featureless text; here such messages become ``nlu_fallback``.

    So does text none of whose words was ever seen in training and that matches no cue: character n-grams find
    something familiar in any string, so "asdfgh qwerty", "阿巴阿巴" or French would otherwise get a confident guess.
    Chinese is judged by character and by pair of characters: a real message shares one with the training examples,
    where a string of sound syllables ("叽里呱啦") shares only characters that mean nothing alone.

    With ``naive_bayes_weight`` above 0, the intent probabilities are that share of a ComplementNB model's plus the rest
    of the logistic regression's, both fitted on the same count features (ComplementNB needs them non-negative, as
    word, character and cue counts are). Naive Bayes weighs every word it saw for an intent on its own, where the
    regression spreads the weight among words that occur together; the blend raised cross-validated macro-F1 by ~0.004
    (BENCHMARKS.md, NLU cross-validation, round 6).
    """

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Upstream's options plus the naive Bayes blend, off by default."""
        return {**LogisticRegressionClassifier.get_default_config(), NAIVE_BAYES_WEIGHT: 0.0, NAIVE_BAYES_ALPHA: 0.3}

    def __init__(self, config: dict[str, Any], name: str, model_storage: ModelStorage, resource: Resource) -> None:
        """Upstream's classifier plus the training vocabulary and, once trained with a blend, the naive Bayes model."""
        super().__init__(config, name, model_storage, resource)
        self.known_words: set[str] = set()
        self.naive_bayes: ComplementNB | None = None

    def train(self, training_data: TrainingData) -> Resource:
        """Train upstream's classifier (and the naive Bayes model, if blended) and remember every training word."""
        self.known_words = {word for example in training_data.intent_examples for word in words_of(example)}
        X, y = self._create_training_matrix(training_data)
        if X.shape[0] == 0:  # upstream logs and skips training
            return super().train(training_data)
        self.clf.fit(X, y)
        if self.config[NAIVE_BAYES_WEIGHT] > 0:
            self.naive_bayes = ComplementNB(alpha=self.config[NAIVE_BAYES_ALPHA]).fit(X, y)
        self.persist()
        return self._resource

    def persist(self) -> None:
        """Store the classifier, the known words and the naive Bayes model (with skops, as upstream stores its own)."""
        super().persist()
        with self._model_storage.write_to(self._resource) as model_dir:
            (model_dir / KNOWN_WORDS_FILE).write_text(json.dumps(sorted(self.known_words)), encoding="utf-8")
            if self.naive_bayes is not None:
                sio.dump(self.naive_bayes, model_dir / NAIVE_BAYES_FILE)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> FeatureSafeLogisticRegressionClassifier:
        """Load upstream's classifier, then the known words and the naive Bayes model (older models have neither).

        The naive Bayes file is loaded with skops' default trust (scikit-learn's own types only): a file holding
        anything else raises instead of running unknown code, and is not silently dropped as upstream drops its own.
        """
        component = super().load(config, model_storage, resource, execution_context, **kwargs)
        try:
            with model_storage.read_from(resource) as model_dir:
                path = model_dir / KNOWN_WORDS_FILE
                if path.exists():
                    component.known_words = set(json.loads(path.read_text(encoding="utf-8")))
                if (model_dir / NAIVE_BAYES_FILE).exists():
                    component.naive_bayes = sio.load(model_dir / NAIVE_BAYES_FILE, trusted=False)
        except ValueError:  # no stored resource: upstream already returned an untrained classifier
            pass
        return component

    def _create_X(self, messages: list[Message]) -> csr_matrix:
        """Upstream's matrix, built from the sentence features alone (for training and prediction alike)."""
        return vstack([sentence_features(message) for message in messages], format="csr")

    def predict_proba(self, X: csr_matrix) -> np.ndarray:
        """Each row's intent probabilities (in ``self.clf.classes_`` order): the regression's, or the blend's."""
        probabilities = self.clf.predict_proba(X)
        if self.naive_bayes is None:
            return probabilities
        weight = self.config[NAIVE_BAYES_WEIGHT]
        return (1 - weight) * probabilities + weight * self.naive_bayes.predict_proba(X)

    def _rank(self, messages: list[Message]) -> None:
        """Set each message's intent and ranking as upstream's ``process`` does, from ``predict_proba``."""
        for message, row in zip(messages, self.predict_proba(self._create_X(messages)), strict=True):
            scores = zip(self.clf.classes_, row.tolist(), strict=True)
            ranking = [
                {INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: p} for name, p in sorted(scores, key=lambda e: -e[1])
            ]
            message.set(INTENT, ranking[0], add_to_output=True)
            if self.config[RANKING_LENGTH] > 0:
                ranking = ranking[: self.config[RANKING_LENGTH]]
            message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)

    def process(self, messages: list[Message]) -> list[Message]:
        """Classify messages with features; the rest, and unknown text, go to the fallback."""
        readable = [has_features(message) for message in messages]
        if any(readable):
            self._rank([message for message, ok in zip(messages, readable, strict=True) if ok])
        for message, ok in zip(messages, readable, strict=True):
            if not ok or is_unknown_text(message, self.known_words):
                set_fallback(message)
        return messages
