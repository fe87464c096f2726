"""The classifier's own sentence-feature row is exactly the matrix upstream Rasa would have built."""

from __future__ import annotations

import numpy as np
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, FEATURE_TYPE_SEQUENCE, TEXT
from rasa.shared.nlu.training_data.features import Features
from rasa.shared.nlu.training_data.message import Message
from scipy.sparse import coo_matrix, csr_matrix, hstack

from bot.nlu.classifier import has_features, sentence_features


def upstream_row(message: Message) -> np.ndarray:
    """What Rasa's LogisticRegressionClassifier._create_X builds for one message."""
    sparse = message.get_sparse_features(attribute=TEXT)[1]
    dense = message.get_dense_features(attribute=TEXT)[1]
    return hstack(
        [csr_matrix(sparse.features if sparse else []), csr_matrix(dense.features if dense else [])]
    ).toarray()


def message_with(*features: Features) -> Message:
    message = Message(data={TEXT: "我要退货 refund"})
    for feature in features:
        message.add_features(feature)
    return message


def sparse(values: list[float], kind: str = FEATURE_TYPE_SENTENCE, origin: str = "counts") -> Features:
    return Features(coo_matrix(np.array([values])), kind, TEXT, origin)


def test_sparse_and_dense_rows_join_in_upstream_order() -> None:
    message = message_with(
        sparse([0, 3.0, 0, 1.0], origin="regex"),
        sparse([1.0, 1.0, 0], kind=FEATURE_TYPE_SEQUENCE, origin="regex"),  # token rows: never read
        sparse([2.0, 0, 0, 0, 5.0], origin="words"),
        Features(np.array([[0.5, 0.0, -1.0]]), FEATURE_TYPE_SENTENCE, TEXT, "dense"),
        sparse([0, 0, 7.0], origin="chars"),
    )

    row = sentence_features(message)

    assert row.shape == (1, 15)
    np.testing.assert_array_equal(row.toarray(), upstream_row(message))
    assert has_features(message)


def test_message_without_sentence_features_has_none() -> None:
    message = message_with(sparse([1.0, 0, 2.0], kind=FEATURE_TYPE_SEQUENCE))

    assert sentence_features(message).shape == (1, 0)
    assert not has_features(message)


def test_all_zero_features_still_count_as_features() -> None:
    message = message_with(sparse([0, 0, 0]))

    np.testing.assert_array_equal(sentence_features(message).toarray(), upstream_row(message))
    assert has_features(message)
