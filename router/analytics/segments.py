"""Customer segments: KMeans on recency, frequency, complaint rate and CSAT, k by silhouette; anomalies flagged."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.ensemble import IsolationForest
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler
from sqlalchemy.orm import Session
from threadpoolctl import threadpool_limits

from router.analytics import frames
from router.analytics.period import Period

FEATURES = ("recency_days", "conversations", "complaint_rate", "csat")
K_CHOICES = range(2, 7)
# Bounded so the page stays quick on 2 shared cores; silhouette on a sample is as telling as on everything.
KMEANS_N_INIT = 4
SILHOUETTE_SAMPLE = 2000
ANOMALY_SHARE = 0.02


@dataclass(frozen=True)
class SegmentProfile:
    """One segment: its size, its average customer and a sentence a supervisor can read."""

    number: int
    customers: int
    means: dict[str, float]
    description: str


@dataclass(frozen=True)
class SegmentReport:
    """The chosen k with every k's silhouette, the segments, and each customer's segment and anomaly flag."""

    period: Period
    k: int
    silhouettes: dict[int, float]
    segments: list[SegmentProfile]
    customers: pd.DataFrame


def customer_features(session: Session, period: Period) -> pd.DataFrame:
    """One row per customer active in ``period``: days since last contact, contacts, share complaining, mean CSAT."""
    conversations = frames.conversations(session, period)
    if conversations.empty:
        return pd.DataFrame(columns=["customer_id", *FEATURES])
    grouped = conversations.groupby("customer_id")
    features = pd.DataFrame(
        {
            "recency_days": (period.end - grouped["started_at"].max()).dt.total_seconds() / 86400,
            "conversations": grouped.size().astype(float),
            "complaint_rate": grouped["ticket_id"].apply(lambda ids: ids.notna().mean()),
        }
    )
    ratings = frames.ratings(session, period).groupby("customer_id")["score"].mean()
    # Customers who never rated get the overall mean: "no opinion" should not push them into either extreme.
    features["csat"] = ratings.reindex(features.index).fillna(ratings.mean() if len(ratings) else 3.0)
    return features.reset_index()


def _describe(means: dict[str, float], overall: dict[str, float]) -> str:
    def level(feature: str, low: str, high: str) -> str:
        return high if means[feature] > overall[feature] else low

    return ", ".join(
        [
            level("recency_days", "recently active", "not seen for a while"),
            level("conversations", "few contacts", "frequent contacts"),
            level("complaint_rate", "rarely complains", "often complains"),
            level("csat", "less satisfied", "satisfied"),
        ]
    ) + (
        f" (avg {means['conversations']:.1f} contacts, last {means['recency_days']:.0f} days ago, "
        f"{means['complaint_rate']:.0%} complaints, CSAT {means['csat']:.1f})"
    )


def segment_customers(features: pd.DataFrame, seed: int = 0) -> tuple[int, dict[int, float], np.ndarray, np.ndarray]:
    """k chosen by silhouette, every k's silhouette, each row's segment and whether it is an anomaly."""
    # One thread: OpenMP workers spin-waiting on a busy shared machine made this 10x slower on a few hundred rows.
    with threadpool_limits(limits=1):
        return _segment_scaled(StandardScaler().fit_transform(features[list(FEATURES)].to_numpy(float)), seed)


def _segment_scaled(scaled: np.ndarray, seed: int) -> tuple[int, dict[int, float], np.ndarray, np.ndarray]:
    silhouettes: dict[int, float] = {}
    labelings: dict[int, np.ndarray] = {}
    for k in K_CHOICES:
        if k >= len(scaled):
            break
        labels = KMeans(n_clusters=k, n_init=KMEANS_N_INIT, random_state=seed).fit_predict(scaled)
        if len(set(labels)) < 2:
            continue
        sample = min(SILHOUETTE_SAMPLE, len(scaled))
        silhouettes[k] = round(float(silhouette_score(scaled, labels, sample_size=sample, random_state=seed)), 4)
        labelings[k] = labels
    if not silhouettes:
        raise ValueError("too few distinct customers to segment")
    best = max(silhouettes, key=silhouettes.__getitem__)
    forest = IsolationForest(n_estimators=100, contamination=ANOMALY_SHARE, random_state=seed)
    anomalies = forest.fit_predict(scaled) == -1
    return best, silhouettes, labelings[best], anomalies


def segment_report(session: Session, period: Period) -> SegmentReport | None:
    """Segments of the customers active in ``period``, with readable profiles; None with under ten customers."""
    features = customer_features(session, period)
    if len(features) < 10:
        return None
    try:
        k, silhouettes, labels, anomalies = segment_customers(features)
    except ValueError:  # every customer looks the same: there is nothing to segment
        return None
    customers = features.assign(segment=labels, anomaly=anomalies)
    # Medians: a handful of extreme customers would drag a mean and make every segment look "few contacts".
    overall = {feature: float(features[feature].median()) for feature in FEATURES}
    profiles = []
    for number in range(k):
        members = customers[customers["segment"] == number]
        means = {feature: round(float(members[feature].mean()), 3) for feature in FEATURES}
        profiles.append(SegmentProfile(number, len(members), means, _describe(means, overall)))
    return SegmentReport(period, k, silhouettes, sorted(profiles, key=lambda p: -p.customers), customers)
