"""Bilingual TF-IDF features: the classifier's words + characters, and a lean transform of fitted vectorizers."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer

from router.triage.ngrams import GAP, Cells, NgramTfidf, stacked
from router.triage.text import word_tokens

# Symbol ids are packed into one uint64 per n-gram: 4 characters of 16 bits, or 2 words of 32 bits.
CHAR_BITS = 16
WORD_BITS = 32
# Every Unicode code point, for the table from code point to character id.
CODE_POINTS = 0x110000


def word_vectorizer(ngrams: tuple[int, int] = (1, 2), min_df: int = 1) -> TfidfVectorizer:
    """Word n-grams: jieba words for Chinese, plain words for English; input is already normalised."""
    return TfidfVectorizer(
        tokenizer=word_tokens, token_pattern=None, lowercase=False, ngram_range=ngrams, sublinear_tf=True, min_df=min_df
    )


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


class TextFeatures:
    """Word 1–2-grams (jieba words for Chinese) beside within-word character 1–4-grams, each block l2-normalised.

    Texts must already be normalised. Each text is segmented once per call; words and characters get integer ids
    so the n-gram counting is numpy work (see router.triage.ngrams).
    """

    def __init__(
        self, word_ngrams: tuple[int, int] = (1, 2), char_ngrams: tuple[int, int] = (1, 4), word_min_df: int = 1
    ) -> None:
        self.words = NgramTfidf(word_ngrams, WORD_BITS, word_min_df)
        self.chars = NgramTfidf(char_ngrams, CHAR_BITS, min_df=2)
        self.tokens: dict[str, int] = {}
        self.token_names: list[str] = []
        self.alphabet = np.zeros(0, dtype=np.uint32)
        self._char_table = np.zeros(0, dtype=np.uint16)

    def __getstate__(self) -> dict[str, Any]:
        # The table is derived from the alphabet (and 2 MB): rebuilt on load rather than stored.
        return {key: value for key, value in self.__dict__.items() if key != "_char_table"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._build_char_table()

    def _build_char_table(self) -> None:
        """Character id of every code point (0: unknown), so mapping a text is one array lookup, not a search."""
        self._char_table = np.zeros(CODE_POINTS, dtype=np.uint16)
        self._char_table[self.alphabet] = np.arange(1, len(self.alphabet) + 1)

    @property
    def word_columns(self) -> int:
        """Columns before this are word n-grams, from it on character n-grams."""
        return self.words.width

    def fit_transform(self, texts: Sequence[str]) -> csr_matrix:
        """Learn tokens, characters, n-grams and idf from the texts; their matrix."""
        segmented = [word_tokens(text) for text in texts]
        for tokens in segmented:
            for token in tokens:
                self.tokens.setdefault(token, len(self.tokens) + 1)
        self.token_names = list(self.tokens)
        points, starts = _code_points(texts)
        alphabet, counts = np.unique(points[points != 0], return_counts=True)
        # Ids must fit 16 bits; beyond that the rarest characters stay unknown (never seen in real data).
        self.alphabet = np.sort(alphabet[np.argsort(-counts, kind="stable")[: (1 << CHAR_BITS) - 1]])
        self._build_char_table()
        self.chars.space = int(np.searchsorted(self.alphabet, ord(" "))) + 1
        words = self.words.fit_transform(*stacked(self._word_ids(segmented)))
        chars = self.chars.fit_transform(self._char_ids(points), starts)
        return hstack([words, chars], format="csr")

    def transform(self, texts: Sequence[str]) -> csr_matrix:
        """The texts' matrix; words, characters and n-grams not seen in training are left out."""
        points, starts = _code_points(texts)
        words = self.words.cells(*stacked(self._word_ids([word_tokens(text) for text in texts])))
        chars = self.chars.cells(self._char_ids(points), starts)
        return _side_by_side(words, chars, self.words.width, len(texts), self.words.width + self.chars.width)

    def name(self, column: int) -> str:
        """The n-gram a column stands for, as an agent would read it."""
        if column < self.words.width:
            return " ".join(self.token_names[symbol - 1] for symbol in self.words.symbols_of(column))
        symbols = self.chars.symbols_of(column - self.words.width)
        return "".join(chr(self.alphabet[symbol - 1]) for symbol in symbols)

    def _word_ids(self, segmented: Sequence[Sequence[str]]) -> list[list[int]]:
        return [[self.tokens.get(token, GAP) for token in tokens] for tokens in segmented]

    def _char_ids(self, points: np.ndarray) -> np.ndarray:
        return self._char_table[points].astype(np.int64)


def _side_by_side(left: Cells, right: Cells, offset: int, texts: int, width: int) -> csr_matrix:
    """One CSR matrix of two blocks' cells, the right block's columns shifted by ``offset`` (scipy's hstack
    does the same through format checks and copies that cost more than the rest of a one-message transform)."""
    rows = np.concatenate([left[0], right[0]])
    # Both blocks come sorted by row: a stable sort (timsort, which merges the two runs) keeps left before right.
    order = np.argsort(rows, kind="stable")
    columns = np.concatenate([left[1], right[1] + offset])[order]
    weights = np.concatenate([left[2], right[2]])[order]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=texts))])
    return csr_matrix((weights, columns, indptr), shape=(texts, width))


def _code_points(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each text's code points, whitespace runs as one space and a space at both ends, a 0 after each text."""
    padded = [" " + " ".join(text.replace("\x00", " ").split()) + " " for text in texts]
    points = np.frombuffer(("\x00".join(padded) + "\x00").encode("utf-32-le", "replace"), dtype=np.uint32)
    lengths = np.fromiter((len(text) + 1 for text in padded), dtype=np.int64, count=len(padded))
    return points.astype(np.int64), np.cumsum(lengths) - lengths
