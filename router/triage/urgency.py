"""The explainable urgency score: each factor's points, their sum (0..100) and the priority/SLA it maps to.

Dangers set a floor under the priority the score gives: a burning kettle is P1 however calm its customer. A floor
fires when one of its cues is in the message or the risk model (router.triage.risk) finds its risk.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from router.errors import InvalidInput
from router.triage.config import Floor, PriorityBand, UrgencyConfig
from router.triage.text import normalise


@dataclass(frozen=True)
class RiskFinding:
    """The risk model's verdict that a message shows a danger: its probability and the words that moved it."""

    risk: str
    probability: float
    threshold: float
    terms: list[str]


@dataclass(frozen=True)
class UrgencyInputs:
    """What a supervisor can see about a message, each already measured."""

    severity: float  # the category's severity, 0..1
    negativity: float  # 0 calm … 1 furious
    text: str  # searched for urgency cues
    customer_tier: str = "standard"
    repeat_contacts_7d: int = 0
    waited_minutes: float = 0.0
    risks: tuple[RiskFinding, ...] = ()  # the dangers the risk model found


@dataclass(frozen=True)
class AppliedFloor:
    """A floor that fired, the priority it demands, and why: the cue words found and/or the risk model's verdict."""

    name: str
    priority: int
    score_priority: int  # what the score alone gave: a larger number means this floor raised the ticket
    cue_words: dict[str, list[str]]
    risk: RiskFinding | None
    ongoing: str | None = None
    ongoing_words: list[str] = field(default_factory=list)
    category: str | None = None  # the category the floor files the message under, if it names one

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, as stored on the ticket and sent by the API."""
        return asdict(self)


@dataclass(frozen=True)
class Urgency:
    """The score, each factor's contribution in points, the cues found, the floors that fired, and the band."""

    score: float
    factors: dict[str, float]
    cues: list[str]
    band: PriorityBand
    floors: list[AppliedFloor] = field(default_factory=list)


def _unit(value: float) -> float:
    return min(1.0, max(0.0, float(value)))


def score_urgency(inputs: UrgencyInputs, config: UrgencyConfig) -> Urgency:
    """Weighted sum of factor levels, every level non-decreasing in its input and capped at 1; floors under it."""
    if inputs.customer_tier not in config.tiers:
        raise InvalidInput(f"unknown customer tier {inputs.customer_tier!r}; expected one of {sorted(config.tiers)}")
    if inputs.repeat_contacts_7d < 0 or inputs.waited_minutes < 0:
        raise InvalidInput("repeat contacts and minutes waited cannot be negative")
    lowered = normalise(inputs.text)
    found = {cue.name: words for cue in config.cues if (words := cue.words_in(lowered))}
    levels = {
        "severity": _unit(inputs.severity),
        "sentiment": _unit(inputs.negativity),
        "cues": _unit(sum(cue.weight for cue in config.cues if cue.name in found)),
        "tier": _unit(config.tiers[inputs.customer_tier]),
        "repeats": _unit(inputs.repeat_contacts_7d / config.repeats_for_full),
        "waiting": _unit(inputs.waited_minutes / config.minutes_for_full),
    }
    factors = {name: round(config.weights[name] * level, 2) for name, level in levels.items()}
    score = round(min(100.0, sum(factors.values())), 2)
    by_score = config.band_for(score)
    floors = sorted(
        (
            applied
            for floor in config.floors
            if (applied := _apply(floor, found, inputs.risks, lowered, by_score.priority))
        ),
        key=lambda applied: applied.priority,
    )
    band = config.band_of(floors[0].priority) if floors and floors[0].priority < by_score.priority else by_score
    return Urgency(score, factors, list(found), band, floors)


def _apply(
    floor: Floor, found: dict[str, list[str]], risks: tuple[RiskFinding, ...], lowered: str, score_priority: int
) -> AppliedFloor | None:
    """The floor as applied to this message, or None when neither its cues nor its risk fired."""
    cue_words = {name: found[name] for name in floor.cues if name in found}
    risk = next((finding for finding in risks if finding.risk == floor.risk), None)
    if not cue_words and risk is None:
        return None
    ongoing_words = floor.ongoing.words_in(lowered) if floor.ongoing else []
    if floor.ongoing and ongoing_words:
        return AppliedFloor(
            floor.name,
            floor.ongoing.priority,
            score_priority,
            cue_words,
            risk,
            floor.ongoing.name,
            ongoing_words,
            floor.category,
        )
    return AppliedFloor(floor.name, floor.priority, score_priority, cue_words, risk, category=floor.category)
