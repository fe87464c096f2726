"""How negative a message is (0 calm … 1 furious): a TF-IDF model for Chinese, the VADER lexicon for English."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from router.triage.text import cjk_share, normalise, word_tokens

# A message counts as Chinese for sentiment when this share of its letters are Chinese characters.
CHINESE_SHARE = 0.3


def build_chinese_model() -> Pipeline:
    """Word and short character n-grams into logistic regression, so the output is a probability."""
    return make_pipeline(
        TfidfVectorizer(tokenizer=word_tokens, token_pattern=None, lowercase=False, ngram_range=(1, 2), min_df=2),
        LogisticRegression(C=4.0, max_iter=1000),
    )


def load_zh_shopping(path: Path) -> tuple[list[str], list[int]]:
    """Reviews and 1-for-negative labels from the zh_shopping CSV (``cat,label,review``; label 0 is negative)."""
    texts, negative = [], []
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            review = (row.get("review") or "").strip()
            if review:
                texts.append(normalise(review))
                negative.append(1 if row["label"].strip() == "0" else 0)
    return texts, negative


def load_own_sentiment(path: Path) -> tuple[list[str], list[int]]:
    """Our small hand-written Chinese sentiment set (``text,negative``), the fallback without zh_shopping."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["text"].strip()]
    return [normalise(row["text"]) for row in rows], [int(row["negative"]) for row in rows]


class Sentiment:
    """Scores negativity in either language; the Chinese model is trained, the English lexicon ships in a package."""

    def __init__(self, chinese: Pipeline, source: str) -> None:
        self.chinese = chinese
        self.source = source
        self._english = SentimentIntensityAnalyzer()

    @classmethod
    def train(cls, texts: Sequence[str], negative: Sequence[int], source: str) -> Sentiment:
        """Fit the Chinese model on already-normalised texts labelled 1 for negative."""
        model = build_chinese_model()
        model.fit(list(texts), np.asarray(negative))
        return cls(model, source)

    def negativity(self, text: str, language: str = "zh") -> float:
        """0 for calm or happy, rising to 1 for angry; mixed text follows the script most of it is written in."""
        share = cjk_share(text)
        if share >= CHINESE_SHARE or (language == "zh" and share > 0):
            return float(self.chinese.predict_proba([normalise(text)])[0, 1])
        compound = self._english.polarity_scores(text)["compound"]
        return max(0.0, -compound)

    def __getstate__(self) -> dict[str, object]:
        # The VADER analyser reloads its lexicon from the package; storing it would only bloat the model file.
        return {"chinese": self.chinese, "source": self.source}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__(state["chinese"], state["source"])  # type: ignore[misc, arg-type]
