"""``Triage``: one call that classifies a complaint, scores its urgency and picks the priority and SLA."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from router.errors import InvalidInput
from router.triage.classifier import TriageClassifier
from router.triage.config import TriageConfig, load_config
from router.triage.risk import RiskClassifier
from router.triage.sentiment import Sentiment
from router.triage.store import load_artifact
from router.triage.text import checked_text
from router.triage.urgency import UrgencyInputs, score_urgency

LANGUAGES = ("zh", "en")


@dataclass(frozen=True)
class Assessment:
    """Everything triage decides about one message; stored on the ticket and shown to agents."""

    category: str
    confidence: float
    needs_review: bool
    terms: list[str]
    team: str
    negativity: float
    cues: list[str]
    urgency_score: float
    urgency_factors: dict[str, float]
    priority: int
    first_response_minutes: int
    resolution_minutes: int
    # The dangers that set a floor under the priority, most urgent first, each with why (see AppliedFloor).
    floors: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy, for the API and the ticket record."""
        return asdict(self)


class Triage:
    """A loaded model directory plus the triage config; cheap to call, load once per process."""

    def __init__(
        self, classifier: TriageClassifier, sentiment: Sentiment, risk: RiskClassifier, config: TriageConfig
    ) -> None:
        self.classifier = classifier
        self.sentiment = sentiment
        self.risk = risk
        self.config = config

    @classmethod
    def load(cls, model_dir: Path, config_dir: Path) -> Triage:
        """Load a trained model directory (e.g. models/triage) and ``config_dir``'s (data/triage's) categories and
        urgency."""
        model_dir = Path(model_dir)
        classifier = load_artifact(model_dir, "classifier", TriageClassifier)
        sentiment = load_artifact(model_dir, "sentiment", Sentiment)
        risk = load_artifact(model_dir, "risk", RiskClassifier)
        config = load_config(Path(config_dir))
        for model in (classifier, risk):
            model.hide_terms(config.stop_words)
        return cls(classifier, sentiment, risk, config)

    def assess(
        self,
        text: str,
        language: str = "zh",
        customer_tier: str = "standard",
        repeat_contacts_7d: int = 0,
        waited_minutes: float = 0.0,
    ) -> Assessment:
        """Classify ``text`` and score its urgency; bad input raises InvalidInput naming the problem."""
        text = checked_text(text)
        if language not in LANGUAGES:
            raise InvalidInput(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
        prediction = self.classifier.predict([text])[0]
        category = self.config.category(prediction.label)
        negativity = round(self.sentiment.negativity(text, language), 4)
        inputs = UrgencyInputs(
            category.severity,
            negativity,
            text,
            customer_tier,
            repeat_contacts_7d,
            waited_minutes,
            tuple(self.risk.findings(text)),
        )
        urgency = score_urgency(inputs, self.config.urgency)
        # A danger decides where the ticket goes: a burning kettle is the safety team's, whatever else it says.
        filed_under = next((floor.category for floor in urgency.floors if floor.category), None)
        if filed_under is not None and filed_under != category.name:
            category = self.config.category(filed_under)
            urgency = score_urgency(replace(inputs, severity=category.severity), self.config.urgency)
        return Assessment(
            category=category.name,
            confidence=prediction.confidence,
            needs_review=prediction.needs_review,
            terms=prediction.terms,
            team=category.team,
            negativity=negativity,
            cues=urgency.cues,
            urgency_score=urgency.score,
            urgency_factors=urgency.factors,
            priority=urgency.band.priority,
            first_response_minutes=urgency.band.first_response_minutes,
            resolution_minutes=urgency.band.resolution_minutes,
            floors=[floor.to_dict() for floor in urgency.floors],
        )
