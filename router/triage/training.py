"""Training model directories: any labelled file (the CLI), or the shipped default (complaints + sentiment)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.public_data.mapping import load_project_mapping
from router.public_data.sides import training_rows
from router.public_data.sources import CLINC150
from router.training.nlu_yaml import plain_text, read_nlu_file
from router.triage.classifier import TriageClassifier
from router.triage.config import NO_RISK, Cue, UrgencyConfig, load_config
from router.triage.datasets import read_texts
from router.triage.risk import RiskClassifier
from router.triage.sentiment import (
    OWN_EXAMPLE_WEIGHT,
    ZH_SHOPPING_HELD_OUT,
    Labelled,
    Sentiment,
    read_own_sentiment,
    read_zh_shopping,
)
from router.triage.store import save_model_dir
from router.triage.text import normalise

ZH_SHOPPING = Path("zh_shopping") / "dev.csv"
# Complaint categories that are dangers in themselves: their examples teach the risk model that risk.
RISK_OF_CATEGORY = {"product_safety": "safety", "fraud_security": "fraud"}
# Share of zh_shopping's negative reviews the risk model learns ordinary Chinese complaints from (training time).
ZH_SHOPPING_RISK_SHARE = 0.25
# Rows per public source label the complaint classifier learns from (see public_complaints).
PUBLIC_PER_LABEL = 30
# Assistant intents whose examples may report a danger (a complaint, or asking for a person because of one):
# every other intent's examples are harmless requests to the risk model.
NOT_HARMLESS_INTENTS = frozenset({"complain", "request_human"})


# Every function here that reads data/public takes ``project_dir``, the kefu project whose domain.yml intents
# mapping.yml is checked against (settings.project_dir: the data folder may live apart from the project).


def train_sentiment(shared_data_dir: Path, triage_data_dir: Path, *, project_dir: Path) -> Sentiment:
    """Both languages' negativity models; what each was trained on is in the model's ``source``.

    Chinese: the zh_shopping reviews (when present, minus the held-out part the benchmark measures on) plus our
    own hand-written set, and neutral customer-service questions ("other" complaints) as not negative, which shop
    reviews lack. English: our complaints (and hand-written dangers) as negative against calm requests, our "other"
    complaints and CLINC150's shipped training side (minus its complaint intents).
    """
    triage_data_dir = Path(triage_data_dir)
    texts, negative = read_own_sentiment(triage_data_dir / "sentiment_zh.csv")
    complaints, categories = read_texts(triage_data_dir / "complaints.csv", "text", "category")
    languages = read_texts(triage_data_dir / "complaints.csv", "text", "language")[1]
    neutral = [text for text, category in zip(complaints, categories, strict=True) if category == "other"]
    chinese = Labelled(
        texts + neutral, negative + [0] * len(neutral), [OWN_EXAMPLE_WEIGHT] * (len(texts) + len(neutral))
    )
    source = f"kefu sentiment_zh.csv + neutral complaints ({len(chinese.texts)} texts)"
    reviews = Path(shared_data_dir) / ZH_SHOPPING
    if reviews.is_file():
        review_texts, review_negative = read_zh_shopping(reviews)
        chinese += Labelled(review_texts, review_negative, [1.0] * len(review_texts))
        source = f"zh_shopping ({len(review_texts)} reviews, {ZH_SHOPPING_HELD_OUT:.0%} held out) + {source}"
    english = _english_complaints(triage_data_dir, complaints, categories, languages)
    calm = _calm_english(triage_data_dir.parent, project_dir)
    source += f"; English: {len(english.texts)} kefu complaints and requests, {len(calm.texts)} CLINC150 requests"
    return Sentiment.train(chinese, english + calm, source)


def _english_complaints(
    triage_data_dir: Path, complaints: list[str], categories: list[str], languages: list[str]
) -> Labelled:
    """Our English complaints and dangers as negative, our "other" requests as calm."""
    rows = [
        (text, int(category != "other"))
        for text, category, language in zip(complaints, categories, languages, strict=True)
        if language == "en"
    ]
    dangers, risks = read_texts(triage_data_dir / "risk.csv", "text", "risk")
    risk_languages = read_texts(triage_data_dir / "risk.csv", "text", "language")[1]
    rows += [
        (text, 1)
        for text, risk, language in zip(dangers, risks, risk_languages, strict=True)
        if language == "en" and risk != NO_RISK
    ]
    return Labelled([text for text, _ in rows], [label for _, label in rows], [OWN_EXAMPLE_WEIGHT] * len(rows))


def _calm_english(data_dir: Path, project_dir: Path) -> Labelled:
    """CLINC150's shipped training side as calm English, minus the labels that are complaints (data/public)."""
    if not (data_dir / "public" / "mapping.yml").is_file():
        return Labelled([], [], [])
    mapping = load_project_mapping(project_dir, data_dir)
    texts = [
        row.text
        for row in training_rows(data_dir / "public")
        if row.source == CLINC150 and mapping.meaning(row).intent != "complain"
    ]
    return Labelled(texts, [0] * len(texts), [1.0] * len(texts))


@dataclass(frozen=True)
class RiskExamples:
    """The risk model's training texts, their risk (or none), and which are customers' complaints."""

    texts: list[str]
    risks: list[str]
    complaints: list[bool]

    def __add__(self, other: RiskExamples) -> RiskExamples:
        return RiskExamples(self.texts + other.texts, self.risks + other.risks, self.complaints + other.complaints)

    def digest(self) -> str:
        """A fingerprint of the examples: equal digests mean a model trained on them can be reused."""
        digest = hashlib.sha256()
        for text, risk, complaint in zip(self.texts, self.risks, self.complaints, strict=True):
            digest.update(f"{risk}\t{int(complaint)}\t{text}\n".encode())
        return digest.hexdigest()


def risk_examples(triage_data_dir: Path, shared_data_dir: Path | None = None, *, project_dir: Path) -> RiskExamples:
    """The risk model's training examples.

    Our complaints (their category's risk, else none) and data/triage/risk.csv (hand-written dangers and near
    misses in both languages) as complaints; our assistant's non-complaint examples (data/nlu: greetings, status
    and policy questions in both languages) as harmless; and, when the data folder has them, the shipped training
    side of the public sets (data/public: Banking77's and CLINC150's real phrasings, each label's risk from
    mapping.yml, else none).

    With ``shared_data_dir`` holding zh_shopping, real Chinese complaints join the harmless ones: a sample of its
    negative reviews (minus the held-out part, and minus any a danger cue names, which may be real dangers). Our
    own Chinese complaints are too few to teach the model what ordinary Chinese complaints look like: without
    them, a long review full of 了 and 的 reads as a danger. zh_shopping may not be shipped, and neither may a model
    trained on it; model directories never are (see data/triage/README.md).
    """
    triage_data_dir = Path(triage_data_dir)
    data_dir = triage_data_dir.parent
    complaints, categories = read_texts(triage_data_dir / "complaints.csv", "text", "category")
    own = RiskExamples(complaints, [RISK_OF_CATEGORY.get(category, NO_RISK) for category in categories], [])
    texts, risks = read_texts(triage_data_dir / "risk.csv", "text", "risk")
    own += RiskExamples(texts, risks, [])
    examples = RiskExamples(own.texts, own.risks, [True] * len(own.texts))
    requests = [
        plain_text(example.text)
        for path in sorted((data_dir / "nlu").glob("*.yml"))
        for example in read_nlu_file(path)[0]
        if example.intent not in NOT_HARMLESS_INTENTS
    ]
    examples += RiskExamples(requests, [NO_RISK] * len(requests), [False] * len(requests))
    if (data_dir / "public" / "mapping.yml").is_file():
        mapping = load_project_mapping(project_dir, data_dir)
        public = training_rows(data_dir / "public")
        examples += RiskExamples(
            [row.text for row in public], [mapping.meaning(row).risk for row in public], [False] * len(public)
        )
    reviews = Path(shared_data_dir or "") / ZH_SHOPPING
    if shared_data_dir is not None and reviews.is_file():
        danger_cues = _danger_cues(load_config(triage_data_dir).urgency)
        texts, negative = read_zh_shopping(reviews)
        ordinary = [
            text
            for text, bad in zip(texts, negative, strict=True)
            if bad and _sampled(text, ZH_SHOPPING_RISK_SHARE) and not _names_a_danger(text, danger_cues)
        ]
        # Not counted as complaints for the false-alarm cap: that cap is about our own, hardest near misses.
        examples += RiskExamples(ordinary, [NO_RISK] * len(ordinary), [False] * len(ordinary))
    return examples


def _danger_cues(urgency: UrgencyConfig) -> list[Cue]:
    """The cues any floor fires on."""
    names = {name for floor in urgency.floors for name in floor.cues}
    return [cue for cue in urgency.cues if cue.name in names]


def _names_a_danger(text: str, cues: list[Cue]) -> bool:
    lowered = normalise(text)
    return any(cue.found_in(lowered) for cue in cues)


def _sampled(text: str, share: float) -> bool:
    """Whether ``text`` is in a stable sample of ``share`` of all texts (a hash, independent of the held-out one)."""
    return int(hashlib.sha256(b"risk:" + text.encode("utf-8")).hexdigest()[:8], 16) < share * 2**32


def train_risk(
    triage_data_dir: Path,
    shared_data_dir: Path | None = None,
    reusable: RiskClassifier | None = None,
    *,
    project_dir: Path,
) -> tuple[RiskClassifier, dict[str, Any]]:
    """The risk model and its training figures (thresholds and out-of-fold recall per risk).

    ``reusable`` (the active model's) is returned as it is when it was trained on exactly these examples.
    """
    examples = risk_examples(triage_data_dir, shared_data_dir, project_dir=project_dir)
    digest = examples.digest()
    if reusable is not None and reusable.data_digest == digest:
        return reusable, {**reusable.metrics, "reused": True}
    risk = RiskClassifier()
    started = time.perf_counter()
    metrics: dict[str, Any] = risk.fit(examples.texts, examples.risks, examples.complaints)
    metrics.update(train_seconds=round(time.perf_counter() - started, 2), examples=len(examples.texts))
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


def public_complaints(
    data_dir: Path, per_label: int = PUBLIC_PER_LABEL, *, project_dir: Path
) -> tuple[list[str], list[str]]:
    """Real complaints for the complaint classifier: up to ``per_label`` rows of each public source label that
    mapping.yml files under a category, from the shipped training side (data/public); none without it.

    Capped so that 4,000 English banking questions do not outvote our 60 messages per category and language: 30 a
    label took category accuracy on the public held-out side from 53 % to 96 % and cost 1.7 points on our own
    held-out complaints (benchmarks.complaint_categories; BENCHMARKS.md, "Complaint categories on real text").
    """
    data_dir = Path(data_dir)
    if not (data_dir / "public" / "mapping.yml").is_file():
        return [], []
    mapping = load_project_mapping(project_dir, data_dir)
    by_label: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for row in training_rows(data_dir / "public"):
        category = mapping.meaning(row).category
        if category is not None:
            by_label.setdefault((row.source, row.label), []).append((row.text, category))
    # A stable sample: the rows whose text hashes lowest, the same on every machine and run.
    picked = [
        pair
        for rows in by_label.values()
        for pair in sorted(rows, key=lambda pair: hashlib.sha256(pair[0].encode("utf-8")).digest())[:per_label]
    ]
    return [text for text, _ in picked], [category for _, category in picked]


def train_default_model(out_dir: Path, data_dir: Path, shared_data_dir: Path, *, project_dir: Path) -> dict[str, Any]:
    """Train the shipped default model from data/triage/complaints.csv and a sample of the public sets' complaints,
    with sentiment and risk; its metrics."""
    triage_dir = Path(data_dir) / "triage"
    texts, labels = read_texts(triage_dir / "complaints.csv", "text", "category")
    public_texts, public_labels = public_complaints(Path(data_dir), project_dir=project_dir)
    texts, labels = texts + public_texts, labels + public_labels
    sentiment = train_sentiment(shared_data_dir, triage_dir, project_dir=project_dir)
    risk = train_risk(triage_dir, shared_data_dir, project_dir=project_dir)
    return train_model_dir(texts, labels, out_dir, sentiment, risk)
