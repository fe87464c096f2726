"""Triage configuration: categories → teams and severities (categories.yml), urgency weights, cues and SLAs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from router.errors import InvalidInput

FACTORS = ("severity", "sentiment", "cues", "tier", "repeats", "waiting")


@dataclass(frozen=True)
class Category:
    """A complaint category, the team that works it and how severe it is (0..1)."""

    name: str
    team: str
    severity: float


@dataclass(frozen=True)
class Cue:
    """Words that make a message more urgent, e.g. a legal threat or a safety problem."""

    name: str
    weight: float
    patterns: tuple[re.Pattern[str], ...]

    def found_in(self, lowered_text: str) -> bool:
        """Whether any of this cue's patterns occurs in the lower-cased text."""
        return any(pattern.search(lowered_text) for pattern in self.patterns)


@dataclass(frozen=True)
class PriorityBand:
    """A priority, the least score that reaches it, and its SLA."""

    priority: int
    min_score: float
    first_response_minutes: int
    resolution_minutes: int


@dataclass(frozen=True)
class UrgencyConfig:
    """Everything the urgency score needs; see data/triage/urgency.yml for what each number means."""

    weights: dict[str, float]
    tiers: dict[str, float]
    repeats_for_full: int
    minutes_for_full: float
    cues: tuple[Cue, ...]
    bands: tuple[PriorityBand, ...]

    def band_for(self, score: float) -> PriorityBand:
        """The most urgent priority band whose minimum the score reaches."""
        for band in self.bands:
            if score >= band.min_score:
                return band
        return self.bands[-1]


@dataclass(frozen=True)
class TriageConfig:
    """Categories and urgency settings, read together from the triage data folder."""

    categories: dict[str, Category]
    urgency: UrgencyConfig
    fallback_category: str = "other"

    def category(self, name: str) -> Category:
        """The named category, or the fallback for labels the config does not know (e.g. out-of-scope)."""
        return self.categories.get(name) or self.categories[self.fallback_category]


def read_yaml_mapping(path: Path, what: str = "triage config") -> dict:
    """A supervisor-edited YAML file as a mapping; missing, malformed or not a mapping is a clear InvalidInput."""
    if not path.is_file():
        raise InvalidInput(f"{what} {path} does not exist")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise InvalidInput(f"{what} {path} is not valid YAML: {error}") from error
    if not isinstance(loaded, dict):
        raise InvalidInput(f"{what} {path} must be a mapping")
    return loaded


def load_urgency(path: Path) -> UrgencyConfig:
    """Read and check urgency.yml."""
    raw = read_yaml_mapping(path)
    try:
        weights = {factor: float(raw["weights"][factor]) for factor in FACTORS}
        cues = tuple(
            Cue(name, float(spec["weight"]), tuple(re.compile(pattern) for pattern in spec["patterns"]))
            for name, spec in raw["cues"].items()
        )
        bands = tuple(
            PriorityBand(
                int(b["priority"]),
                float(b["min_score"]),
                int(b["first_response_minutes"]),
                int(b["resolution_minutes"]),
            )
            for b in sorted(raw["priorities"], key=lambda band: -float(band["min_score"]))
        )
        config = UrgencyConfig(
            weights=weights,
            tiers={str(k): float(v) for k, v in raw["tiers"].items()},
            repeats_for_full=int(raw["repeats_for_full"]),
            minutes_for_full=float(raw["minutes_for_full"]),
            cues=cues,
            bands=bands,
        )
    except (KeyError, TypeError, ValueError, re.error) as error:
        raise InvalidInput(f"triage config {path} is incomplete or malformed: {error!r}") from error
    if any(weight < 0 for weight in weights.values()) or any(not 0 <= cue.weight <= 1 for cue in cues):
        raise InvalidInput(f"triage config {path}: weights must be ≥ 0 and cue weights between 0 and 1")
    if config.repeats_for_full < 1 or config.minutes_for_full <= 0:
        raise InvalidInput(f"triage config {path}: repeats_for_full and minutes_for_full must be positive")
    if abs(sum(weights.values()) - 100) > 0.01:
        # Otherwise the score (capped at 100) and the factor points shown to agents would not add up.
        raise InvalidInput(f"triage config {path}: weights must add up to 100, not {sum(weights.values()):g}")
    if "standard" not in config.tiers or any(not 0 <= level <= 1 for level in config.tiers.values()):
        raise InvalidInput(f"triage config {path}: tiers must include 'standard' and each be between 0 and 1")
    _check_bands(path, bands)
    return config


def _check_bands(path: Path, bands: tuple[PriorityBand, ...]) -> None:
    """P1–P4 once each, more urgent ones needing a higher score, P4 from 0, and SLAs that make sense."""
    if [band.priority for band in bands] != [1, 2, 3, 4]:
        raise InvalidInput(
            f"triage config {path}: priorities must be P1–P4, each once, P1 needing the highest min_score "
            f"(got {[band.priority for band in bands]} in descending min_score order)"
        )
    if bands[-1].min_score > 0:
        raise InvalidInput(f"triage config {path}: P4's min_score must be 0 so every score gets a priority")
    for band in bands:
        if not 0 < band.first_response_minutes <= band.resolution_minutes:
            raise InvalidInput(
                f"triage config {path}: P{band.priority} needs 0 < first_response_minutes ≤ resolution_minutes"
            )


def load_config(triage_dir: Path) -> TriageConfig:
    """Read categories.yml and urgency.yml from ``triage_dir`` (normally data/triage)."""
    raw = read_yaml_mapping(triage_dir / "categories.yml")
    try:
        categories = {
            name: Category(name, str(spec["team"]), float(spec["severity"])) for name, spec in raw["categories"].items()
        }
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidInput(f"categories.yml is incomplete or malformed: {error!r}") from error
    if "other" not in categories:
        raise InvalidInput("categories.yml must define the fallback category 'other'")
    return TriageConfig(categories=categories, urgency=load_urgency(triage_dir / "urgency.yml"))
