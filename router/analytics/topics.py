"""Complaint topics: TF-IDF key terms per category, an LDA topic model, and what is new since the last period."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TypedDict

import numpy as np
import pandas as pd
from gensim.corpora import Dictionary
from gensim.models import LdaModel
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sqlalchemy.orm import Session
from threadpoolctl import threadpool_limits

from router.analytics import frames
from router.analytics.period import Period
from router.triage.text import normalise, word_tokens

# Function words that carry no topic. Single Chinese characters are dropped wholesale below: nearly all of them
# (了, 的, 就, 很…) are particles, and the content words jieba finds are two characters or longer.
CHINESE_STOP_WORDS = frozenset(
    [
        "一直",
        "还是",
        "已经",
        "但是",
        "而且",
        "因为",
        "所以",
        "这个",
        "那个",
        "什么",
        "怎么",
        "我们",
        "你们",
        "他们",
        "可以",
        "没有",
        "就是",
        "还没",
        "不了",
        "一下",
        "非常",
        "明明",
        "好几天",
        "一次",
        "两天",
        "三天",
        "一周",
        "时候",
        "问题",
        "显示",
        "要求",
    ]
)
STOP_WORDS = frozenset(ENGLISH_STOP_WORDS) | CHINESE_STOP_WORDS | {"s", "t", "don", "didn", "won"}
# Bounds that keep a page responsive on 2 shared cores with thousands of complaints.
# Passes over the corpus: small corpora get more (LDA needs them to settle), large ones fewer, so work stays bounded.
LDA_MIN_PASSES, LDA_MAX_PASSES, LDA_DOCUMENT_PASSES_BUDGET = 3, 20, 3000
LDA_ITERATIONS = 50
MAX_DOCUMENTS = 3000


def topic_tokens(text: str) -> list[str]:
    """Content words of a complaint in either language: jieba for Chinese, minus stop words and particles."""
    return list(_tokens(text))


# Each report tokenises the same texts three times (TF-IDF, LDA, emerging); the result depends on the text alone,
# so remembering it can never go stale.
@lru_cache(maxsize=20_000)
def _tokens(text: str) -> tuple[str, ...]:
    tokens = word_tokens(normalise(text))
    return tuple(token for token in tokens if token not in STOP_WORDS and len(token) > 1 and not token.isdigit())


@dataclass(frozen=True)
class Topic:
    """One LDA topic: its strongest words and how much of the complaints it explains now and before."""

    number: int
    words: list[tuple[str, float]]
    share: float
    previous_share: float

    @property
    def label(self) -> str:
        """The topic's top words, how the page and the CSV name it."""
        return " · ".join(word for word, _ in self.words[:5])


class EmergingTerm(TypedDict):
    """One row of the emerging-terms table: in how many complaints now and before, and the smoothed growth."""

    term: str
    documents: int
    previous_documents: int
    growth: float


@dataclass(frozen=True)
class TopicReport:
    """Key terms per category, LDA topics and emerging terms of one period."""

    period: Period
    key_terms: dict[str, list[tuple[str, float]]]
    topics: list[Topic]
    emerging: list[EmergingTerm]
    documents: int


def key_terms(texts: list[str], labels: list[str], top: int = 8) -> dict[str, list[tuple[str, float]]]:
    """The terms that weigh most (mean TF-IDF) in each label's texts, the chapter's summary of feedback."""
    if not texts:
        return {}
    vectorizer = TfidfVectorizer(analyzer=topic_tokens, min_df=2, sublinear_tf=True)
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # every text was stop words only
        return {}
    vocabulary = np.array(vectorizer.get_feature_names_out())
    label_array = np.array(labels)
    result: dict[str, list[tuple[str, float]]] = {}
    for label in sorted(set(labels)):
        weights = np.asarray(matrix[label_array == label].mean(axis=0)).ravel()
        best = np.argsort(weights)[::-1][:top]
        result[label] = [(str(vocabulary[i]), round(float(weights[i]), 4)) for i in best if weights[i] > 0]
    return result


def lda_topics(texts: list[str], previous_texts: list[str], num_topics: int = 6, seed: int = 1) -> list[Topic]:
    """An LDA model of ``texts``; each topic's share of them and of ``previous_texts`` (the same model infers both)."""
    documents = [topic_tokens(text) for text in texts[:MAX_DOCUMENTS]]
    dictionary = Dictionary(documents)
    dictionary.filter_extremes(no_below=3, no_above=0.6, keep_n=5000)
    corpus = [dictionary.doc2bow(document) for document in documents]
    if len(dictionary) < num_topics or sum(1 for bow in corpus if bow) < num_topics:
        return []
    model = LdaModel(
        corpus,
        id2word=dictionary,
        num_topics=num_topics,
        passes=_passes(len(corpus)),
        iterations=LDA_ITERATIONS,
        random_state=seed,
        alpha="auto",
        eta="auto",
        eval_every=None,  # the perplexity log line costs as much as the training itself
    )
    previous = [dictionary.doc2bow(topic_tokens(text)) for text in previous_texts[:MAX_DOCUMENTS]]
    shares, previous_shares = _topic_shares(model, corpus, num_topics), _topic_shares(model, previous, num_topics)
    topics = [
        Topic(
            number,
            [(word, round(float(weight), 4)) for word, weight in model.show_topic(number, topn=10)],
            round(float(shares[number]), 4),
            round(float(previous_shares[number]), 4),
        )
        for number in range(num_topics)
    ]
    return sorted(topics, key=lambda topic: topic.share, reverse=True)


def _passes(documents: int) -> int:
    return max(LDA_MIN_PASSES, min(LDA_MAX_PASSES, LDA_DOCUMENT_PASSES_BUDGET // max(documents, 1)))


def _topic_shares(model: LdaModel, corpus: list, num_topics: int) -> np.ndarray:
    totals = np.zeros(num_topics)
    documents = [bow for bow in corpus if bow]
    for bow in documents:
        for number, weight in model.get_document_topics(bow, minimum_probability=0.0):
            totals[number] += weight
    return totals / len(documents) if documents else totals


def emerging_terms(
    texts: list[str], previous_texts: list[str], top: int = 10, min_documents: int = 5
) -> list[EmergingTerm]:
    """Terms in many more complaints now than before (smoothed ratio of document shares), newest problems first."""
    now, before = _document_frequency(texts), _document_frequency(previous_texts)
    rows: list[EmergingTerm] = []
    for term, count in now.items():
        if count < min_documents:
            continue
        share_now = (count + 1) / (len(texts) + 2)
        share_before = (before.get(term, 0) + 1) / (len(previous_texts) + 2)
        rows.append(
            {
                "term": term,
                "documents": count,
                "previous_documents": before.get(term, 0),
                "growth": round(share_now / share_before, 2),
            }
        )
    rows.sort(key=lambda row: (row["growth"], row["documents"]), reverse=True)
    return [row for row in rows if row["growth"] > 1.5][:top]


def _document_frequency(texts: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for text in texts[:MAX_DOCUMENTS]:
        for token in set(topic_tokens(text)):
            counts[token] = counts.get(token, 0) + 1
    return counts


def topic_report(session: Session, period: Period, num_topics: int = 6) -> TopicReport:
    """Key terms, LDA topics and emerging terms of the complaints (ticket texts) created in ``period``."""
    if not 2 <= num_topics <= 20:
        raise ValueError("num_topics must be between 2 and 20")
    current: pd.DataFrame = frames.tickets(session, period)
    previous: pd.DataFrame = frames.tickets(session, period.previous())
    texts, previous_texts = current["description"].tolist(), previous["description"].tolist()
    # One thread: BLAS workers spin-waiting on a busy shared machine cost more than they gain on short texts.
    with threadpool_limits(limits=1):
        return TopicReport(
            period=period,
            key_terms=key_terms(texts, current["category"].tolist()),
            topics=lda_topics(texts, previous_texts, num_topics),
            emerging=emerging_terms(texts, previous_texts),
            documents=len(texts),
        )
