"""The explainable urgency score: each factor's points, their sum (0..100) and the priority/SLA it maps to."""

from __future__ import annotations

from dataclasses import dataclass

from router.errors import InvalidInput
from router.triage.config import PriorityBand, UrgencyConfig
from router.triage.text import normalise


@dataclass(frozen=True)
class UrgencyInputs:
    """What a supervisor can see about a message, each already measured."""

    severity: float  # the category's severity, 0..1
    negativity: float  # 0 calm … 1 furious
    text: str  # searched for urgency cues
    customer_tier: str = "standard"
    repeat_contacts_7d: int = 0
    waited_minutes: float = 0.0


@dataclass(frozen=True)
class Urgency:
    """The score, each factor's contribution in points, the cues found, and the priority band."""

    score: float
    factors: dict[str, float]
    cues: list[str]
    band: PriorityBand


def _unit(value: float) -> float:
    return min(1.0, max(0.0, float(value)))


def score_urgency(inputs: UrgencyInputs, config: UrgencyConfig) -> Urgency:
    """Weighted sum of factor levels; every level is non-decreasing in its input and capped at 1."""
    if inputs.customer_tier not in config.tiers:
        raise InvalidInput(f"unknown customer tier {inputs.customer_tier!r}; expected one of {sorted(config.tiers)}")
    if inputs.repeat_contacts_7d < 0 or inputs.waited_minutes < 0:
        raise InvalidInput("repeat contacts and minutes waited cannot be negative")
    lowered = normalise(inputs.text)
    found = [cue for cue in config.cues if cue.found_in(lowered)]
    levels = {
        "severity": _unit(inputs.severity),
        "sentiment": _unit(inputs.negativity),
        "cues": _unit(sum(cue.weight for cue in found)),
        "tier": _unit(config.tiers[inputs.customer_tier]),
        "repeats": _unit(inputs.repeat_contacts_7d / config.repeats_for_full),
        "waiting": _unit(inputs.waited_minutes / config.minutes_for_full),
    }
    factors = {name: round(config.weights[name] * level, 2) for name, level in levels.items()}
    score = round(min(100.0, sum(factors.values())), 2)
    return Urgency(score=score, factors=factors, cues=[cue.name for cue in found], band=config.band_for(score))
