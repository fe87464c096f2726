"""``kefu data export``: the CRM's training examples as Rasa YAML under ``data/reviewed/`` and a triage CSV.

Examples are redacted again as they are written: the files go into the repository and its models, and rows stored
before a kind of personal data was recognised must not go with them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from router.crm.models import IntentDefinition, TrainingExample
from router.crm.redaction import redact
from router.training.inbox import normalise
from router.training.labels import COMPLAINT_TARGET, INTENT_TARGET, OUT_OF_SCOPE, domain_intents
from router.training.nlu_yaml import RASA_YAML_VERSION, Example, dump_yaml, write_nlu_file

REVIEWED_DIR = "reviewed"
REVIEWED_NLU = "nlu.yml"
REVIEWED_DOMAIN = "domain.yml"
REVIEWED_RULES = "rules.yml"
SHIPPED_COMPLAINTS = Path("triage") / "complaints.csv"
REVIEWED_COMPLAINTS = Path("triage") / "reviewed.csv"
COMPLAINT_COLUMNS = ("text", "category")


@dataclass(frozen=True)
class ExportSummary:
    """What ``kefu data export`` wrote, for the terminal and the admin page."""

    intent_examples: int
    new_intents: int
    complaint_examples: int
    files: list[Path]


def _latest_labels(session: Session, target: str) -> list[TrainingExample]:
    """One example per distinct text, the most recent label winning when reviewers disagreed."""
    examples = session.execute(
        select(TrainingExample)
        .where(TrainingExample.target == target)
        .order_by(TrainingExample.created_at, TrainingExample.id)
    ).scalars()
    latest: dict[str, TrainingExample] = {}
    for example in examples:
        latest[normalise(example.text)] = example
    return list(latest.values())


def _one_line(text: str) -> str:
    # A Rasa example is one list item: line breaks inside a customer's message would split it into several.
    return " ".join(redact(text).split())


def _responses(definition: IntentDefinition) -> list[dict[str, Any]]:
    # English answers are conditioned on the language slot; the first Chinese one (or else English) is the default.
    english = [response["text"] for response in definition.responses if response["language"] == "en"]
    chinese = [response["text"] for response in definition.responses if response["language"] == "zh"]
    variants: list[dict[str, Any]] = [
        {"condition": [{"type": "slot", "name": "language", "value": "en"}], "text": text} for text in english
    ]
    variants += [{"text": text} for text in (chinese or english)]
    return variants


def _domain_and_rules(definitions: list[IntentDefinition], base_intents: list[str]) -> tuple[dict, dict]:
    new_intents = [definition.name for definition in definitions if definition.name not in base_intents]
    if OUT_OF_SCOPE not in base_intents:
        new_intents.append(OUT_OF_SCOPE)
    domain = {
        "version": RASA_YAML_VERSION,
        "intents": new_intents,
        "responses": {f"utter_{definition.name}": _responses(definition) for definition in definitions},
    }
    rules = {
        "version": RASA_YAML_VERSION,
        "rules": [
            {
                "rule": f"answer {definition.name} (reviewed)",
                "steps": [{"intent": definition.name}, {"action": f"utter_{definition.name}"}],
            }
            for definition in definitions
        ],
    }
    return domain, rules


def export_training_data(session: Session, data_dir: Path, project_dir: Path) -> ExportSummary:
    """Write every reviewed label where the trainers read it, replacing the previous export."""
    reviewed_dir = data_dir / REVIEWED_DIR
    reviewed_dir.mkdir(parents=True, exist_ok=True)
    intent_examples = [
        Example(_one_line(example.text), example.label) for example in _latest_labels(session, INTENT_TARGET)
    ]
    write_nlu_file(reviewed_dir / REVIEWED_NLU, intent_examples)
    definitions = list(session.execute(select(IntentDefinition).order_by(IntentDefinition.name)).scalars())
    domain, rules = _domain_and_rules(definitions, domain_intents(project_dir))
    (reviewed_dir / REVIEWED_DOMAIN).write_text(dump_yaml(domain), encoding="utf-8")
    (reviewed_dir / REVIEWED_RULES).write_text(dump_yaml(rules), encoding="utf-8")
    complaints = _latest_labels(session, COMPLAINT_TARGET)
    complaints_path = data_dir / REVIEWED_COMPLAINTS
    complaints_path.parent.mkdir(parents=True, exist_ok=True)
    with complaints_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COMPLAINT_COLUMNS)
        writer.writerows((redact(example.text), example.label) for example in complaints)
    return ExportSummary(
        intent_examples=len(intent_examples),
        new_intents=len(definitions),
        complaint_examples=len(complaints),
        files=[reviewed_dir / name for name in (REVIEWED_NLU, REVIEWED_DOMAIN, REVIEWED_RULES)] + [complaints_path],
    )
