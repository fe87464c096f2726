"""Answer customer questions from the CRM's FAQ table by TF-IDF similarity, so admins' edits apply without retraining.

Similarity is the mean of two cosines: over jieba words (meaning) and over character n-grams (typos, Chinese
words jieba splits differently, English inflections). Questions are matched against entries in the customer's
language first; below ``Settings.faq_similarity_threshold`` the caller says it is not sure and offers a human.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from threading import Lock

import jieba
import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sqlalchemy import select
from sqlalchemy.orm import Session

from router.crm.models import FaqEntry

# Longer text is not a question but a pasted document; matching it against short FAQ entries means nothing.
MAX_QUESTION_CHARACTERS = 2000
_WORD = re.compile(r"[\w\-']+", re.UNICODE)
# Chinese function words that every question shares; they would make unrelated questions look alike.
_CHINESE_STOP_WORDS = frozenset(
    {"的", "了", "吗", "呢", "吧", "啊", "呀", "么", "我", "你", "您", "们", "是", "在", "有", "还"}
    | {"怎么", "怎么样", "如何", "请问", "一下", "可以", "能", "什么", "这个", "那个"}
)
_STOP_WORDS = ENGLISH_STOP_WORDS | _CHINESE_STOP_WORDS


def words(text: str) -> list[str]:
    """Lower-cased jieba words without punctuation or stop words, for the word half of the similarity."""
    tokens = (token.strip().lower() for token in jieba.cut(text))
    return [token for token in tokens if token and _WORD.fullmatch(token) and token not in _STOP_WORDS]


def character_ngrams(text: str) -> list[str]:
    """1-3 character n-grams inside each content word, so filler like "what's the" adds no similarity."""
    grams = []
    for word in words(text):
        padded = f" {word} "
        grams += [padded[i : i + n] for n in (1, 2, 3) for i in range(len(padded) - n + 1) if padded[i : i + n].strip()]
    return grams


@dataclass(frozen=True)
class FaqMatch:
    """The best FAQ entry for a question and how similar it is (0 … 1)."""

    entry_id: int
    language: str
    question: str
    answer: str
    score: float


@dataclass(frozen=True)
class _Entry:
    id: int
    language: str
    question: str
    answer: str


class FaqIndex:
    """TF-IDF vectors of a fixed set of FAQ entries; immutable, rebuilt when the table changes."""

    def __init__(self, entries: Sequence[_Entry]) -> None:
        self.entries = list(entries)
        self._word_vectorizer = TfidfVectorizer(analyzer=words, sublinear_tf=True)
        self._char_vectorizer = TfidfVectorizer(analyzer=character_ngrams, sublinear_tf=True)
        # Answers are indexed with their questions: "can I pay with Alipay" is answered by text naming Alipay.
        documents = [f"{entry.question} {entry.question} {entry.answer}" for entry in self.entries]
        self._word_matrix = self._word_vectorizer.fit_transform(documents) if self.entries else None
        self._char_matrix = self._char_vectorizer.fit_transform(documents) if self.entries else None

    def scores(self, question: str) -> np.ndarray:
        """Similarity of ``question`` to every entry, in entry order."""
        if not self.entries:
            return np.zeros(0)
        word_scores = (self._word_matrix @ self._word_vectorizer.transform([question]).T).toarray().ravel()
        char_scores = (self._char_matrix @ self._char_vectorizer.transform([question]).T).toarray().ravel()
        return (word_scores + char_scores) / 2

    def best(self, question: str, language: str | None) -> FaqMatch | None:
        """The most similar entry, preferring the customer's language when it has entries at all."""
        scores = self.scores(question)
        candidates = [i for i, entry in enumerate(self.entries) if entry.language == language] or range(len(scores))
        if len(scores) == 0:
            return None
        best = max(candidates, key=lambda i: scores[i])
        entry = self.entries[best]
        return FaqMatch(entry.id, entry.language, entry.question, entry.answer, float(scores[best]))


class FaqMatcher:
    """Keeps one index per version of the FAQ table, so each question costs one small query, not a rebuild."""

    def __init__(self) -> None:
        self._lock = Lock()
        self._version: tuple[tuple[int, datetime], ...] | None = None
        self._index = FaqIndex([])

    def index(self, session: Session) -> FaqIndex:
        """The index of the active FAQ entries as they are now in the database."""
        rows = session.execute(
            select(FaqEntry.id, FaqEntry.updated_at).where(FaqEntry.active.is_(True)).order_by(FaqEntry.id)
        ).all()
        version = tuple((row.id, row.updated_at) for row in rows)
        with self._lock:
            if version != self._version:
                entries = session.execute(
                    select(FaqEntry).where(FaqEntry.active.is_(True)).order_by(FaqEntry.id)
                ).scalars()
                self._index = FaqIndex([_Entry(e.id, e.language, e.question, e.answer) for e in entries])
                self._version = version
            return self._index

    def answer(self, session: Session, question: str, language: str | None, threshold: float) -> FaqMatch | None:
        """The FAQ entry answering ``question``, or None when nothing is similar enough to be sure."""
        question = (question or "").strip()
        if not question or len(question) > MAX_QUESTION_CHARACTERS:
            return None
        match = self.index(session).best(question, language)
        return match if match is not None and match.score >= threshold else None


_default_matcher = FaqMatcher()


def answer_question(session: Session, question: str, language: str | None, threshold: float) -> FaqMatch | None:
    """What ``action_answer_faq`` calls: the matching FAQ entry, or None to say "not sure" and offer a human."""
    return _default_matcher.answer(session, question, language, threshold)
