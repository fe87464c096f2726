"""How negative a message is (0 calm … 1 furious): TF-IDF models for each language, and the VADER lexicon.

VADER alone read "my parcel arrived smashed, third time, I'm reporting you to consumer protection" as 0: it
knows words like "terrible", not a customer's way of complaining. So English is scored by both the lexicon and
a model of complaints against calm requests, and the more negative of the two counts.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from router.triage.features import CompiledFeatures, word_vectorizer
from router.triage.text import cjk_share, normalise

# A message counts as Chinese for sentiment when this share of its letters are Chinese characters.
CHINESE_SHARE = 0.3
# Our own in-domain examples are few next to 50k reviews; this weight keeps them from being drowned out.
OWN_EXAMPLE_WEIGHT = 10.0
# Share of zh_shopping reviews no sentiment model trains on, so that Chinese negativity is measured on unseen text.
ZH_SHOPPING_HELD_OUT = 0.2


def zh_shopping_held_out(review: str) -> bool:
    """Whether a zh_shopping review is in the held-out part (a stable hash of its text)."""
    return int(hashlib.sha256(review.strip().encode("utf-8")).hexdigest()[:8], 16) < ZH_SHOPPING_HELD_OUT * 2**32


@dataclass(frozen=True)
class Labelled:
    """Texts labelled 1 for negative (a complaint) and 0 for calm, each with a sample weight."""

    texts: list[str]
    negative: list[int]
    weights: list[float]

    def __add__(self, other: Labelled) -> Labelled:
        return Labelled(self.texts + other.texts, self.negative + other.negative, self.weights + other.weights)


def read_zh_shopping(path: Path, held_out: bool = False) -> tuple[list[str], list[int]]:
    """Reviews and 1-for-negative labels from the zh_shopping CSV (``cat,label,review``; label 0 is negative):
    the training part, or with ``held_out`` the part no model trains on."""
    texts, negative = [], []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            review = (row.get("review") or "").strip()
            if review and zh_shopping_held_out(review) == held_out:
                texts.append(review)
                negative.append(1 if row["label"].strip() == "0" else 0)
    return texts, negative


def read_own_sentiment(path: Path) -> tuple[list[str], list[int]]:
    """Our small hand-written Chinese sentiment set (``text,negative``)."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["text"].strip()]
    return [row["text"] for row in rows], [int(row["negative"]) for row in rows]


class NegativeText:
    """A TF-IDF logistic regression of negative against calm text in one language."""

    def __init__(self, labelled: Labelled) -> None:
        vectorizer = word_vectorizer(min_df=2)
        matrix = vectorizer.fit_transform([normalise(text) for text in labelled.texts])
        self.model = LogisticRegression(C=4.0, max_iter=1000)
        self.model.fit(matrix, np.asarray(labelled.negative), sample_weight=np.asarray(labelled.weights))
        self.features = CompiledFeatures([vectorizer])

    def negativity(self, text: str) -> float:
        """0 up to even odds of negative, rising to 1: a neutral question adds no sentiment points."""
        matrix = self.features.transform([normalise(text)])
        probability = float(expit(matrix @ self.model.coef_[0] + self.model.intercept_[0])[0])
        return max(0.0, 2.0 * probability - 1.0)


class Sentiment:
    """Scores negativity in either language: trained models per language, and for English the VADER lexicon."""

    def __init__(self, chinese: NegativeText, english: NegativeText, source: str) -> None:
        self.chinese = chinese
        self.english = english
        self.source = source
        self._lexicon = SentimentIntensityAnalyzer()

    @classmethod
    def train(cls, chinese: Labelled, english: Labelled, source: str) -> Sentiment:
        """Fit both languages' models on texts labelled 1 for negative, each with a sample weight."""
        return cls(NegativeText(chinese), NegativeText(english), source)

    def negativity(self, text: str, language: str = "zh") -> float:
        """0 for calm, neutral or happy, rising to 1 for angry; mixed text follows the script most of it is in."""
        share = cjk_share(text)
        if share >= CHINESE_SHARE or (language == "zh" and share > 0):
            return self.chinese.negativity(text)
        return max(self.english_lexicon(text), self.english.negativity(text))

    def english_lexicon(self, text: str) -> float:
        """VADER's negativity alone (0 … 1), kept apart so the benchmark can show what the model adds."""
        return max(0.0, -self._lexicon.polarity_scores(text)["compound"])

    def __getstate__(self) -> dict[str, object]:
        # The VADER analyser reloads its lexicon from the package; storing it would only bloat the model file.
        return {"chinese": self.chinese, "english": self.english, "source": self.source}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._lexicon = SentimentIntensityAnalyzer()
