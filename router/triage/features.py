"""Bilingual TF-IDF features, and a lean transform of fitted vectorizers for per-message speed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from scipy.sparse import csr_matrix
from sklearn.feature_extraction.text import TfidfVectorizer

from router.triage.text import word_tokens


def word_vectorizer(ngrams: tuple[int, int] = (1, 2), min_df: int = 1) -> TfidfVectorizer:
    """Word n-grams: jieba words for Chinese, plain words for English; input is already normalised."""
    return TfidfVectorizer(
        tokenizer=word_tokens, token_pattern=None, lowercase=False, ngram_range=ngrams, sublinear_tf=True, min_df=min_df
    )


def char_vectorizer(ngrams: tuple[int, int] = (1, 4)) -> TfidfVectorizer:
    """Character n-grams within words: robust to typos and to Chinese that jieba splits badly."""
    return TfidfVectorizer(analyzer="char_wb", lowercase=False, ngram_range=ngrams, sublinear_tf=True, min_df=2)


class CompiledFeatures:
    """The same matrix as hstack of fitted TfidfVectorizers' transforms, minus sklearn's per-call overhead.

    sklearn spends milliseconds validating and multiplying sparse diagonals per call; one message must take
    well under that, so this applies each vectorizer's analyzer, vocabulary, idf and l2 norm directly.
    """

    def __init__(self, vectorizers: Sequence[TfidfVectorizer]) -> None:
        self.parts = []
        offset = 0
        for vectorizer in vectorizers:
            self.parts.append((vectorizer.build_analyzer(), vectorizer.vocabulary_, vectorizer.idf_, offset))
            offset += len(vectorizer.vocabulary_)
        self.width = offset
        self.names = np.concatenate([vectorizer.get_feature_names_out() for vectorizer in vectorizers])

    def transform(self, texts: Sequence[str]) -> csr_matrix:
        """Sublinear-tf × idf, l2-normalised per vectorizer, side by side; texts must already be normalised."""
        indptr, indices, data, filled = [0], [], [], 0
        for text in texts:
            for analyze, vocabulary, idf, offset in self.parts:
                counts = Counter(column for column in map(vocabulary.get, analyze(text)) if column is not None)
                if counts:
                    columns = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
                    weights = (1.0 + np.log(np.fromiter(counts.values(), dtype=float, count=len(counts)))) * idf[
                        columns
                    ]
                    indices.append(columns + offset)
                    data.append(weights / np.linalg.norm(weights))
                    filled += len(columns)
            indptr.append(filled)
        if not data:
            return csr_matrix((len(texts), self.width))
        return csr_matrix((np.concatenate(data), np.concatenate(indices), indptr), shape=(len(texts), self.width))
