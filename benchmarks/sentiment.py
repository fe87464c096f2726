"""Negativity on labelled text the sentiment models never saw, in both languages, and what the English model adds.

Run: ``python -m benchmarks.sentiment``. The sentiment model is trained first, exactly as ``kefu triage
train-default`` trains it (router.triage.training.train_sentiment), then judged on:

- English complaints: the held-out side of Banking77's complaint intents (data/public/mapping.yml: intent
  complain) — real customers reporting a problem — and our hand-written data/triage/risk_test.csv (English).
- English calm requests: the held-out side of CLINC150's other labels (questions, chit-chat, out-of-scope).
- Chinese: zh_shopping's held-out part (router.triage.sentiment.zh_shopping_held_out; never trained on), negative
  against positive reviews, and risk_test.csv (Chinese).

Per set: mean negativity and the share above 0.25 (the level at which sentiment adds 5 of the urgency score's
100 points), and for labelled pairs the ROC AUC. English is shown with VADER alone (what kefu had) and combined.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from router.public_data.mapping import load_project_mapping
from router.public_data.sides import held_out_rows
from router.public_data.sources import BANKING77, CLINC150
from router.settings import get_settings
from router.triage.sentiment import read_zh_shopping
from router.triage.training import ZH_SHOPPING, train_sentiment

# Negativity from which sentiment adds at least 5 urgency points (weight 20): "reads as negative".
NEGATIVE_FROM = 0.25
ISSUE_EXAMPLE = "my parcel arrived smashed … third time … I'm going to report you to consumer protection"


def describe(scores: Sequence[float]) -> dict[str, float]:
    """How many, mean negativity, and the share that reads as negative."""
    values = np.asarray(scores, dtype=float)
    return {
        "messages": len(values),
        "mean": round(float(values.mean()), 4),
        "negative_share": round(float((values >= NEGATIVE_FROM).mean()), 4),
    }


def auc(negative: Sequence[float], calm: Sequence[float]) -> float:
    """ROC AUC of negativity telling negative from calm texts."""
    truth = [1] * len(negative) + [0] * len(calm)
    return round(float(roc_auc_score(truth, [*negative, *calm])), 4)


def compare(score: Callable[[str], float], negative: Sequence[str], calm: Sequence[str]) -> dict[str, object]:
    """One scorer on a negative and a calm set."""
    negative_scores = [score(text) for text in negative]
    calm_scores = [score(text) for text in calm]
    return {
        "negative": describe(negative_scores),
        "calm": describe(calm_scores),
        "auc": auc(negative_scores, calm_scores),
    }


def own_tests(path: Path, language: str) -> list[str]:
    """Our hand-written complaints of one language (data/triage/risk_test.csv; every row is a complaint)."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [row["text"] for row in csv.DictReader(handle) if row["language"] == language]


def main() -> None:
    settings = get_settings()
    shared, data = settings.shared_data_dir, settings.data_dir
    started = time.perf_counter()
    sentiment = train_sentiment(shared, data / "triage", project_dir=settings.project_dir)
    train_seconds = round(time.perf_counter() - started, 1)
    mapping = load_project_mapping(settings.project_dir, data)
    held_out = held_out_rows(shared, data / "public")
    complaints = [row.text for row in held_out if row.source == BANKING77 and mapping.meaning(row).intent == "complain"]
    calm = [row.text for row in held_out if row.source == CLINC150 and mapping.meaning(row).intent != "complain"]
    own_english = own_tests(data / "triage" / "risk_test.csv", "en")
    reviews, negative = read_zh_shopping(shared / ZH_SHOPPING, held_out=True)
    bad = [text for text, label in zip(reviews, negative, strict=True) if label]
    good = [text for text, label in zip(reviews, negative, strict=True) if not label]

    def english(text: str) -> float:
        return sentiment.negativity(text, "en")

    def chinese(text: str) -> float:
        return sentiment.negativity(text, "zh")

    figures = {
        "en_public_lexicon_only": compare(sentiment.english_lexicon, complaints, calm),
        "en_public_combined": compare(english, complaints, calm),
        "en_own_complaints_lexicon_only": describe([sentiment.english_lexicon(text) for text in own_english]),
        "en_own_complaints_combined": describe([english(text) for text in own_english]),
        "zh_shopping_held_out": compare(chinese, bad, good),
        "zh_own_complaints": describe([chinese(text) for text in own_tests(data / "triage" / "risk_test.csv", "zh")]),
        "issue_example": {
            "lexicon_only": round(sentiment.english_lexicon(ISSUE_EXAMPLE), 4),
            "combined": round(english(ISSUE_EXAMPLE), 4),
        },
    }
    print(
        json.dumps(
            {
                "benchmark": "sentiment",
                "figures": figures,
                "source": sentiment.source,
                "train_seconds": train_seconds,
                "load_average": [round(load, 2) for load in os.getloadavg()],
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
