"""Triage configuration: categories → teams and severities (categories.yml), urgency weights, cues and SLAs."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from router.errors import InvalidInput

FACTORS = ("severity", "sentiment", "cues", "tier", "repeats", "waiting")
# What the risk model tells apart; a floor may name one of the dangers (not NO_RISK) as its trigger.
NO_RISK = "none"
RISKS = ("safety", "fraud", "legal_threat")


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

    def words_in(self, lowered_text: str) -> list[str]:
        """The words of the text that match this cue, each once, in the order of the patterns."""
        return _matched(self.patterns, lowered_text)


def _latin(char: str) -> bool:
    return char.isascii() and char.isalnum()


def _matched(patterns: tuple[re.Pattern[str], ...], lowered_text: str) -> list[str]:
    """What the patterns matched, widened to whole English words (a pattern 'injur' shows as 'injured')."""
    words: list[str] = []
    for pattern in patterns:
        for match in pattern.finditer(lowered_text):
            start, end = match.span()
            while start > 0 and _latin(lowered_text[start - 1]) and _latin(lowered_text[start]):
                start -= 1
            while 0 < end < len(lowered_text) and _latin(lowered_text[end]) and _latin(lowered_text[end - 1]):
                end += 1
            word = lowered_text[start:end].strip()
            if word and word not in words:
                words.append(word)
    return words


@dataclass(frozen=True)
class Escalation:
    """Words saying a danger is still going on (money still leaving), which make its floor more urgent."""

    name: str
    priority: int
    patterns: tuple[re.Pattern[str], ...]

    def words_in(self, lowered_text: str) -> list[str]:
        """The words of the text that say the danger is still going on."""
        return _matched(self.patterns, lowered_text)


@dataclass(frozen=True)
class Floor:
    """A danger whose ticket gets at least ``priority`` whatever its score: fired by its cues or the risk model."""

    name: str
    priority: int
    cues: tuple[str, ...]
    risk: str | None
    ongoing: Escalation | None = None
    category: str | None = None  # the complaint category (and so the team) a message with this danger belongs to


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
    floors: tuple[Floor, ...] = ()

    def band_for(self, score: float) -> PriorityBand:
        """The most urgent priority band whose minimum the score reaches."""
        for band in self.bands:
            if score >= band.min_score:
                return band
        return self.bands[-1]

    def band_of(self, priority: int) -> PriorityBand:
        """The band of priority ``priority`` (1..4; the config is checked to have each once)."""
        return next(band for band in self.bands if band.priority == priority)


@dataclass(frozen=True)
class TriageConfig:
    """Categories and urgency settings, read together from the triage data folder."""

    categories: dict[str, Category]
    urgency: UrgencyConfig
    fallback_category: str = "other"
    stop_words: frozenset[str] = frozenset()  # never shown to agents as a reason (stopwords.yml)

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
    except (KeyError, TypeError, ValueError, AttributeError, re.error) as error:
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
    floors = _floors(path, raw.get("floors") or {}, {cue.name for cue in cues})
    return replace(config, floors=floors)


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


def _priority(path: Path, where: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 4:
        raise InvalidInput(f"triage config {path}: {where} must be a priority 1..4 (1 most urgent), not {value!r}")
    return value


def _patterns(path: Path, where: str, value: object) -> tuple[re.Pattern[str], ...]:
    if not isinstance(value, list) or not value or not all(isinstance(item, str) and item for item in value):
        raise InvalidInput(f"triage config {path}: {where} must be a non-empty list of regular expressions")
    try:
        return tuple(re.compile(pattern) for pattern in value)
    except re.error as error:
        raise InvalidInput(f"triage config {path}: {where} has an invalid regular expression: {error}") from error


def _floors(path: Path, raw: object, cue_names: set[str]) -> tuple[Floor, ...]:
    """The ``floors`` section, each checked with an error that names the floor and what is wrong with it."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"triage config {path}: floors must be a mapping of floor name to its settings")
    floors = []
    for name, spec in raw.items():
        where = f"floor {name!r}"
        if not isinstance(spec, dict):
            raise InvalidInput(
                f"triage config {path}: {where} must be a mapping (priority, cues, risk, ongoing, category)"
            )
        unknown = set(spec) - {"priority", "cues", "risk", "ongoing", "category"}
        if unknown:
            raise InvalidInput(f"triage config {path}: {where} has unknown settings {sorted(unknown)}")
        priority = _priority(path, f"{where} priority", spec.get("priority"))
        cues = spec.get("cues") or []
        if not isinstance(cues, list) or not all(isinstance(cue, str) for cue in cues):
            raise InvalidInput(f"triage config {path}: {where} cues must be a list of cue names")
        missing = [cue for cue in cues if cue not in cue_names]
        if missing:
            raise InvalidInput(
                f"triage config {path}: {where} names cues {missing} that the cues section does not define "
                f"(it has {sorted(cue_names)})"
            )
        risk = spec.get("risk")
        if risk is not None and risk not in RISKS:
            raise InvalidInput(f"triage config {path}: {where} risk must be one of {list(RISKS)}, not {risk!r}")
        if not cues and risk is None:
            raise InvalidInput(f"triage config {path}: {where} needs cues or a risk, or it can never fire")
        ongoing = _ongoing(path, where, spec.get("ongoing"), priority)
        category = spec.get("category")
        if category is not None and not isinstance(category, str):
            raise InvalidInput(f"triage config {path}: {where} category must be a category name, not {category!r}")
        floors.append(Floor(str(name), priority, tuple(cues), risk, ongoing, category))
    return tuple(floors)


def _ongoing(path: Path, where: str, spec: object, floor_priority: int) -> Escalation | None:
    if spec is None:
        return None
    if not isinstance(spec, dict) or set(spec) != {"name", "priority", "patterns"}:
        raise InvalidInput(f"triage config {path}: {where} ongoing must be a mapping of name, priority and patterns")
    priority = _priority(path, f"{where} ongoing priority", spec["priority"])
    if priority > floor_priority:
        raise InvalidInput(
            f"triage config {path}: {where} ongoing priority P{priority} must be at least as urgent as the floor's "
            f"P{floor_priority}"
        )
    return Escalation(str(spec["name"]), priority, _patterns(path, f"{where} ongoing patterns", spec["patterns"]))


def load_stop_words(path: Path) -> frozenset[str]:
    """stopwords.yml's words of every language, lower-cased; no file means no stop words."""
    if not path.is_file():
        return frozenset()
    raw = read_yaml_mapping(path, "stop-word list")
    words: set[str] = set()
    for language, listed in raw.items():
        if not isinstance(listed, list) or not all(isinstance(word, str) and word.strip() for word in listed):
            raise InvalidInput(f"stop-word list {path}: {language!r} must be a list of words")
        words.update(word.strip().lower() for word in listed)
    return frozenset(words)


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
    urgency = load_urgency(triage_dir / "urgency.yml")
    for floor in urgency.floors:
        if floor.category is not None and floor.category not in categories:
            raise InvalidInput(
                f"triage config {triage_dir / 'urgency.yml'}: floor {floor.name!r} files messages under category "
                f"{floor.category!r}, which categories.yml does not define (it has {sorted(categories)})"
            )
    return TriageConfig(categories, urgency, stop_words=load_stop_words(triage_dir / "stopwords.yml"))
