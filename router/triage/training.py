"""Training model directories: any labelled file (the CLI), or the shipped default (complaints + sentiment)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from router.settings import get_settings
from router.triage.classifier import TriageClassifier
from router.triage.config import NO_RISK
from router.triage.datasets import read_texts
from router.triage.risk import RiskClassifier
from router.triage.sentiment import OWN_EXAMPLE_WEIGHT, Sentiment, read_own_sentiment, read_zh_shopping
from router.triage.store import save_model_dir

ZH_SHOPPING = Path("zh_shopping") / "dev.csv"
# Complaint categories that are dangers in themselves: their examples teach the risk model that risk.
RISK_OF_CATEGORY = {"product_safety": "safety", "fraud_security": "fraud"}


def train_sentiment(shared_data_dir: Path, triage_data_dir: Path) -> Sentiment:
    """Chinese sentiment from the zh_shopping reviews (when present) plus our own hand-written set.

    Our set adds what shop reviews lack: neutral customer-service questions ("other" complaints) as not negative.
    """
    texts, negative = read_own_sentiment(Path(triage_data_dir) / "sentiment_zh.csv")
    complaints, categories = read_texts(Path(triage_data_dir) / "complaints.csv", "text", "category")
    neutral = [text for text, category in zip(complaints, categories, strict=True) if category == "other"]
    texts, negative = texts + neutral, negative + [0] * len(neutral)
    weights = [OWN_EXAMPLE_WEIGHT] * len(texts)
    source = f"kefu sentiment_zh.csv + neutral complaints ({len(texts)} texts)"
    reviews = Path(shared_data_dir) / ZH_SHOPPING
    if reviews.is_file():
        review_texts, review_negative = read_zh_shopping(reviews)
        texts, negative = texts + review_texts, negative + review_negative
        weights += [1.0] * len(review_texts)
        source = f"zh_shopping ({len(review_texts)} reviews) + {source}"
    return Sentiment.train(texts, negative, weights, source)


def risk_examples(triage_data_dir: Path) -> tuple[list[str], list[str]]:
    """The risk model's training texts and labels: our complaints (their category's risk, else none) and
    data/triage/risk.csv (hand-written dangers and near misses in both languages)."""
    triage_data_dir = Path(triage_data_dir)
    complaints, categories = read_texts(triage_data_dir / "complaints.csv", "text", "category")
    texts, risks = read_texts(triage_data_dir / "risk.csv", "text", "risk")
    return complaints + texts, [RISK_OF_CATEGORY.get(category, NO_RISK) for category in categories] + risks


def examples_digest(texts: Sequence[str], labels: Sequence[str]) -> str:
    """A fingerprint of labelled examples: equal digests mean a model trained on them can be reused."""
    digest = hashlib.sha256()
    for text, label in zip(texts, labels, strict=True):
        digest.update(f"{label}\t{text}\n".encode())
    return digest.hexdigest()


def train_risk(triage_data_dir: Path, reusable: RiskClassifier | None = None) -> tuple[RiskClassifier, dict[str, Any]]:
    """The risk model and its training figures (thresholds and out-of-fold recall per risk).

    ``reusable`` (the active model's) is returned as it is when it was trained on exactly these examples.
    """
    texts, risks = risk_examples(triage_data_dir)
    digest = examples_digest(texts, risks)
    if reusable is not None and reusable.data_digest == digest:
        return reusable, {**reusable.metrics, "reused": True}
    risk = RiskClassifier()
    started = time.perf_counter()
    metrics: dict[str, Any] = risk.fit(texts, risks)
    metrics.update(train_seconds=round(time.perf_counter() - started, 2), examples=len(texts))
    risk.data_digest, risk.metrics = digest, metrics
    return risk, metrics


def train_model_dir(
    texts: Sequence[str],
    labels: Sequence[str],
    out_dir: Path,
    sentiment: Sentiment | None = None,
    risk: tuple[RiskClassifier, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Train the classifier, store it (and the sentiment and risk models) atomically in ``out_dir``; its metrics."""
    classifier = TriageClassifier()
    started = time.perf_counter()
    metrics: dict[str, Any] = classifier.fit(texts, labels)
    metrics.update(train_seconds=round(time.perf_counter() - started, 2), examples=len(texts), labels=classifier.labels)
    artifacts: dict[str, Any] = {"classifier": classifier}
    if sentiment is not None:
        artifacts["sentiment"] = sentiment
        metrics["sentiment_source"] = sentiment.source
    if risk is not None:
        artifacts["risk"] = risk[0]
        metrics["risk"] = risk[1]
    save_model_dir(out_dir, artifacts, {"metrics": metrics})
    return metrics


def train_default_model(out_dir: Path, data_dir: Path, shared_data_dir: Path | None = None) -> dict[str, Any]:
    """Train the shipped default model from data/triage/complaints.csv, with sentiment and risk; its metrics."""
    triage_dir = Path(data_dir) / "triage"
    texts, labels = read_texts(triage_dir / "complaints.csv", "text", "category")
    sentiment = train_sentiment(shared_data_dir or get_settings().shared_data_dir, triage_dir)
    return train_model_dir(texts, labels, out_dir, sentiment, train_risk(triage_dir))
