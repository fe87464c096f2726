"""How negative a message is (0 calm … 1 furious): a TF-IDF model for Chinese, the VADER lexicon for English."""

from __future__ import annotations

import csv
from collections.abc import Sequence
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


def read_zh_shopping(path: Path) -> tuple[list[str], list[int]]:
    """Reviews and 1-for-negative labels from the zh_shopping CSV (``cat,label,review``; label 0 is negative)."""
    texts, negative = [], []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            review = (row.get("review") or "").strip()
            if review:
                texts.append(review)
                negative.append(1 if row["label"].strip() == "0" else 0)
    return texts, negative


def read_own_sentiment(path: Path) -> tuple[list[str], list[int]]:
    """Our small hand-written Chinese sentiment set (``text,negative``)."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["text"].strip()]
    return [row["text"] for row in rows], [int(row["negative"]) for row in rows]


class Sentiment:
    """Scores negativity in either language; the Chinese model is trained, the English lexicon ships in a package."""

    def __init__(self, features: CompiledFeatures, model: LogisticRegression, source: str) -> None:
        self.features = features
        self.model = model
        self.source = source
        self._english = SentimentIntensityAnalyzer()

    @classmethod
    def train(cls, texts: Sequence[str], negative: Sequence[int], weights: Sequence[float], source: str) -> Sentiment:
        """Fit the Chinese model on texts labelled 1 for negative, each with a sample weight."""
        vectorizer = word_vectorizer(min_df=2)
        matrix = vectorizer.fit_transform([normalise(text) for text in texts])
        model = LogisticRegression(C=4.0, max_iter=1000)
        model.fit(matrix, np.asarray(negative), sample_weight=np.asarray(weights))
        return cls(CompiledFeatures([vectorizer]), model, source)

    def negativity(self, text: str, language: str = "zh") -> float:
        """0 for calm, neutral or happy, rising to 1 for angry; mixed text follows the script most of it is in."""
        share = cjk_share(text)
        if share >= CHINESE_SHARE or (language == "zh" and share > 0):
            matrix = self.features.transform([normalise(text)])
            probability = float(expit(matrix @ self.model.coef_[0] + self.model.intercept_[0])[0])
            # Only odds beyond even count: a neutral question should add no sentiment points.
            return max(0.0, 2.0 * probability - 1.0)
        return max(0.0, -self._english.polarity_scores(text)["compound"])

    def __getstate__(self) -> dict[str, object]:
        # The VADER analyser reloads its lexicon from the package; storing it would only bloat the model file.
        return {"features": self.features, "model": self.model, "source": self.source}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(state["features"], state["model"], state["source"])  # type: ignore[misc, arg-type]
