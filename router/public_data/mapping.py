"""What each public source label means to kefu: data/public/mapping.yml, checked against kefu's own labels."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from router.errors import InvalidInput
from router.public_data.sources import SHIPPABLE_SOURCES, PublicRow

RISKS = ("none", "fraud")


@dataclass(frozen=True)
class Meaning:
    """The kefu intent, complaint category and risk a source label stands for; None where it has no counterpart."""

    intent: str | None = None
    category: str | None = None
    risk: str = "none"


NO_MEANING = Meaning()


@dataclass(frozen=True)
class PublicMapping:
    """Source label → Meaning, per source."""

    meanings: dict[str, dict[str, Meaning]]

    def meaning(self, row: PublicRow) -> Meaning:
        """What ``row`` teaches kefu; a label the mapping does not list is a risk-free negative example only."""
        return self.meanings.get(row.source, {}).get(row.label, NO_MEANING)


def load_mapping(path: Path, intents: set[str], categories: set[str]) -> PublicMapping:
    """Read and check the mapping: every intent, category and risk must be one kefu knows."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise InvalidInput(f"{path} is not a readable YAML mapping: {error}") from error
    meanings: dict[str, dict[str, Meaning]] = {}
    for source, labels in raw.items():
        if source not in SHIPPABLE_SOURCES:
            raise InvalidInput(f"{path}: unknown source {source!r}; expected one of {', '.join(SHIPPABLE_SOURCES)}")
        meanings[source] = {}
        for label, fields in (labels or {}).items():
            where = f"{path}: {source} label {label!r}"
            unknown = set(fields or {}) - {"intent", "category", "risk"}
            if unknown:
                raise InvalidInput(f"{where} has unknown fields {', '.join(sorted(unknown))}")
            meaning = Meaning(**(fields or {}))
            if meaning.intent is not None and meaning.intent not in intents:
                raise InvalidInput(f"{where} maps to unknown intent {meaning.intent!r}")
            if meaning.category is not None and meaning.category not in categories:
                raise InvalidInput(f"{where} maps to unknown category {meaning.category!r}")
            if meaning.risk not in RISKS:
                raise InvalidInput(f"{where} has unknown risk {meaning.risk!r}; expected one of {', '.join(RISKS)}")
            meanings[source][str(label)] = meaning
    return PublicMapping(meanings)


def load_project_mapping(project_dir: Path, data_dir: Path) -> PublicMapping:
    """data/public/mapping.yml checked against the intents in domain.yml and the categories in categories.yml."""
    domain = yaml.safe_load((Path(project_dir) / "domain.yml").read_text(encoding="utf-8"))
    categories = yaml.safe_load((Path(data_dir) / "triage" / "categories.yml").read_text(encoding="utf-8"))
    path = Path(data_dir) / "public" / "mapping.yml"
    return load_mapping(path, set(domain["intents"]), set(categories["categories"]))
