"""The intent classifier's naive Bayes blend: what it computes, that it survives Rasa's model storage, and that older
models and featureless text still behave as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import CountVectorsFeaturizer
from rasa.nlu.tokenizers.jieba_tokenizer import JiebaTokenizer
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from sklearn.naive_bayes import ComplementNB

from bot.nlu.classifier import (
    FALLBACK_INTENT,
    NAIVE_BAYES_ALPHA,
    NAIVE_BAYES_FILE,
    NAIVE_BAYES_WEIGHT,
    FeatureSafeLogisticRegressionClassifier,
)

EXAMPLES = {
    "greet": ["你好", "hello there", "hi", "您好啊", "good morning", "嗨"],
    "complain": [
        "东西坏了我要投诉",
        "the kettle leaks",
        "客服态度太差",
        "this is broken and nobody helps",
        "投诉快递员",
    ],
    "check_status": ["我的订单到哪了", "where is my order", "退款进度怎么样", "has my parcel shipped", "查一下物流"],
}
BLENDED = {NAIVE_BAYES_WEIGHT: 0.2, NAIVE_BAYES_ALPHA: 0.3}


class Pipeline:
    """jieba and word counts, as in config.yml, then our classifier: everything in one local model storage."""

    def __init__(self, path: Path) -> None:
        self.storage = LocalModelStorage(path)
        self.context = ExecutionContext(GraphSchema({}), "test")
        self.tokenizer = JiebaTokenizer.create(
            JiebaTokenizer.get_default_config(), self.storage, Resource("jieba"), self.context
        )
        self.counts = CountVectorsFeaturizer.create(
            CountVectorsFeaturizer.get_default_config(), self.storage, Resource("counts"), self.context
        )
        self.data = TrainingData(
            [Message(data={TEXT: text, INTENT: intent}) for intent, texts in EXAMPLES.items() for text in texts]
        )
        self.tokenizer.process_training_data(self.data)
        self.counts.train(self.data)
        self.counts.process_training_data(self.data)

    def config(self, **options: float) -> dict:
        return {**FeatureSafeLogisticRegressionClassifier.get_default_config(), **options}

    def train(self, resource: Resource, **options: float) -> FeatureSafeLogisticRegressionClassifier:
        classifier = FeatureSafeLogisticRegressionClassifier.create(
            self.config(**options), self.storage, resource, self.context
        )
        classifier.train(self.data)
        return classifier

    def load(self, resource: Resource, **options: float) -> FeatureSafeLogisticRegressionClassifier:
        return FeatureSafeLogisticRegressionClassifier.load(
            self.config(**options), self.storage, resource, self.context
        )

    def featurize(self, *texts: str) -> list[Message]:
        messages = [Message(data={TEXT: text}) for text in texts]
        return self.counts.process(self.tokenizer.process(messages))


TEXTS = ("我的快递到哪了", "the kettle is broken", "hello", "退款什么时候到")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    return Pipeline(tmp_path_factory.mktemp("model"))


def test_the_blend_is_the_weighted_mean_of_regression_and_naive_bayes(pipeline: Pipeline) -> None:
    classifier = pipeline.train(Resource("blend"), **BLENDED)
    X = classifier._create_X(pipeline.featurize(*TEXTS))
    training_X, y = classifier._create_training_matrix(pipeline.data)
    naive_bayes = ComplementNB(alpha=0.3).fit(training_X, y)

    probabilities = classifier.predict_proba(X)

    np.testing.assert_allclose(
        probabilities, 0.8 * classifier.clf.predict_proba(X) + 0.2 * naive_bayes.predict_proba(X)
    )
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert not np.allclose(probabilities, classifier.clf.predict_proba(X))


def test_by_default_the_regression_alone_decides_as_upstream(pipeline: Pipeline) -> None:
    classifier = pipeline.train(Resource("default"))
    X = classifier._create_X(pipeline.featurize(*TEXTS))

    assert classifier.naive_bayes is None
    np.testing.assert_array_equal(classifier.predict_proba(X), classifier.clf.predict_proba(X))


def test_a_stored_blend_loads_and_ranks_as_it_was_trained(pipeline: Pipeline) -> None:
    resource = Resource("round_trip")
    trained = pipeline.train(resource, **BLENDED)
    loaded = pipeline.load(resource, **BLENDED)
    before, after = trained.process(pipeline.featurize(*TEXTS)), loaded.process(pipeline.featurize(*TEXTS))

    assert isinstance(loaded.naive_bayes, ComplementNB)
    assert loaded.known_words == trained.known_words
    for ours, theirs in zip(before, after, strict=True):
        assert ours.get(INTENT) == theirs.get(INTENT)
        assert ours.get(INTENT_RANKING_KEY) == theirs.get(INTENT_RANKING_KEY)
        assert sum(entry["confidence"] for entry in theirs.get(INTENT_RANKING_KEY)) == pytest.approx(1.0)


def test_a_model_stored_before_the_blend_loads_as_the_regression_alone(pipeline: Pipeline) -> None:
    resource = Resource("older")
    trained = pipeline.train(resource)
    with pipeline.storage.read_from(resource) as model_dir:
        assert not (model_dir / NAIVE_BAYES_FILE).exists()

    loaded = pipeline.load(resource, **BLENDED)
    X = loaded._create_X(pipeline.featurize(*TEXTS))

    assert loaded.naive_bayes is None
    np.testing.assert_array_equal(loaded.predict_proba(X), trained.clf.predict_proba(X))


@pytest.mark.parametrize("text", ["asdfgh qwerty", "哔哩哔哩吧啦", None])
def test_featureless_and_unknown_text_still_go_to_the_fallback(pipeline: Pipeline, text: str | None) -> None:
    classifier = pipeline.train(Resource("fallback"), **BLENDED)
    # None: a message no featurizer has seen, so it has no features at all.
    message = pipeline.featurize(text)[0] if text else Message(data={TEXT: "你好"})

    classifier.process([message])

    assert message.get(INTENT)[INTENT_NAME_KEY] == FALLBACK_INTENT
