"""The shipped training side of the public data against the shared files it came from (skips without them)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from router.public_data.sides import held_out_rows, training_rows
from router.public_data.sources import shippable_rows
from router.public_data.split import NEAR_COPY_COSINE, canonical
from router.settings import get_settings

SETTINGS = get_settings()
SHARED = SETTINGS.shared_data_dir
PUBLIC = SETTINGS.data_dir / "public"
pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason=f"no shared data sets at {SHARED}")


def test_training_and_held_out_sides_cover_the_shared_rows_without_overlap() -> None:
    shipped = training_rows(PUBLIC)
    held_out = held_out_rows(SHARED, PUBLIC)
    assert len(shipped) + len(held_out) == len(shippable_rows(SHARED))
    assert not {canonical(row.text) for row in shipped} & {canonical(row.text) for row in held_out}
    assert 0.25 < len(held_out) / (len(shipped) + len(held_out)) < 0.35


@pytest.mark.slow  # compares every held-out sentence with every shipped one
def test_no_held_out_sentence_is_a_near_copy_of_a_shipped_one() -> None:
    shipped = [canonical(row.text) for row in training_rows(PUBLIC)]
    sample = [canonical(row.text) for row in random.Random(7).sample(held_out_rows(SHARED, PUBLIC), 400)]
    vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, dtype=np.float32)
    vectors.fit(shipped + sample)
    nearest = (vectors.transform(sample) @ vectors.transform(shipped).T).max(axis=1).toarray().ravel()
    assert nearest.max() < NEAR_COPY_COSINE + 0.02
